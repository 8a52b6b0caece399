"""Platform-shaped SSE bodies and a client that streams them, for the plugin's tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from aigw_harness.sse import encode_event
from aigw_harness.testing.sse_client import SSEClient

SESSION = "11111111-1111-1111-1111-111111111111"


def compact(body: Any) -> str:
    """JSON as the platform writes it (JavaScript's JSON.stringify): no spaces, no ASCII escaping."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def token(content: str, *, tenant: str = "alpha") -> bytes:
    body = {"sessionId": SESSION, "role": "assistant", "content": content, "tenantId": tenant}
    return encode_event(compact(body))


def done(usage: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"done": True}
    if usage is not None:
        body["usage"] = usage
    return encode_event(compact(body), event="done")


def error(code: str = "ai_error", message: str = "AI provider unavailable") -> bytes:
    return encode_event(compact({"code": code, "message": message}), event="error")


def platform_stream(*contents: str) -> list[bytes]:
    usage = {"modelId": "@cf/meta/llama-3.1-8b-instruct-fp8-fast", "tokensIn": 2, "tokensOut": len(contents)}
    return [token(c) for c in contents] + [done(usage)]


def streaming_client(
    chunks: Sequence[bytes],
    *,
    delay_s: float = 0.0,
    status: int = 200,
    headers: dict[str, str] | None = None,
    cut: bool = False,
) -> SSEClient:
    """An SSEClient whose server answers every request with ``chunks``, ``delay_s`` apart.

    ``cut`` ends the body with a connection error, as a server that goes away mid-stream does.
    """
    response_headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
    response_headers.update(headers or {})

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            if delay_s:
                await asyncio.sleep(delay_s)
            yield chunk
        if cut:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=response_headers, content=body())

    return SSEClient(transport=httpx.MockTransport(handler))
