"""Streaming /chat through HTTP against a scripted upstream: events, headers, usage from both stream
shapes, fallback before the first token only, in-band errors, truncation, timeouts and disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from harness.gateway import ErrorClass, FallbackPolicy, Timeouts
from harness.sse import ServerSentEvent, decode_all

from .conftest import LLAMA, LLAMA_FAST, SESSION, GatewayFactory
from .upstream_double import Reply, ScriptedUpstream

EXAMPLE = {"x-tenant-id": "example"}
WITH_FALLBACK = {"MODEL_ID": LLAMA_FAST, "FALLBACK_MODEL_ID": LLAMA}
CHAT = {"sessionId": SESSION, "message": "hello"}


def events(response: httpx.Response) -> list[ServerSentEvent]:
    return decode_all(response.content)


def payloads(response: httpx.Response) -> list[tuple[str, Any]]:
    return [(e.event, json.loads(e.data)) for e in events(response)]


async def test_success_frames_headers_and_usage(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers={**EXAMPLE, "x-request-id": "tr"}, json=CHAT)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-tenant-id"] == "example"
    assert response.headers["x-trace-id"] == "tr"
    assert response.headers["x-model-id"] == LLAMA
    assert response.headers["x-tokens-in"] == "2"  # the estimate: "hello" is 5 UTF-16 units
    assert response.headers["x-ratelimit-limit"] == "60"
    for absent in ("x-tokens-out", "x-tokens-total", "x-ai-latency-ms"):
        assert absent not in response.headers
    text = response.content.decode()
    assert text.startswith(
        'data: {"sessionId":"11111111-1111-1111-1111-111111111111","role":"assistant","content":"Hel",'
        '"tenantId":"example","traceId":"tr"}\n\n'
    )
    assert '\n\nevent: done\ndata: {"done":true,"usage":{"modelId":"@cf/meta/llama-3.1-8b-instruct",' in text
    assert text.endswith("}}\n\n")
    kinds = payloads(response)
    assert [k for k, _ in kinds] == ["message", "message", "done"]
    usage = kinds[-1][1]["usage"]
    assert list(usage) == ["modelId", "tokensIn", "tokensOut", "totalTokens", "latencyMs"]
    assert (usage["tokensIn"], usage["tokensOut"], usage["totalTokens"]) == (5, 2, 7)  # from the stream
    record = gw.metrics.last
    assert (record.status, record.tokens_in_estimated, record.tokens_out_estimated) == (
        "success",
        False,
        False,
    )
    assert record.log_ids == ["01JADMCQQQBWH3NXZ5GCRN98DP"]
    assert record.ttft_ms is not None
    assert record.latency_ms is not None
    assert upstream.bodies()[0] == {"messages": [{"role": "user", "content": "hello"}], "stream": True}


async def test_upstream_request_shape(start_gateway: GatewayFactory, upstream: ScriptedUpstream) -> None:
    async with start_gateway() as (gw, client):
        await client.post("/chat", headers={**EXAMPLE, "cf-ray": "ray1"}, json=CHAT)
    request = upstream.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/example-account/example-gateway/workers-ai/@cf/meta/llama-3.1-8b-instruct"
    assert request.headers["authorization"] == "Bearer secret-token"
    assert "cf-aig-authorization" not in request.headers
    assert json.loads(request.headers["cf-aig-metadata"]) == {
        "traceId": "ray1",
        "sessionId": SESSION,
        "route": "/chat",
        "tenantId": "example",
    }
    assert request.headers["cf-aig-event-id"] == gw.metrics.last.request_id


async def test_chat_completion_shape_sums_increments_but_prefers_the_cumulative_total(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA, Reply(tokens=["a", "b", "c"], shape="chat"))
    async with start_gateway() as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    kinds = payloads(response)
    assert [p["content"] for k, p in kinds if k == "message"] == ["a", "b", "c"]
    assert kinds[-1][1]["usage"]["totalTokens"] == 7  # the trailing cumulative frame, not 3 + 7

    upstream.script("@cf/other", Reply(tokens=["a", "b", "c"], shape="chat", usage=None))
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "modelId": "@cf/other"})
    usage = payloads(response)[-1][1]["usage"]
    assert (usage["tokensIn"], usage["tokensOut"]) == (9, 3)  # increments summed
    assert not gw.metrics.last.tokens_out_estimated


async def test_estimates_are_used_and_marked_when_the_stream_has_no_usage(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA, Reply(tokens=["Hello", " world"], usage=None))
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    usage = payloads(response)[-1][1]["usage"]
    assert (usage["tokensIn"], usage["tokensOut"], usage["totalTokens"]) == (2, 3, 5)
    record = gw.metrics.last
    assert record.tokens_in_estimated
    assert record.tokens_out_estimated


async def test_fallback_before_first_token_names_the_served_model(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA_FAST, Reply(status=503, error_body={"errors": [{"code": 3040, "message": "busy"}]}))
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert upstream.models() == [LLAMA_FAST, LLAMA]
    assert response.headers["x-model-id"] == LLAMA
    assert payloads(response)[-1][1]["usage"]["modelId"] == LLAMA
    record = gw.metrics.last
    assert record.models_tried == [LLAMA_FAST, LLAMA]
    assert record.model_served == LLAMA
    assert record.fallback_used
    first = record.attempts[0]
    assert (first.outcome, first.error_class, first.status, first.cf_code, first.fell_back) == (
        "failed",
        "server",
        503,
        3040,
        True,
    )
    # The failed attempt costs nothing: only the fallback's 7 tokens are charged.
    assert record.ledger_charged == 7


async def test_input_errors_do_not_fall_back(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    error = {"errors": [{"code": 8001, "message": "AiError: Invalid input"}], "success": False}
    upstream.script(LLAMA_FAST, Reply(status=400, error_body=error))
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert upstream.models() == [LLAMA_FAST]
    assert "x-model-id" not in response.headers
    assert response.content == (
        b'event: error\ndata: {"code":"ai_error","message":"AI provider unavailable"}\n\n'
        b'event: done\ndata: {"done":true}\n\n'
    )
    assert gw.metrics.last.attempts[0].error_class == "input"
    assert gw.ledger.view().in_flight == {}
    assert gw.ledger.view().usage == {}


async def test_fallback_policy_is_configurable(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA_FAST, Reply(status=429, error_body={"errors": [{"code": 3040, "message": "busy"}]}))
    policy = FallbackPolicy(on=frozenset({ErrorClass.SERVER}))
    async with start_gateway(env=WITH_FALLBACK, fallback=policy) as (_, client):
        await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert upstream.models() == [LLAMA_FAST]


async def test_all_candidates_fail(start_gateway: GatewayFactory, upstream: ScriptedUpstream) -> None:
    upstream.default = Reply(status=500, error_body={"errors": [{"code": 1000, "message": "boom"}]})
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


async def test_mid_stream_failure_sends_error_then_done_and_never_retries(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA_FAST, Reply(tokens=["par", "tial", "more"], fail_after=2))
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
        history = (await client.get(f"/chat/{SESSION}/history", headers=EXAMPLE)).json()["data"]["messages"]
    assert upstream.models() == [LLAMA_FAST]
    kinds = payloads(response)
    assert [k for k, _ in kinds] == ["message", "message", "error", "done"]
    assert "".join(p["content"] for k, p in kinds if k == "message") == "partial"
    done = kinds[-1][1]
    assert done["usage"]["modelId"] == LLAMA_FAST
    assert done["usage"]["tokensOut"] == 2  # "partial" is 7 UTF-16 units: an estimate
    record = gw.metrics.last
    assert (record.status, record.attempts[0].outcome) == ("error", "failed_mid_stream")
    assert record.ledger_charged == 2 + 2  # partial usage is charged
    assert [m["role"] for m in history] == ["user"]  # a failed answer is not stored


async def test_error_frame_mid_stream(start_gateway: GatewayFactory, upstream: ScriptedUpstream) -> None:
    upstream.script(LLAMA, Reply(tokens=["a", "b"], error_frame_after=1))
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [k for k, _ in payloads(response)] == ["message", "error", "done"]
    assert gw.metrics.last.attempts[0].cf_code == 3040


async def test_truncated_stream_is_an_error_not_a_success(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA, Reply(tokens=["cut", "off"], usage=None, terminate=False))
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [k for k, _ in payloads(response)] == ["message", "message", "error", "done"]
    assert gw.metrics.last.status == "truncated"


async def test_truncated_before_first_token_falls_back(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA_FAST, Reply(tokens=[], usage=None, terminate=False))
    async with start_gateway(env=WITH_FALLBACK) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert upstream.models() == [LLAMA_FAST, LLAMA]
    assert response.headers["x-model-id"] == LLAMA


async def test_first_byte_timeout_falls_back(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA_FAST, Reply(head_delay=5))
    timeouts = Timeouts(first_byte=0.05, between_events=1, total=3)
    async with start_gateway(env=WITH_FALLBACK, timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA
    assert gw.metrics.last.attempts[0].error_class == "timeout"


async def test_stall_before_first_token_falls_back(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA_FAST, Reply(stall_after=0, stall=5))
    timeouts = Timeouts(first_byte=1, between_events=0.05, total=3)
    async with start_gateway(env=WITH_FALLBACK, timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA
    assert gw.metrics.last.attempts[0].error_class == "timeout"
    assert upstream.closed == [LLAMA_FAST]


async def test_stall_after_first_token_is_an_in_band_error(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA_FAST, Reply(tokens=["a", "b"], stall_after=1, stall=5))
    timeouts = Timeouts(first_byte=1, between_events=0.05, total=3)
    async with start_gateway(env=WITH_FALLBACK, timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert upstream.models() == [LLAMA_FAST]
    assert response.headers["x-model-id"] == LLAMA_FAST
    assert [k for k, _ in payloads(response)] == ["message", "error", "done"]
    assert gw.metrics.last.attempts[0].error_class == "timeout"


async def test_total_timeout_ends_the_stream(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA, Reply(tokens=["a", "b", "c", "d"], token_delay=0.04))
    timeouts = Timeouts(first_byte=1, between_events=1, total=0.1)
    async with start_gateway(timeouts=timeouts) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    kinds = [k for k, _ in payloads(response)]
    assert kinds[-2:] == ["error", "done"]
    assert 1 <= kinds.count("message") < 4


async def test_json_answer_to_a_stream_request_is_one_frame(start_gateway: GatewayFactory) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"response": "whole", "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
        )

    async with start_gateway(transport=httpx.MockTransport(handler)) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    kinds = payloads(response)
    assert [p.get("content") for k, p in kinds if k == "message"] == ["whole"]
    assert kinds[-1][1]["usage"]["tokensIn"] == 3


async def test_client_disconnect_cancels_upstream_and_charges_partial_usage(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA, Reply(tokens=["a"] + ["b"] * 50, token_delay=0.05))
    async with start_gateway() as (gw, client):
        async with client.stream("POST", "/chat", headers=EXAMPLE, json=CHAT) as response:
            async for _ in response.aiter_bytes():
                break  # one chunk, then leave
        for _ in range(100):
            if gw.metrics.records:
                break
            await asyncio.sleep(0.01)
    assert upstream.closed == [LLAMA]
    assert upstream.finished == []
    record = gw.metrics.last
    assert record.status == "disconnected"
    assert record.client_disconnected
    assert record.ledger_charged is not None
    assert record.ledger_charged >= 3
    assert gw.ledger.view().in_flight == {}
