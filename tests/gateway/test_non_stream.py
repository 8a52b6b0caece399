"""Non-streamed /chat (``"stream": false``) through HTTP: envelope, headers, fallback and 502."""

from __future__ import annotations

from .conftest import LLAMA, LLAMA_FAST, SESSION, GatewayFactory
from .upstream_double import Reply, ScriptedUpstream

EXAMPLE = {"x-tenant-id": "example"}
CHAT = {"sessionId": SESSION, "message": "hello", "stream": False}


async def test_success_envelope_and_headers(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers={**EXAMPLE, "x-request-id": "tr"}, json=CHAT)
    assert response.status_code == 200
    assert response.content == (
        b'{"ok":true,"data":{"status":"accepted","sessionId":"11111111-1111-1111-1111-111111111111",'
        b'"stream":false,"message":"Hello"},"traceId":"tr"}'
    )
    headers = response.headers
    assert headers["content-type"] == "application/json"
    assert (
        headers["x-model-id"],
        headers["x-tokens-in"],
        headers["x-tokens-out"],
        headers["x-tokens-total"],
    ) == (
        LLAMA,
        "5",
        "2",
        "7",
    )
    assert int(headers["x-ai-latency-ms"]) >= 0
    assert headers["x-ratelimit-remaining"] == "59"
    for absent in ("x-tenant-id", "x-trace-id", "cache-control"):
        assert absent not in headers
    assert "stream" not in upstream.bodies()[0]
    assert gw.metrics.last.status == "success"


async def test_fallback_serves_and_is_named(
    start_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    upstream.script(LLAMA_FAST, Reply(status=429, error_body={"errors": [{"code": 3040, "message": "busy"}]}))
    async with start_gateway(env={"MODEL_ID": LLAMA_FAST, "FALLBACK_MODEL_ID": LLAMA}) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA
    assert upstream.models() == [LLAMA_FAST, LLAMA]
    assert gw.metrics.last.attempts[0].error_class == "rate_limited"


async def test_failure_is_502_ai_error(start_gateway: GatewayFactory, upstream: ScriptedUpstream) -> None:
    gateway_error = {
        "success": False,
        "result": [],
        "messages": [],
        "error": [{"code": 2009, "message": "Unauthorized"}],
        "name": "AiGatewayError",
        "httpCode": 401,
        "internalCode": 2009,
        "message": "Unauthorized",
    }
    upstream.default = Reply(status=401, error_body=gateway_error)
    async with start_gateway(env={"MODEL_ID": LLAMA_FAST, "FALLBACK_MODEL_ID": LLAMA}) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.status_code == 502
    assert response.content == b'{"ok":false,"error":{"code":"ai_error","message":"AI provider unavailable"}}'
    assert "x-ratelimit-limit" not in response.headers
    assert upstream.models() == [LLAMA_FAST]  # auth errors do not fall back
    attempt = gw.metrics.last.attempts[0]
    assert (attempt.error_class, attempt.status, attempt.cf_code) == ("auth", 401, 2009)
    assert "secret-token" not in repr(gw.metrics.last)
