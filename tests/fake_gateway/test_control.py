"""The ``/__aigw/`` control API and the ``x-aigw-behaviour`` header, through HTTP."""

from __future__ import annotations

import json

import httpx
from fake_helpers import NATIVE, auth, gateway_path

from aigw_fakes.server import FakeGateway


async def run(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(
        gateway_path(f"workers-ai/{NATIVE}"), json={"prompt": "hi"}, headers={**auth(), **(headers or {})}
    )


async def test_put_behaviour_then_calls_follow_the_script(client: httpx.AsyncClient) -> None:
    document = {
        "rules": [{"match": {"model": NATIVE}, "script": [{"times": 2, "error": 3040}, {"tokens": 3}]}]
    }
    put = await client.put("/__aigw/behaviour", json=document)
    assert put.status_code == 200
    statuses = [(await run(client)).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    got = (await client.get("/__aigw/behaviour")).json()["result"]
    assert got["calls"] == [3]
    assert got["document"]["rules"][0]["script"][0] == {"times": 2, "error": {"code": 3040}}


async def test_put_behaviour_with_mistakes_names_each_field_and_line(client: httpx.AsyncClient) -> None:
    text = "default:\n  ttfb_ms: soon\nrules:\n  - match: {model: x}\n    script:\n      - error: 9999\n"
    put = await client.put("/__aigw/behaviour", content=text, headers={"content-type": "application/yaml"})
    assert put.status_code == 400
    problems = put.json()["problems"]
    assert [(p["field"], p["line"]) for p in problems] == [
        ("default.ttfb_ms", 2),
        ("rules[0].script[0].error", 6),
    ]
    assert "not in Cloudflare's tables" in problems[1]["message"]


async def test_reset_restores_start_state_and_empties_the_store(client: httpx.AsyncClient) -> None:
    await client.put("/__aigw/behaviour", json={"default": {"error": "out_of_capacity"}})
    assert (await run(client)).status_code == 429
    assert (await client.post("/__aigw/reset")).status_code == 200
    assert (await client.get("/__aigw/requests")).json()["result"] == []
    assert (await run(client)).status_code == 200


async def test_requests_lists_the_store_without_secrets(client: httpx.AsyncClient) -> None:
    response = await run(client, {"cf-aig-metadata": json.dumps({"user": "u1"}), "cf-aig-event-id": "e-1"})
    records = (await client.get("/__aigw/requests")).json()["result"]
    assert len(records) == 1
    record = records[0]
    assert record["id"] == response.headers["cf-aig-log-id"]
    assert record["metadata"] == {"user": "u1"}
    assert record["event_id"] == "e-1"
    assert record["status_code"] == 200
    assert record["request_head"]["authorization"] == "[redacted]"
    assert "test-token-1" not in json.dumps(records)
    without = (await client.get("/__aigw/requests", params={"bodies": "false"})).json()["result"][0]
    assert "request_body" not in without


async def test_behaviour_header_applies_to_one_request(client: httpx.AsyncClient) -> None:
    header = {"x-aigw-behaviour": json.dumps({"error": {"code": 3007}})}
    failed = await run(client, header)
    assert failed.status_code == 408
    assert failed.json()["errors"] == [{"message": "Request timeout", "code": 3007}]
    assert (await run(client)).status_code == 200


async def test_bad_behaviour_header_is_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await run(client, {"x-aigw-behaviour": '{"tokens": -1}'})
    assert response.status_code == 400
    assert "tokens" in response.json()["errors"][0]["message"]


async def test_python_api_load_and_reset(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    fake.behaviour.load({"models": {NATIVE: [{"times": 1, "error": "timeout"}]}})
    assert (await run(client)).status_code == 408
    assert (await run(client)).status_code == 200
    fake.reset()
    assert len(fake.store) == 0
    assert fake.behaviour.calls == []
