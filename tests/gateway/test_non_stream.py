"""Non-streamed /chat ("stream": false) through HTTP against the fake: envelope, headers, fallback, 502."""

from __future__ import annotations

import json

from aigw_fakes.server import FakeGateway

from .conftest import LLAMA, LLAMA_FAST, SESSION, GatewayFactory

EXAMPLE = {"x-tenant-id": "example"}
CHAT = {"sessionId": SESSION, "message": "hello", "stream": False}


async def test_success_envelope_and_headers(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "Hello! How can I assist you today?", "prompt_tokens": 32}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers={**EXAMPLE, "x-request-id": "tr"}, json=CHAT)
    assert response.status_code == 200
    assert response.content == (
        b'{"ok":true,"data":{"status":"accepted","sessionId":"11111111-1111-1111-1111-111111111111",'
        b'"stream":false,"message":"Hello! How can I assist you today?"},"traceId":"tr"}'
    )
    (call,) = fake.store.records()
    assert "stream" not in json.loads(call.request_body)
    headers = response.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-model-id"] == LLAMA
    assert headers["x-tokens-in"] == "32"  # real usage from the REST envelope
    assert headers["x-tokens-out"] == str(call.tokens_out)
    assert headers["x-tokens-total"] == str(32 + (call.tokens_out or 0))
    assert int(headers["x-ai-latency-ms"]) >= 0
    assert headers["x-ratelimit-remaining"] == "59"
    for absent in ("x-tenant-id", "x-trace-id", "cache-control"):
        assert absent not in headers
    record = gw.metrics.last
    assert (record.status, record.http_status, record.log_ids) == ("success", 200, [call.id])


async def test_fallback_serves_and_is_named(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"error": "out_of_capacity"}]}})
    async with start_gateway(env={"MODEL_ID": LLAMA_FAST, "FALLBACK_MODEL_ID": LLAMA}) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.status_code == 200
    assert response.headers["x-model-id"] == LLAMA
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST, LLAMA]
    assert gw.metrics.last.attempts[0].error_class == "rate_limited"


async def test_failure_is_502_ai_error(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    async with start_gateway(env={"MODEL_ID": LLAMA_FAST, "FALLBACK_MODEL_ID": LLAMA}, api_token="wrong") as (
        gw,
        client,
    ):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.status_code == 502
    assert response.content == b'{"ok":false,"error":{"code":"ai_error","message":"AI provider unavailable"}}'
    assert "x-ratelimit-limit" not in response.headers
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST]  # credentials errors do not fall back
    attempt = gw.metrics.last.attempts[0]
    assert (attempt.error_class, attempt.status) == ("auth", 401)
    assert gw.metrics.last.http_status == 502
    assert "wrong" not in repr(gw.metrics.last)


async def test_partial_stream_answer_to_a_json_request_is_not_a_success(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"stream": {"cut_after_bytes": 10}}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.status_code == 502
    assert gw.metrics.last.status == "error"
