"""An httpx transport for live runs: every request to the gateway passes the cost guard and carries the
run id.

The reference gateway takes an injected transport for its upstream calls; the live target gives it this
one, so that a scenario run against the real gateway cannot send more than the caps allow, whatever the
scenario does. A refused request fails as a transport error (the gateway treats it as an upstream
failure) and the refusal is kept for the report. The run id goes into ``cf-aig-event-id`` (as a prefix)
and into ``cf-aig-metadata.runId`` when the five-entry limit leaves room.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from aigw_harness.live.cost import CostCapExceeded, CostGuard, PlannedRequest

__all__ = ["DEFAULT_MAX_TOKENS", "LIVE_OUTPUT_TOKENS", "GuardedTransport", "SentCall"]

METADATA_LIMIT = 5
DEFAULT_MAX_TOKENS = 256
"""Workers AI's default ``max_tokens`` for text generation: the worst case of a request that sets none."""
LIVE_OUTPUT_TOKENS = 64
"""The live target's bound on each answer (``max_tokens``), unless ``max_output_tokens`` says otherwise: the
catalogue's checks need a few tokens, not essays, and the bound is what the cost plan prices."""


@dataclass(frozen=True, slots=True)
class SentCall:
    model: str
    stream: bool
    status: int
    log_id: str | None


class GuardedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        guard: CostGuard,
        run_id: str,
        *,
        output_tokens: int | None = None,
        skip_cache: bool = False,
    ) -> None:
        """``output_tokens``: lower each request's ``max_tokens`` to this (set it when absent);
        ``skip_cache``: send ``cf-aig-skip-cache: true`` unless the request says otherwise, so that a cached
        answer does not stand in for a real call (its timing, its tokens, its log)."""
        self.inner = inner
        self.guard = guard
        self.run_id = run_id
        self.output_tokens = output_tokens
        self.skip_cache = skip_cache
        self.refused: list[str] = []
        self.sent = 0
        self.calls: list[SentCall] = []
        """Every gateway request sent, in order, with its ``cf-aig-log-id``: what the Logs API must show."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        marker = "/workers-ai/"
        if request.method == "POST" and marker in path:
            request = self._bounded(request)
            planned = self._planned(path.split(marker, 1)[1], request)
            try:
                self.guard.admit(planned)
            except CostCapExceeded as exc:
                self.refused.append(str(exc))
                raise httpx.ConnectError(f"aigw cost guard: {exc}", request=request) from None
            request = self._tagged(request)
            self.sent += 1
            response = await self.inner.handle_async_request(request)
            self.calls.append(
                SentCall(
                    planned.model, planned.stream, response.status_code, response.headers.get("cf-aig-log-id")
                )
            )
            return response
        return await self.inner.handle_async_request(request)

    def _bounded(self, request: httpx.Request) -> httpx.Request:
        if self.output_tokens is None and not self.skip_cache:
            return request
        headers = httpx.Headers(request.headers)
        content = request.content
        if self.skip_cache and "cf-aig-skip-cache" not in headers:
            headers["cf-aig-skip-cache"] = "true"
        if self.output_tokens is not None:
            try:
                body: Any = json.loads(content or b"{}")
            except ValueError:
                body = None
            if isinstance(body, dict):
                asked = body.get("max_tokens")
                limit = self.output_tokens
                body["max_tokens"] = min(asked, limit) if isinstance(asked, int) and asked > 0 else limit
                content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
                headers["content-length"] = str(len(content))
        return httpx.Request(
            request.method, request.url, headers=headers, content=content, extensions=request.extensions
        )

    def _planned(self, model: str, request: httpx.Request) -> PlannedRequest:
        try:
            body: Any = json.loads(request.content or b"{}")
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        messages = body.get("messages")
        if not isinstance(messages, list):
            messages = [{"role": "user", "content": str(body.get("prompt", ""))}]
        max_tokens = body.get("max_tokens")
        return PlannedRequest(
            name=f"request-{self.guard.requests + 1}",
            model=model,
            messages=[m if isinstance(m, dict) else {"content": str(m)} for m in messages],
            max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else DEFAULT_MAX_TOKENS,
            stream=bool(body.get("stream")),
        )

    def _tagged(self, request: httpx.Request) -> httpx.Request:
        headers = httpx.Headers(request.headers)
        event = headers.get("cf-aig-event-id")
        headers["cf-aig-event-id"] = f"{self.run_id}:{event}" if event else self.run_id
        try:
            metadata = json.loads(headers.get("cf-aig-metadata", "{}"))
        except ValueError:
            metadata = None
        if isinstance(metadata, dict) and len(metadata) < METADATA_LIMIT:
            metadata["runId"] = self.run_id
            headers["cf-aig-metadata"] = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
        return httpx.Request(
            request.method,
            request.url,
            headers=headers,
            content=request.content,
            extensions=request.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
