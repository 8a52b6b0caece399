"""Streaming /chat through HTTP against the fake AI Gateway: events, headers, usage from both stream
shapes, fallback before the first token only, in-band errors, truncation, timeouts and disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from aigw_fakes.server import FakeGateway
from aigw_harness.gateway import ErrorClass, FallbackPolicy, Timeouts
from aigw_harness.sse import decode_all

from .conftest import (
    AUTH_GATEWAY,
    FAKE_ACCOUNT,
    GATEWAY_TOKEN,
    LLAMA,
    LLAMA_FAST,
    SESSION,
    GatewayFactory,
    tenant,
)

EXAMPLE = {"x-tenant-id": "example"}
WITH_FALLBACK = {"MODEL_ID": LLAMA_FAST, "FALLBACK_MODEL_ID": LLAMA}
CHAT = {"sessionId": SESSION, "message": "hello"}
GEMMA = "@cf/google/gemma-4-26b-a4b-it"


def payloads(response: httpx.Response) -> list[tuple[str, Any]]:
    return [(e.event, json.loads(e.data)) for e in decode_all(response.content)]


def kinds(response: httpx.Response) -> list[str]:
    return [kind for kind, _ in payloads(response)]


def text(response: httpx.Response) -> str:
    return "".join(p["content"] for kind, p in payloads(response) if kind == "message")


async def test_success_frames_headers_and_usage(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "Hello there", "prompt_tokens": 12}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers={**EXAMPLE, "x-request-id": "tr"}, json=CHAT)
    assert response.status_code == 200
    headers = response.headers
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-tenant-id"] == "example"
    assert headers["x-trace-id"] == "tr"
    assert headers["x-model-id"] == LLAMA
    assert headers["x-tokens-in"] == "2"  # the estimate: "hello" is 5 UTF-16 units
    assert (headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == ("60", "59")
    assert int(headers["x-ratelimit-reset"]) > 1_700_000_000_000
    for absent in ("x-tokens-out", "x-tokens-total", "x-ai-latency-ms"):
        assert absent not in headers
    body = response.content.decode()
    assert body.startswith(
        'data: {"sessionId":"11111111-1111-1111-1111-111111111111","role":"assistant","content":"Hello",'
        '"tenantId":"example","traceId":"tr"}\n\n'
    )
    assert (
        '\n\nevent: done\ndata: {"done":true,"usage":{"modelId":"@cf/meta/llama-3.1-8b-instruct-fp8-fast",'
        in body
    )
    assert body.endswith("}}\n\n")
    assert "id:" not in body
    assert "retry:" not in body
    events = payloads(response)
    assert [k for k, _ in events] == ["message", "message", "done"]
    assert text(response) == "Hello there"
    usage = events[-1][1]["usage"]
    assert list(usage) == ["modelId", "tokensIn", "tokensOut", "totalTokens", "latencyMs"]
    assert (usage["tokensIn"], usage["tokensOut"], usage["totalTokens"]) == (
        12,
        2,
        14,
    )  # read from the stream
    record = gw.metrics.last
    assert (record.status, record.tokens_in_estimated, record.tokens_out_estimated) == (
        "success",
        False,
        False,
    )
    (upstream,) = fake.store.records()
    assert record.log_ids == [upstream.id]
    assert record.neurons == upstream.neurons
    assert record.ttft_ms is not None
    assert record.latency_ms is not None


async def test_upstream_request_is_the_binding_equivalent_call(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    async with start_gateway() as (gw, client):
        await client.post("/chat", headers={**EXAMPLE, "cf-ray": "ray1"}, json=CHAT)
    (call,) = fake.store.records()
    assert call.path == f"/v1/{FAKE_ACCOUNT}/example-gateway/workers-ai/{LLAMA}"
    assert call.stream
    assert json.loads(call.request_body) == {
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
    }
    assert call.metadata == {"traceId": "ray1", "sessionId": SESSION, "route": "/chat", "tenantId": "example"}
    assert call.event_id == gw.metrics.last.request_id
    assert "fake-api-token" not in json.dumps(call.request_head)


async def test_authenticated_gateway_gets_the_gateway_token(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    secured = tenant(aiGatewayId=AUTH_GATEWAY)
    async with start_gateway(tenants_dir=None, tenants=[secured]) as (_, client):
        refused = await client.post("/chat", headers={"x-tenant-id": "t1"}, json=CHAT)
    async with start_gateway(tenants_dir=None, tenants=[secured], gateway_token=GATEWAY_TOKEN) as (
        gw,
        client,
    ):
        served = await client.post("/chat", headers={"x-tenant-id": "t1"}, json=CHAT)
    assert kinds(refused) == ["error", "done"]
    assert kinds(served)[-1] == "done"
    assert "error" not in kinds(served)
    assert [r.status_code for r in fake.store.records()] == [401, 200]
    assert gw.metrics.last.status == "success"


async def test_chat_completion_shape_is_not_double_counted(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "one two three four", "prompt_tokens": 30}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "modelId": GEMMA})
    assert text(response) == "one two three four"
    usage = payloads(response)[-1][1]["usage"]
    (call,) = fake.store.records()
    # Incremental chunk usage plus the trailing cumulative frame: the cumulative figure wins, nothing summed.
    assert (usage["tokensIn"], usage["tokensOut"]) == (30, call.tokens_out)
    assert usage["totalTokens"] == 30 + call.tokens_out
    assert not gw.metrics.last.tokens_out_estimated


async def test_estimates_are_used_and_marked_when_the_stream_has_no_usage(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "Hello world", "stream": {"usage_frame": False}}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    usage = payloads(response)[-1][1]["usage"]
    assert (usage["tokensIn"], usage["tokensOut"], usage["totalTokens"]) == (2, 3, 5)
    record = gw.metrics.last
    assert record.tokens_in_estimated
    assert record.tokens_out_estimated
    assert record.neurons_estimated  # from the published neuron rates, since the stream gave none


async def test_fallback_before_first_token_names_the_served_model(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"error": "internal_error"}]}})
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST, LLAMA]
    assert response.headers["x-model-id"] == LLAMA
    assert payloads(response)[-1][1]["usage"]["modelId"] == LLAMA
    record = gw.metrics.last
    assert record.models_tried == [LLAMA_FAST, LLAMA]
    assert (record.model_served, record.fallback_used) == (LLAMA, True)
    first = record.attempts[0]
    assert (first.outcome, first.error_class, first.status, first.cf_code, first.fell_back) == (
        "failed",
        "server",
        500,
        3043,
        True,
    )
    assert first.log_id == fake.store.records()[0].id
    # The failed attempt costs nothing: only what the fallback used is charged.
    assert record.ledger_charged == record.tokens_total


async def test_input_errors_do_not_fall_back(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"error": "invalid_input"}]}})
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST]
    assert "x-model-id" not in response.headers
    # The model refused the request itself: the code says so rather than reporting an outage.
    assert response.content == (
        b'event: error\ndata: {"code":"ai_request_refused",'
        b'"message":"The model refused the request as invalid"}\n\n'
        b'event: done\ndata: {"done":true}\n\n'
    )
    assert gw.metrics.last.attempts[0].error_class == "input"
    assert gw.ledger.view().in_flight == {}
    assert gw.ledger.view().usage == {}


async def test_missing_model_falls_back(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    env = {"MODEL_ID": "@cf/meta/no-such-model", "FALLBACK_MODEL_ID": LLAMA}
    async with start_gateway(env=env) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA
    assert gw.metrics.last.attempts[0].error_class == "model"


async def test_fallback_policy_is_configurable(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"error": "out_of_capacity"}]}})
    policy = FallbackPolicy(on=frozenset({ErrorClass.SERVER}))
    async with start_gateway(env=WITH_FALLBACK, fallback=policy) as (gw, client):
        await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST]
    assert gw.metrics.last.attempts[0].error_class == "rate_limited"


async def test_all_candidates_fail(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"error": "internal_error"}})
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers={**EXAMPLE, "x-request-id": "t"}, json=CHAT)
    assert response.status_code == 200
    assert payloads(response) == [
        ("error", {"code": "ai_error", "message": "AI provider unavailable", "traceId": "t"}),
        ("done", {"done": True}),
    ]
    record = gw.metrics.last
    assert (record.status, record.model_served, record.ledger_charged) == ("error", None, 0)
    assert [a.fell_back for a in record.attempts] == [True, False]
    assert len(record.log_ids) == 2


async def test_mid_stream_cut_sends_error_then_done_and_never_retries(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load(
        {"models": {LLAMA_FAST: [{"text": "par tial more words", "stream": {"cut_after_events": 2}}]}}
    )
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
        history = (await client.get(f"/chat/{SESSION}/history", headers=EXAMPLE)).json()["data"]["messages"]
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST]
    assert kinds(response) == ["message", "message", "error", "done"]
    assert text(response) == "par tial"
    done = payloads(response)[-1][1]
    assert done["usage"]["modelId"] == LLAMA_FAST
    assert done["usage"]["tokensOut"] == 2  # "par tial" is 8 UTF-16 units: an estimate
    record = gw.metrics.last
    assert (record.status, record.attempts[0].outcome) == ("error", "failed_mid_stream")
    assert record.ledger_charged == 2 + 2  # partial usage is charged
    assert [m["role"] for m in history] == ["user"]  # a failed answer is not stored


async def test_error_frame_mid_stream(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "a b c", "stream": {"error_frame": {"after_events": 1}}}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert kinds(response) == ["message", "error", "done"]
    assert gw.metrics.last.attempts[0].cf_code == 3040


async def test_malformed_frame_is_skipped_and_counted(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "a b c", "stream": {"malformed_frame": {"after_events": 1}}}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert kinds(response) == ["message", "message", "message", "done"]
    assert text(response) == "a b c"
    assert gw.metrics.last.status == "success"
    assert gw.metrics.last.attempts[0].skipped_frames == 1


async def test_malformed_frame_fails_when_configured(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "a b c", "stream": {"malformed_frame": {"after_events": 1}}}})
    async with start_gateway(malformed_frames="fail") as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert kinds(response) == ["message", "error", "done"]
    assert gw.metrics.last.attempts[0].error_class == "stream"


async def test_truncated_stream_is_an_error_not_a_success(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "cut off", "stream": {"done": False, "usage_frame": False}}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert kinds(response) == ["message", "message", "error", "done"]
    assert gw.metrics.last.status == "truncated"


async def test_truncated_before_first_token_falls_back(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"text": "never", "stream": {"cut_after_events": 0}}]}})
    async with start_gateway(env=WITH_FALLBACK) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST, LLAMA]
    assert response.headers["x-model-id"] == LLAMA


async def test_keepalives_and_odd_line_endings_are_read(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    stream = {
        "keepalive": {"before_first": 2, "every_events": 1},
        "line_ending": "cr",
        "writes": {"split_every": 3},
    }
    fake.behaviour.load({"default": {"text": "split across writes", "stream": stream}})
    async with start_gateway() as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert text(response) == "split across writes"
    assert kinds(response)[-1] == "done"
    assert "error" not in kinds(response)


async def test_first_byte_timeout_falls_back(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"ttfb_ms": 50_000}]}})  # 500 ms at the fake's time scale
    timeouts = Timeouts(first_byte=0.15, between_events=1, total=3)
    async with start_gateway(env=WITH_FALLBACK, timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA
    assert gw.metrics.last.attempts[0].error_class == "timeout"


async def test_stall_before_first_token_falls_back(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"stream": {"stall": {"after_events": 0, "seconds": 50}}}]}})
    timeouts = Timeouts(first_byte=1, between_events=0.15, total=3)
    async with start_gateway(env=WITH_FALLBACK, timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA
    assert gw.metrics.last.attempts[0].error_class == "timeout"


async def test_stall_after_first_token_is_an_in_band_error(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    stall = {"text": "a b c", "stream": {"stall": {"after_events": 1, "seconds": 50}}}
    fake.behaviour.load({"models": {LLAMA_FAST: [stall]}})
    timeouts = Timeouts(first_byte=1, between_events=0.15, total=3)
    async with start_gateway(env=WITH_FALLBACK, timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST]
    assert response.headers["x-model-id"] == LLAMA_FAST
    assert kinds(response) == ["message", "error", "done"]
    assert gw.metrics.last.attempts[0].error_class == "timeout"


async def test_between_events_limit_is_per_gap_not_per_stream(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    # 12 tokens 50 ms apart: each gap is well inside the 0.2 s limit, the stream as a whole is not.
    text = " ".join(["word"] * 12)
    stall = {"text": text, "stream": {"stall": {"after_events": 8, "seconds": 50}}}
    fake.behaviour.load(
        {"default": {"token_delay_ms": 5000}, "models": {LLAMA_FAST: [{"times": 1, "text": text}, stall]}}
    )
    timeouts = Timeouts(first_byte=1, between_events=0.2, total=10)
    async with start_gateway(env=WITH_FALLBACK, timeouts=timeouts) as (gw, client):
        served = await client.post("/chat", headers=EXAMPLE, json=CHAT)
        assert kinds(served) == ["message"] * 12 + ["done"]
        assert gw.metrics.last.attempts[0].outcome == "served"
        # The next call stalls after 8 events: the limit moved on with each event, and still expires.
        stalled = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert kinds(stalled) == ["message"] * 8 + ["error", "done"]
    attempt = gw.metrics.last.attempts[0]
    assert (attempt.outcome, attempt.error_class) == ("failed_mid_stream", "timeout")
    assert attempt.message == "no stream event within the between-events timeout"


async def test_total_timeout_ends_the_stream(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "one two three four five six", "token_delay_ms": 10_000}})
    timeouts = Timeouts(first_byte=1, between_events=1, total=0.25)
    async with start_gateway(timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert kinds(response)[-2:] == ["error", "done"]
    assert kinds(response).count("message") < 6
    assert gw.metrics.last.attempts[0].error_class == "timeout"


async def test_client_disconnect_cancels_upstream_and_charges_partial_usage(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": " ".join(["word"] * 60), "token_delay_ms": 3000}})
    async with start_gateway() as (gw, client):
        async with client.stream("POST", "/chat", headers=EXAMPLE, json=CHAT) as response:
            async for _ in response.aiter_bytes():
                break  # one chunk, then leave
        for _ in range(200):
            if gw.metrics.records and fake.store.records()[0].complete:
                break
            await asyncio.sleep(0.005)
    (call,) = fake.store.records()
    assert call.cut  # the fake saw its client (the gateway) leave mid-stream
    record = gw.metrics.last
    assert record.status == "disconnected"
    assert record.client_disconnected
    assert record.ledger_charged is not None
    assert record.ledger_charged >= 3  # input estimate plus the partial output
    assert gw.ledger.view().in_flight == {}
