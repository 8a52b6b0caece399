"""The binding's wire protocol at the fake's root, as workerd's ``env.AI`` client sends and reads it."""

from __future__ import annotations

import json
from typing import Any

import httpx

from aigw_fakes.server import FakeGateway

from .support import ACCOUNT, GATEWAY, NATIVE, SMALL, TOKEN, auth, behaviour, configure, logs_api

SDK_HEADERS = {"content-type": "application/json", "cf-consn-sdk-version": "2.0.0"}


async def run(
    client: httpx.AsyncClient,
    inputs: dict[str, Any],
    gateway: dict[str, Any] | None = None,
    model: str = NATIVE,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    path = "/ai-gateway/run?version=3" if gateway is not None else "/run?version=3"
    options = {"gateway": gateway} if gateway is not None else {}
    sent = {**SDK_HEADERS, "cf-consn-model-id": model, **(headers or {})}
    return await client.post(path, json={"inputs": inputs, "options": options}, headers=sent)


async def test_run_without_a_gateway_answers_the_bare_result(client: httpx.AsyncClient) -> None:
    response = await run(client, {"prompt": "hi"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"  # the binding checks this exactly
    body = response.json()
    assert set(body) == {"response", "usage"}
    assert response.headers["cf-ai-req-id"]
    assert "cf-aig-log-id" not in response.headers


async def test_run_through_a_gateway_applies_the_gateway_options_and_logs(client: httpx.AsyncClient) -> None:
    gateway = {"id": GATEWAY, "metadata": {"tenantId": "t-1", "n": 3}, "eventId": "evt-9", "cacheTtl": 600}
    first = await run(client, {"prompt": "hi"}, gateway)
    again = await run(client, {"prompt": "hi"}, {**gateway, "metadata": {"tenantId": "t-2"}})
    skipped = await run(client, {"prompt": "hi"}, {**gateway, "skipCache": True})
    assert [r.headers["cf-aig-cache-status"] for r in (first, again, skipped)] == ["MISS", "HIT", "MISS"]
    assert first.headers["cf-aig-event-id"] == "evt-9"
    log_id = first.headers["cf-aig-log-id"]
    got = await client.get(f"/ai-gateway/gateways/{GATEWAY}/logs/{log_id}")
    assert got.status_code == 200
    log = got.json()["result"]
    assert (log["metadata"], log["event_id"], log["request_type"]) == (
        {"tenantId": "t-1", "n": 3},
        "evt-9",
        "binding",
    )
    assert log["tokens_in"] == first.json()["usage"]["prompt_tokens"]


async def test_collect_log_false_keeps_a_call_out_of_the_logs(client: httpx.AsyncClient) -> None:
    response = await run(client, {"prompt": "hi"}, {"id": GATEWAY, "collectLog": False})
    missing = await client.get(f"/ai-gateway/gateways/{GATEWAY}/logs/{response.headers['cf-aig-log-id']}")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["message"] == "Log not found"


async def test_patch_log_sets_feedback_score_and_metadata(client: httpx.AsyncClient) -> None:
    response = await run(client, {"prompt": "hi"}, {"id": GATEWAY})
    log_id = response.headers["cf-aig-log-id"]
    patched = await client.patch(
        f"/ai-gateway/gateways/{GATEWAY}/logs/{log_id}",
        json={"feedback": -1, "score": 12, "metadata": {"a": 1}},
    )
    assert patched.status_code == 200
    seen = (await client.get(logs_api(rest=f"/{log_id}"), headers=auth())).json()["result"]
    assert (seen["feedback"], seen["score"], seen["metadata"]) == (-1, 12.0, {"a": 1})
    bad = await client.patch(f"/ai-gateway/gateways/{GATEWAY}/logs/{log_id}", json={"feedback": 5})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["message"] == "feedback: expected -1, 0, 1 or null, got 5"


async def test_binding_calls_are_pre_authenticated(client: httpx.AsyncClient) -> None:
    await configure(client, authentication=True)
    assert (await run(client, {"prompt": "hi"}, {"id": GATEWAY})).status_code == 200


async def test_errors_keep_the_shapes_the_binding_turns_into_messages(client: httpx.AsyncClient) -> None:
    rule = {"id": "cap", "limit": 0, "limitType": "cost", "window": 3600}
    await configure(client, spend_limits={"rules": [rule]})
    refused = await run(client, {"prompt": "hi"}, {"id": GATEWAY})
    assert refused.status_code == 429
    body = refused.json()
    assert (body["name"], body["internalCode"]) == ("AiGatewayError", 2045)
    assert body["description"].startswith("Spend limit exceeded: rule 'cap' (cost limit 0 per 3600s, fixed)")
    assert (
        await client.put("/__aigw/behaviour", json=behaviour({"error": "out_of_capacity"}))
    ).status_code == 200
    busy = await run(client, {"prompt": "hi"})
    assert busy.status_code == 429
    assert busy.json()["errors"][0] == {
        "message": "Capacity temporarily exceeded, please try again.",
        "code": 3040,
    }


async def test_bad_binding_requests_say_what_is_missing(client: httpx.AsyncClient) -> None:
    no_model = await client.post("/run?version=3", json={"inputs": {"prompt": "hi"}, "options": {}})
    assert no_model.status_code == 400
    assert no_model.json()["errors"][0]["code"] == 3003
    no_gateway = await run(client, {"prompt": "hi"}, {})
    assert no_gateway.status_code == 400
    assert no_gateway.json()["description"] == "options.gateway.id: a gateway id is required"
    both = await run(client, {"prompt": "hi", "messages": [{"role": "user", "content": "x"}]})
    assert both.status_code == 400
    assert both.json()["errors"][0]["code"] == 8001


async def test_streams_and_retries_through_the_binding(client: httpx.AsyncClient, fake: FakeGateway) -> None:
    streamed = await run(client, {"prompt": "hi", "stream": True}, {"id": GATEWAY})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.rstrip().endswith("data: [DONE]")
    script = behaviour({"times": 1, "error": 3040}, {"tokens": 2}, model=SMALL)
    assert (await client.put("/__aigw/behaviour", json=script)).status_code == 200
    retried = await run(client, {"prompt": "hi"}, {"id": GATEWAY, "retries": {"maxAttempts": 2}}, model=SMALL)
    assert retried.status_code == 200
    record = fake.store.get(retried.headers["cf-aig-log-id"])
    assert record is not None
    assert record.attempt == 2


async def test_get_url_and_universal_run(client: httpx.AsyncClient, fake: FakeGateway) -> None:
    universal_url = (await client.get(f"/ai-gateway/gateways/{GATEWAY}/url/universal")).json()["result"][
        "url"
    ]
    assert universal_url == f"{fake.base_url}/v1/{ACCOUNT}/{GATEWAY}/"
    openai_url = (await client.get(f"/ai-gateway/gateways/{GATEWAY}/url/openai")).json()["result"]["url"]
    assert openai_url == f"{fake.base_url}/v1/{ACCOUNT}/{GATEWAY}/openai"
    await configure(client, authentication=True)
    failing = {
        "x-aigw-behaviour": json.dumps({"error": "out_of_capacity"}),
        "Authorization": f"Bearer {TOKEN}",
    }
    steps = [
        {"provider": "workers-ai", "endpoint": NATIVE, "headers": failing, "query": {"prompt": "a"}},
        {"provider": "workers-ai", "endpoint": SMALL, "headers": {}, "query": {"prompt": "a"}},
    ]
    response = await client.post(f"/ai-gateway/universal/run/{GATEWAY}", json=steps)
    assert (response.status_code, response.headers["cf-aig-step"]) == (200, "1")
