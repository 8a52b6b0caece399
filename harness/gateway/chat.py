"""The ``/chat`` ASGI application: the platform's routes and fetch-level checks, and the glue of a turn.

Routes: ``/health`` (any method), ``POST /chat``, ``GET /chat/{sessionId}/history``,
``DELETE /chat/{sessionId}``; anything else is ``404 not_found``. Every route first resolves the tenant and
checks the declared body size, in the platform's order. A ``/chat`` turn is then three units:
``Admission`` (the checks before a model is called), ``AttemptLoop`` (the calls to the candidate models,
answered through a ``StreamResponder`` or a ``JsonResponder``) and ``Settlement`` (ledger, session,
usage record). A client disconnect cancels the attempts, and with them the upstream, at once.

Where the platform's code and its contract part ways, the app follows the contract as a user reads it;
``PlatformQuirks`` switches bring back the platform's behaviour one by one, and
``docs/reference-gateway.md`` lists every difference.

Responses are built on raw ASGI messages so that header sets, key order and framing are exact. Header
values are read as UTF-8 (invalid bytes replaced), so that no header can make a request fail later.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import Any

from aigw_fakes.hardened_http import Disconnected, Limits, Refused, read_body
from aigw_harness.gateway.admission import Admission, Rejection, Turn, session_problem
from aigw_harness.gateway.attempts import AttemptLoop
from aigw_harness.gateway.clock import Clock
from aigw_harness.gateway.envelope import (
    ClientGone,
    Receive,
    Scope,
    Send,
    fail_body,
    http_refusal_code,
    ok_body,
    send_json,
)
from aigw_harness.gateway.ledger import BudgetLedger
from aigw_harness.gateway.metrics import InMemoryMetrics, MetricsObserver, UsageRecord
from aigw_harness.gateway.ratelimit import RateLimiter
from aigw_harness.gateway.responders import JsonResponder, StreamResponder, answer_error
from aigw_harness.gateway.sessions import SessionStore
from aigw_harness.gateway.settings import FallbackPolicy, PlatformQuirks, Timeouts
from aigw_harness.gateway.settlement import Settlement, publish
from aigw_harness.gateway.tenants import EnvOverrides, TenantConfig, TenantRegistry
from aigw_harness.gateway.upstream import ErrorClass, UpstreamClient, UpstreamError

__all__ = ["ChatApp"]

_HISTORY = re.compile(r"/chat/([^/]*)/history")
_SESSION = re.compile(r"/chat/([^/]*)")


class ChatApp:
    """The ASGI app. It owns nothing that needs closing except the upstream client (``aclose``)."""

    def __init__(
        self,
        *,
        tenants: TenantRegistry,
        env: EnvOverrides,
        upstream: UpstreamClient,
        ledger: BudgetLedger,
        metrics: InMemoryMetrics,
        observers: Iterable[MetricsObserver],
        clock: Clock,
        fallback: FallbackPolicy,
        trace_ids: str,
        timeouts: Timeouts | None = None,
        quirks: PlatformQuirks | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.tenants = tenants
        self.env = env
        self.upstream = upstream
        self.ledger = ledger
        self.metrics = metrics
        self.observers: list[MetricsObserver] = [metrics, *observers]
        self.clock = clock
        self.fallback = fallback
        self.trace_ids = trace_ids
        self.quirks = quirks or PlatformQuirks()
        self.timeouts = timeouts or Timeouts()
        self.limits = limits or Limits()
        self.rate_limiter = RateLimiter(clock)
        self.sessions = SessionStore(clock)
        self.admission = Admission(
            env=env, ledger=ledger, rate_limiter=self.rate_limiter, sessions=self.sessions, quirks=self.quirks
        )
        self.attempts = AttemptLoop(upstream, self.timeouts, fallback, self.quirks)
        self.settlement = Settlement(
            ledger=ledger, sessions=self.sessions, observers=self.observers, quirks=self.quirks
        )

    async def aclose(self) -> None:
        await self.upstream.aclose()

    # ------------------------------------------------------------------ ASGI entry and fetch-level steps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("utf-8", "replace") for k, v in scope["headers"]}
        method: str = scope["method"]
        path: str = scope["path"]
        trace_id = self._trace_id(headers)

        tenant_id = self.tenants.resolve_id(
            tenant_header=headers.get("x-tenant-id"),
            hostname=_hostname(headers, scope),
            api_key=headers.get("x-api-key"),
        )
        if tenant_id is None:
            await send_json(send, 400, fail_body("tenant_required", "Tenant required", trace_id))
            return
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            await send_json(send, 404, fail_body("tenant_unknown", "Unknown tenant", trace_id))
            return
        if method not in ("GET", "HEAD") and "content-length" in headers:
            declared = _js_number(headers["content-length"])
            if declared > self.env.max_request_body_size():
                await send_json(send, 413, fail_body("payload_too_large", "Request body too large", trace_id))
                return

        if path == "/health":
            await send_json(send, 200, ok_body(self._health(tenant), trace_id))
            return
        if path == "/chat":
            if method != "POST":
                await send_json(send, 405, fail_body("method_not_allowed", "Method not allowed", trace_id))
                return
            try:
                body = await read_body(receive, self.limits, headers.get("content-length"))
            except Disconnected:
                return
            except Refused as refused:
                await send_json(send, refused.status, http_refusal_with_trace(refused, trace_id))
                return
            await self._chat(tenant, headers, body, trace_id, receive, send)
            return
        match = _HISTORY.fullmatch(path)
        if match and method == "GET":
            await self._history(tenant, match.group(1), trace_id, send)
            return
        match = _SESSION.fullmatch(path)
        if match and method == "DELETE":
            await self._clear(tenant, match.group(1), trace_id, send)
            return
        await send_json(send, 404, fail_body("not_found", "Not found", trace_id))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _trace_id(self, headers: dict[str, str]) -> str | None:
        if self.trace_ids == "always":
            return headers.get("x-trace-id") or str(uuid.uuid4())
        if "cf-ray" in headers:
            return headers["cf-ray"]
        return headers.get("x-request-id")

    def _health(self, tenant: TenantConfig) -> dict[str, Any]:
        return {
            "status": "ok",
            "tenantId": tenant.tenant_id,
            "environment": self.env.environment(),
            "modelId": self.env.get("MODEL_ID") or tenant.ai_models.chat,
            "fallbackModelId": self.env.get("FALLBACK_MODEL_ID") or tenant.ai_models.chat,
        }

    # ------------------------------------------------------------------ session routes

    async def _history(self, tenant: TenantConfig, session_id: str, trace_id: str | None, send: Send) -> None:
        problem = session_problem(session_id)
        if problem:
            await send_json(send, 400, fail_body("invalid_request", problem, trace_id))
            return
        messages = self.sessions.history(
            self.sessions.key(tenant.tenant_id, session_id),
            limit=self.admission.history_limit(tenant),
            retention_days=tenant.session_retention_days,
            max_messages=tenant.max_messages_per_session,
        )
        data = {"sessionId": session_id, "messages": [m.as_json() for m in messages]}
        await send_json(send, 200, ok_body(data, trace_id))

    async def _clear(self, tenant: TenantConfig, session_id: str, trace_id: str | None, send: Send) -> None:
        problem = session_problem(session_id)
        if problem:
            await send_json(send, 400, fail_body("invalid_request", problem, trace_id))
            return
        self.sessions.clear(self.sessions.key(tenant.tenant_id, session_id))
        await send_json(send, 200, ok_body({"sessionId": session_id, "cleared": True}, trace_id))

    # ------------------------------------------------------------------ /chat

    def _new_record(self, tenant: TenantConfig, trace_id: str | None) -> UsageRecord:
        return UsageRecord(
            request_id=str(uuid.uuid4()),
            started_at=datetime.fromtimestamp(self.clock.now(), tz=UTC).isoformat(),
            tenant_id=tenant.tenant_id,
            gateway_id=tenant.ai_gateway_id,
            route="/chat",
            trace_id=trace_id,
            ledger_store=self.ledger.store_name,
        )

    async def _chat(
        self,
        tenant: TenantConfig,
        headers: dict[str, str],
        body: bytes,
        trace_id: str | None,
        receive: Receive,
        send: Send,
    ) -> None:
        record = self._new_record(tenant, trace_id)
        started = asyncio.get_running_loop().time()
        admitted = await self.admission.admit(tenant, headers, body, trace_id, record, started)
        if isinstance(admitted, Rejection):
            record.status = "rejected"
            record.http_status = admitted.status
            record.error_code = admitted.code
            record.error_detail = admitted.message
            publish(self.observers, record)
            await send_json(
                send, admitted.status, fail_body(admitted.code, admitted.message, trace_id), admitted.headers
            )
            return
        work = self._stream(admitted, send) if admitted.request.stream else self._complete(admitted, send)
        await self._until_disconnect(admitted, work, receive)

    async def _until_disconnect(self, turn: Turn, work: Awaitable[None], receive: Receive) -> None:
        """Run ``work``; if the client leaves first, cancel it (and with it the upstream) at once.

        The work runs in this task and only the watcher in a task of its own, so that the upstream call
        starts now rather than in the event loop's next round, behind whatever else is ready to run."""
        current = asyncio.current_task()
        if current is None:  # pragma: no cover - an ASGI app always runs in a task
            raise RuntimeError("the /chat handler must run in a task")
        finished = False
        left = False

        async def watch() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                left = True
                turn.disconnected = True
                current.cancel()

        try:
            async with asyncio.TaskGroup() as group:
                watcher = group.create_task(watch())
                try:
                    await work
                finally:
                    finished = True
                    watcher.cancel()
        except asyncio.CancelledError:
            # The watcher's own cancellation ends here; any other (the server stopping) goes on.
            if not left or current.uncancel() > 0:
                raise

    async def _settle(self, turn: Turn) -> None:
        failure = answer_error(turn, self.quirks) if turn.served_model is None or turn.error else None
        await self.settlement.settle(turn, failure)

    async def _stream(self, turn: Turn, send: Send) -> None:
        responder = StreamResponder(send, self.quirks)
        try:
            await self.attempts.run(turn, responder)
            turn.served_ended = asyncio.get_running_loop().time()
            await responder.end(turn)
        except ClientGone:
            turn.disconnected = True
        except asyncio.CancelledError:
            turn.disconnected = True
            await self._settle(turn)
            raise
        except Exception as exc:  # a bug must not leave a reservation open or the client without `done`
            turn.error = UpstreamError(ErrorClass.SERVER, f"internal error: {type(exc).__name__}")
            with contextlib.suppress(Exception):
                await responder.end(turn)
        await self._settle(turn)

    async def _complete(self, turn: Turn, send: Send) -> None:
        responder = JsonResponder(send, self.quirks)
        try:
            await self.attempts.run(turn, responder)
        except asyncio.CancelledError:
            await self._settle(turn)
            raise
        except Exception as exc:  # a bug must not leave a reservation open or answer with a traceback
            turn.error = UpstreamError(ErrorClass.SERVER, f"internal error: {type(exc).__name__}")
            turn.served_model = None
        await self._settle(turn)
        await responder.reply(turn)


# ---------------------------------------------------------------------- ASGI helpers


def http_refusal_with_trace(refused: Refused, trace_id: str | None) -> bytes:
    return fail_body(http_refusal_code(refused.status), refused.message, trace_id)


def _js_number(text: str) -> float:
    stripped = text.strip()
    if not stripped:
        return 0.0
    try:
        return float(stripped)
    except ValueError:
        return float("nan")


def _hostname(headers: dict[str, str], scope: Scope) -> str:
    host = headers.get("host")
    if host:
        if host.startswith("["):
            return host[1 : host.find("]")] if "]" in host else host
        return host.rsplit(":", 1)[0] if ":" in host else host
    server = scope.get("server")
    return str(server[0]) if server else ""
