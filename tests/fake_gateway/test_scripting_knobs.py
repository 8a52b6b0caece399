"""Fault scripting for the fault catalogues: a reset before the response head, a head then a stalled body,
a well-framed 200 that is not JSON, Retry-After, stall and cut at the same event, rules that match the
request or a time window, per-attempt records, and a prompt too long for the context window."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from fake_helpers import NATIVE, auth, gateway_path, make_config, read_stream, serving

from aigw_fakes.behaviour import StreamFaults
from aigw_fakes.clock import ManualClock
from aigw_fakes.datafiles import DataFileError
from aigw_fakes.models.streams import Frame, plan_writes
from aigw_fakes.server import FakeGateway

RUN = gateway_path(f"workers-ai/{NATIVE}")
STREAM = {"prompt": "x", "stream": True}
KIMI = "@cf/moonshotai/kimi-k2.6"


def behaviour(**outcome: object) -> dict[str, str]:
    return {"x-aigw-behaviour": json.dumps(outcome)}


async def post(
    client: httpx.AsyncClient, body: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    return await client.post(RUN, json=body or {"prompt": "x"}, headers={**auth(), **headers})


async def test_reset_before_the_response_head(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.TransportError):
        await post(client, **behaviour(reset_before_head=True))
    [record] = fake.store.records()
    assert (record.status_code, record.success, record.cut) == (0, False, True)
    assert [a.status for a in record.attempts] == [0]
    assert (await post(client)).status_code == 200  # the server keeps serving


async def test_a_head_then_a_stalled_body(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    outcome = behaviour(stall_after_head_ms=30_000, stream={"cut_after_bytes": 0})
    async with client.stream("POST", RUN, json={"prompt": "x"}, headers={**auth(), **outcome}) as response:
        assert response.status_code == 200  # the head arrived
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()
    stalled = await post(client, **behaviour(stall_after_head_ms=30_000))
    assert stalled.json()["success"] is True  # without a cut the body follows the stall
    for record in fake.store.records():
        [attempt] = record.attempts
        assert attempt.ended_at - attempt.started_at >= 30.0  # recorded in uncompressed seconds


async def test_a_head_then_a_stalled_stream(client: httpx.AsyncClient) -> None:
    read = await read_stream(client, RUN, STREAM, behaviour(tokens=3, stall_after_head_ms=60_000))
    assert read.status == 200
    assert read.chunks[0][0] >= 0.06  # 60 s x the tests' time scale before the first body byte
    assert read.data()[-1] == "[DONE]"


async def test_a_well_framed_200_that_is_not_json(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    response = await post(client, **behaviour(raw_response={"body": '{"result":{"response":"tru'}))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == '{"result":{"response":"tru'  # the whole body, properly ended
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert "cf-aig-log-id" in response.headers
    [record] = fake.store.records()
    assert record.tokens_in is None  # no usage: the fake does not know what such a body cost


async def test_raw_responses_set_status_type_and_headers(client: httpx.AsyncClient) -> None:
    raw = {
        "status": 503,
        "body": "<html>bad gateway</html>",
        "content_type": "text/html",
        "headers": {"X-A": "b"},
    }
    response = await post(client, **behaviour(raw_response=raw))
    assert (response.status_code, response.text, response.headers["x-a"]) == (503, raw["body"], "b")


async def test_errors_carry_retry_after(client: httpx.AsyncClient) -> None:
    response = await post(client, **behaviour(error={"name": "out_of_capacity", "retry_after": 7}))
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    response = await post(client, **behaviour(error={"code": 2003, "retry_after": date}))
    assert response.headers["retry-after"] == date
    assert "retry-after" not in (await post(client, **behaviour(error="rate_limited"))).headers


def test_a_stall_and_a_cut_at_the_same_event_do_both() -> None:
    frames = [Frame(f'{{"response":"{i}"}}', token=True) for i in range(5)]
    faults = StreamFaults.model_validate({"cut_after_events": 2, "stall": {"after_events": 2, "seconds": 9}})
    writes = plan_writes(frames, faults, token_delay=0.0, jitter=0.0, rng=random.Random(0))
    assert [w.data.count(b"data:") for w in writes] == [1, 1, 0]
    assert (writes[-1].delay, writes[-1].cut_after) == (9, True)  # the stall, then the cut
    assert not any(w.cut_after for w in writes[:-1])
    at_zero = StreamFaults.model_validate({"cut_after_events": 0, "stall": {"after_events": 0, "seconds": 2}})
    [only] = plan_writes(frames, at_zero, token_delay=0.0, jitter=0.0, rng=random.Random(0))
    assert (only.data, only.delay, only.cut_after) == (b"", 2, True)


async def test_stall_then_cut_over_http(client: httpx.AsyncClient) -> None:
    faults = {"cut_after_events": 2, "stall": {"after_events": 2, "seconds": 60}}
    read = await read_stream(client, RUN, STREAM, behaviour(tokens=5, stream=faults))
    assert len(read.events) == 2
    assert read.error is not None
    assert read.chunks[-1][0] < 60  # the events came before the stall; the cut after it


def prefill_rule(**match: object) -> dict[str, Any]:
    return {"rules": [{"match": match, "script": [{"error": {"code": 8001}}]}]}


async def test_rules_match_message_roles(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    fake.behaviour.load(prefill_rule(last_role="assistant"))
    user = {"messages": [{"role": "user", "content": "hi"}]}
    prefill = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]}
    assert (await post(client, user)).status_code == 200
    refused = await post(client, prefill)
    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (400, 8001)
    fake.behaviour.load(prefill_rule(roles=["system", "user"]))
    assert (await post(client, user)).status_code == 200
    system = {"messages": [{"role": "system", "content": "be brief"}, *user["messages"]]}
    assert (await post(client, system)).status_code == 400


async def test_rules_match_body_fields_and_headers(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    fake.behaviour.load(prefill_rule(body={"max_tokens": 64, "messages.0.content": "*secret*"}))
    asked = {"messages": [{"role": "user", "content": "a secret plan"}], "max_tokens": 64}
    assert (await post(client, asked)).status_code == 400
    assert (await post(client, {**asked, "max_tokens": 65})).status_code == 200
    assert (await post(client, {**asked, "max_tokens": True})).status_code == 200  # true is not 64
    fake.behaviour.load(prefill_rule(headers={"X-Tenant": "acme-*"}))
    assert (await post(client, None, **{"x-tenant": "acme-eu"})).status_code == 400
    assert (await post(client, None, **{"x-tenant": "globex"})).status_code == 200
    assert (await post(client)).status_code == 200


async def test_rules_scheduled_in_time_by_the_fake_clock() -> None:
    clock = ManualClock(1_791_000_000)
    async with serving(make_config(clock=clock)) as (fake, client):
        fake.behaviour.load({"rules": [{"from_s": 10, "until_s": 60, "script": [{"error": 3040}]}]})
        assert (await post(client)).status_code == 200
        clock.advance(10)
        assert (await post(client)).status_code == 429
        clock.advance(49.9)
        assert (await post(client)).status_code == 429
        clock.advance(0.1)
        assert (await post(client)).status_code == 200
        assert fake.behaviour.calls == [2]  # calls outside the window do not count


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    from aigw_fakes.behaviour import parse_document

    with pytest.raises(DataFileError, match=r"rules\[0\].*until_s \(5.0\) must be later than from_s"):
        parse_document({"rules": [{"from_s": 10, "until_s": 5, "script": [{"tokens": 1}]}]})


async def test_each_attempt_is_recorded_and_served_by_the_control_api(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    fake.behaviour.load({"models": {NATIVE: [{"times": 2, "error": "out_of_capacity", "ttfb_ms": 500}]}})
    response = await post(client, **{"cf-aig-max-attempts": "3", "cf-aig-retry-delay": "1000"})
    assert response.status_code == 200
    [record] = fake.store.records()
    attempts = record.attempts
    assert [(a.number, a.status, a.error_code) for a in attempts] == [
        (1, 429, 3040),
        (2, 429, 3040),
        (3, 200, None),
    ]
    assert attempts[0].ended_at - attempts[0].started_at >= 0.5
    assert attempts[1].started_at - attempts[0].ended_at >= 1.0  # the retry delay, uncompressed
    assert all(a.started_at <= a.ended_at for a in attempts)
    listed = (await client.get("/__aigw/requests?bodies=false")).json()["result"][0]["attempts"]
    assert [a["status"] for a in listed] == [429, 429, 200]
    assert listed[0]["behaviour"] == "rule 0 step 0 (call 1)"
    assert listed[0]["started_at"].endswith("Z")
    assert listed[0]["duration_ms"] >= 500


async def test_a_prompt_longer_than_the_context_window(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    path = gateway_path(f"workers-ai/{KIMI}")
    body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2000}
    headers = {**auth(), **behaviour(prompt_tokens=261_000)}
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == 7003
    assert (
        "(261000 tokens) and max_tokens (2000) exceed the model's context window of 262144"
        in error["message"]
    )
    fits = await client.post(path, json={**body, "max_tokens": 1000}, headers=headers)
    assert fits.status_code == 200
    scripted = await post(client, **behaviour(error="context_window_exceeded"))
    assert scripted.status_code == 400
    assert "{" not in scripted.json()["errors"][0]["message"]


async def test_the_binding_path_honours_the_same_knobs(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    fake.behaviour.load(prefill_rule(last_role="assistant"))
    inputs = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]}
    binding = {"cf-consn-model-id": NATIVE}
    refused = await client.post("/run?version=3", json={"inputs": inputs, "options": {}}, headers=binding)
    assert refused.status_code == 400
    with pytest.raises(httpx.TransportError):
        await client.post(
            "/run?version=3",
            json={"inputs": {"prompt": "x"}, "options": {}},
            headers={**binding, **behaviour(reset_before_head=True)},
        )
    raw = behaviour(raw_response={"body": "not json"})
    answer = await client.post(
        "/run?version=3", json={"inputs": {"prompt": "x"}, "options": {}}, headers={**binding, **raw}
    )
    assert (answer.status_code, answer.text) == (200, "not json")
