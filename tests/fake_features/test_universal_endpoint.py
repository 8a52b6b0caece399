"""The Universal endpoint over HTTP: fallback in order, cf-aig-step, per-step retries, header precedence,
what an all-failed request answers, and one log per step attempt."""

from __future__ import annotations

import json
from typing import Any

import httpx

from aigw_fakes.server import FakeGateway

from .support import ACCOUNT, GATEWAY, NATIVE, SMALL, TOKEN, auth, configure, logs_api, set_options

UNIVERSAL = f"/v1/{ACCOUNT}/{GATEWAY}"


def step(model: str = NATIVE, outcome: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if outcome is not None:
        headers["x-aigw-behaviour"] = json.dumps(outcome)
    headers.update(extra.pop("headers", {}))
    return {
        "provider": "workers-ai",
        "endpoint": model,
        "headers": headers,
        "query": {"prompt": "hi"},
        **extra,
    }


async def test_the_first_step_that_succeeds_answers_and_names_itself(client: httpx.AsyncClient) -> None:
    steps = [step(outcome={"error": "out_of_capacity"}), step(SMALL)]
    response = await client.post(UNIVERSAL, json=steps)
    assert response.status_code == 200
    assert response.headers["cf-aig-step"] == "1"
    assert "response" in response.json()["result"]
    logs = (await client.get(logs_api(), params={"order_by_direction": "asc"}, headers=auth())).json()[
        "result"
    ]
    assert [(log["step"], log["status_code"], log["model"]) for log in logs] == [
        (0, 429, NATIVE),
        (1, 200, SMALL),
    ]
    assert {log["request_type"] for log in logs} == {"universal"}


async def test_a_step_is_retried_by_its_config_before_falling_back(
    client: httpx.AsyncClient, fake: FakeGateway
) -> None:
    script = {"rules": [{"match": {"model": NATIVE}, "script": [{"times": 2, "error": 3040}, {"tokens": 2}]}]}
    assert (await client.put("/__aigw/behaviour", json=script)).status_code == 200
    steps = [step(config={"maxAttempts": 3, "retryDelay": 50, "backoff": "linear"}), step(SMALL)]
    response = await client.post(UNIVERSAL, json=steps)
    assert (response.status_code, response.headers["cf-aig-step"]) == (200, "0")
    record = fake.store.get(response.headers["cf-aig-log-id"])
    assert record is not None
    assert record.attempt == 3


async def test_a_step_timing_out_falls_back(client: httpx.AsyncClient) -> None:
    slow = step(outcome={"ttfb_ms": 5000}, config={"requestTimeout": 100})
    response = await client.post(UNIVERSAL, json=[slow, step(SMALL)])
    assert (response.status_code, response.headers["cf-aig-step"]) == (200, "1")


async def test_when_every_step_fails_the_last_answer_is_returned(client: httpx.AsyncClient) -> None:
    steps = [step(outcome={"error": "out_of_capacity"}), step(SMALL, outcome={"error": 5007})]
    response = await client.post(UNIVERSAL, json=steps)
    assert (response.status_code, response.headers["cf-aig-step"]) == (400, "1")
    assert response.json()["errors"][0]["code"] == 5007
    await set_options(client, universal_all_failed="first")
    first = await client.post(UNIVERSAL, json=steps)
    assert (first.status_code, first.headers["cf-aig-step"]) == (429, "0")


async def test_which_answers_count_as_failures_is_configurable(client: httpx.AsyncClient) -> None:
    steps = [step(outcome={"error": 5007}), step(SMALL)]
    assert (await client.post(UNIVERSAL, json=steps)).headers["cf-aig-step"] == "1"
    await set_options(client, universal_failure="retryable")
    kept = await client.post(UNIVERSAL, json=steps)
    assert (kept.status_code, kept.headers["cf-aig-step"]) == (400, "0")


async def test_step_headers_override_request_headers(client: httpx.AsyncClient) -> None:
    await configure(client, cache_ttl=600)
    cached_step = step()
    uncached_step = step(headers={"cf-aig-cache-ttl": "0"})
    request_ttl = {"cf-aig-cache-ttl": "3600"}
    await client.post(UNIVERSAL, json=[cached_step], headers=request_ttl)
    assert (await client.post(UNIVERSAL, json=[cached_step], headers=request_ttl)).headers[
        "cf-aig-cache-status"
    ] == "HIT"
    assert (await client.post(UNIVERSAL, json=[uncached_step], headers=request_ttl)).headers[
        "cf-aig-cache-status"
    ] == "MISS"


async def test_an_authenticated_gateway_needs_the_token_on_the_outer_request(
    client: httpx.AsyncClient,
) -> None:
    await configure(client, authentication=True)
    in_step = step(headers={"cf-aig-authorization": f"Bearer {TOKEN}"})
    assert (await client.post(UNIVERSAL, json=[in_step])).status_code == 401
    outer = await client.post(UNIVERSAL, json=[step()], headers={"cf-aig-authorization": f"Bearer {TOKEN}"})
    assert outer.status_code == 200


async def test_other_providers_are_failures_that_fall_back(client: httpx.AsyncClient) -> None:
    openai = {
        "provider": "openai",
        "endpoint": "chat/completions",
        "headers": {},
        "query": {"model": "gpt-4o"},
    }
    response = await client.post(UNIVERSAL, json=[openai, step()])
    assert (response.status_code, response.headers["cf-aig-step"]) == (200, "1")
    alone = await client.post(UNIVERSAL, json=[{**openai, "headers": {"Authorization": f"Bearer {TOKEN}"}}])
    assert alone.status_code == 400
    assert "provider 'openai' is not available in this fake gateway" in alone.json()["error"][0]["message"]


async def test_bad_bodies_are_refused_naming_the_step_and_field(client: httpx.AsyncClient) -> None:
    response = await client.post(UNIVERSAL, json=[step(), {"endpoint": NATIVE}], headers=auth())
    assert response.status_code == 400
    assert response.json()["error"][0]["message"] == "[1].provider: Field required"
    assert (await client.post(UNIVERSAL, content=b"not json")).status_code == 400


async def test_gateway_and_token_are_checked_before_the_body(client: httpx.AsyncClient) -> None:
    unknown = await client.post(f"/v1/{ACCOUNT}/never-made", json=[{"provider": "workers-ai"}])
    assert unknown.json()["error"][0]["code"] == 2001
    await configure(client, authentication=True)
    unauthenticated = await client.post(UNIVERSAL, content=b"not json")
    assert unauthenticated.status_code == 401
    authenticated = await client.post(
        UNIVERSAL, content=b"not json", headers={"cf-aig-authorization": f"Bearer {TOKEN}"}
    )
    assert authenticated.json()["error"][0]["message"] == "body: not valid JSON"
