"""The ``/chat`` ASGI application: the platform's routes, checks, envelopes, headers and SSE events.

Routes: ``/health`` (any method), ``POST /chat``, ``GET /chat/{sessionId}/history``,
``DELETE /chat/{sessionId}``; anything else is ``404 not_found``. Every route first resolves the tenant and
checks the declared body size, in the platform's order. ``/chat`` then runs: JSON, schema, message length,
model selection and allow-list, rate limit, history, append of the user message, input estimate, budget,
and the upstream call, streamed as SSE (``data``* then ``error``? then ``done``) or answered as JSON.

Where the platform's code and its contract part ways, this app follows the contract as a user reads it:
``x-model-id`` and ``done.usage.modelId`` name the model that served (the stream's head is sent when the
first token arrives, so that it can); usage is read from the stream; a truncated stream ends in an
``error`` event; partial usage is charged when a stream fails or the client leaves; a client disconnect
cancels the upstream at once. ``docs/reference-gateway.md`` lists every difference.

Responses are built on raw ASGI messages so that header sets, key order and framing are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from harness.gateway.clock import Clock
from harness.gateway.ledger import BudgetExceeded, BudgetLedger, Reservation
from harness.gateway.metrics import (
    USD_PER_NEURON,
    AttemptRecord,
    InMemoryMetrics,
    MetricsObserver,
    UsageRecord,
    neurons_for,
)
from harness.gateway.ratelimit import RateLimiter, RateLimitResult
from harness.gateway.selection import ModelNotAllowed, Selection, select_models
from harness.gateway.sessions import SessionStore
from harness.gateway.settings import FallbackPolicy, PlatformQuirks
from harness.gateway.tenants import EnvOverrides, TenantConfig, TenantRegistry
from harness.gateway.tokens import (
    TokenCounts,
    UsageTracker,
    estimate_tokens_from_messages,
    utf16_len,
)
from harness.gateway.upstream import ChatMessage, ErrorClass, UpstreamClient, UpstreamError, gateway_metadata
from harness.sse import encode_event

__all__ = ["ChatApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_HISTORY = re.compile(r"/chat/([^/]*)/history")
_SESSION = re.compile(r"/chat/([^/]*)")
_MAX_MESSAGE = 10000
_JSON_TYPE = (b"content-type", b"application/json")


def dumps(value: Any) -> bytes:
    """Compact JSON, non-ASCII kept, as ``JSON.stringify`` writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _with_trace(payload: dict[str, Any], trace_id: str | None) -> dict[str, Any]:
    if trace_id is not None:
        payload["traceId"] = trace_id
    return payload


def ok_body(data: Any, trace_id: str | None) -> bytes:
    return dumps(_with_trace({"ok": True, "data": data}, trace_id))


def fail_body(code: str, message: str, trace_id: str | None) -> bytes:
    return dumps(_with_trace({"ok": False, "error": {"code": code, "message": message}}, trace_id))


class _ClientGone(Exception):
    """Writing to the client failed: it has gone."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    session_id: str
    message: str
    model_id: str | None
    stream: bool
    user_id: str | None


def parse_chat_request(payload: Any) -> ChatRequest | None:
    """The platform's zod schema: unknown keys stripped, ``stream`` defaulting to true."""
    if not isinstance(payload, dict):
        return None
    session_id = payload.get("sessionId")
    message = payload.get("message")
    if not isinstance(session_id, str) or _UUID.fullmatch(session_id) is None:
        return None
    if not isinstance(message, str) or not 1 <= utf16_len(message) <= _MAX_MESSAGE:
        return None
    optional: dict[str, str | None] = {}
    for key in ("modelId", "userId"):
        if key not in payload:
            optional[key] = None
            continue
        value = payload[key]
        if not isinstance(value, str) or not value:
            return None
        optional[key] = value
    stream = payload.get("stream", True)
    if not isinstance(stream, bool):
        return None
    return ChatRequest(session_id, message, optional["modelId"], stream, optional["userId"])


@dataclass
class _Call:
    """One /chat request in flight."""

    tenant: TenantConfig
    trace_id: str | None
    request: ChatRequest
    record: UsageRecord
    selection: Selection
    rate: RateLimitResult
    messages: list[ChatMessage]
    estimated_in: int
    reservation: Reservation
    metadata: dict[str, str]
    started: float  # loop time
    head_sent: bool = False
    served_model: str | None = None
    served_started: float | None = None
    served_ended: float | None = None
    tracker: UsageTracker = field(default_factory=UsageTracker)
    answer: list[str] = field(default_factory=list)
    error: UpstreamError | None = None
    disconnected: bool = False
    token_frame: tuple[bytes, bytes] | None = None


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
        quirks: PlatformQuirks | None = None,
    ) -> None:
        self.tenants = tenants
        self.env = env
        self.upstream = upstream
        self.ledger = ledger
        self.metrics = metrics
        self.observers = [metrics, *observers]
        self.clock = clock
        self.fallback = fallback
        self.trace_ids = trace_ids
        self.quirks = quirks or PlatformQuirks()
        self.rate_limiter = RateLimiter(clock)
        self.sessions = SessionStore(clock)

    async def aclose(self) -> None:
        await self.upstream.aclose()

    # ------------------------------------------------------------------ ASGI entry and fetch-level steps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method: str = scope["method"]
        path: str = scope["path"]
        trace_id = self._trace_id(headers)

        tenant_id = self.tenants.resolve_id(
            tenant_header=headers.get("x-tenant-id"),
            hostname=_hostname(headers, scope),
            api_key=headers.get("x-api-key"),
        )
        if tenant_id is None:
            await _send_json(send, 400, fail_body("tenant_required", "Tenant required", trace_id))
            return
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            await _send_json(send, 404, fail_body("tenant_unknown", "Unknown tenant", trace_id))
            return
        if method not in ("GET", "HEAD") and "content-length" in headers:
            declared = _js_number(headers["content-length"])
            if declared > self.env.max_request_body_size():
                await _send_json(
                    send, 413, fail_body("payload_too_large", "Request body too large", trace_id)
                )
                return

        if path == "/health":
            await _send_json(send, 200, ok_body(self._health(tenant), trace_id))
            return
        if path == "/chat":
            if method != "POST":
                await _send_json(send, 405, fail_body("method_not_allowed", "Method not allowed", trace_id))
                return
            body = await _read_body(receive)
            if body is None:
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
        await _send_json(send, 404, fail_body("not_found", "Not found", trace_id))

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

    def _session_problem(self, session_id: str) -> str | None:
        if not session_id:
            return "Missing sessionId"
        if _UUID.fullmatch(session_id) is None:
            return "Invalid sessionId"
        return None

    async def _history(self, tenant: TenantConfig, session_id: str, trace_id: str | None, send: Send) -> None:
        problem = self._session_problem(session_id)
        if problem:
            await _send_json(send, 400, fail_body("invalid_request", problem, trace_id))
            return
        messages = self.sessions.history(
            self.sessions.key(tenant.tenant_id, session_id),
            limit=self._history_limit(tenant),
            retention_days=tenant.session_retention_days,
            max_messages=tenant.max_messages_per_session,
        )
        data = {"sessionId": session_id, "messages": [m.as_json() for m in messages]}
        await _send_json(send, 200, ok_body(data, trace_id))

    async def _clear(self, tenant: TenantConfig, session_id: str, trace_id: str | None, send: Send) -> None:
        problem = self._session_problem(session_id)
        if problem:
            await _send_json(send, 400, fail_body("invalid_request", problem, trace_id))
            return
        self.sessions.clear(self.sessions.key(tenant.tenant_id, session_id))
        await _send_json(send, 200, ok_body({"sessionId": session_id, "cleared": True}, trace_id))

    def _history_limit(self, tenant: TenantConfig) -> int:
        env_count = self.env.max_message_count()
        per_session = tenant.max_messages_per_session
        return min(per_session, env_count if env_count is not None else per_session)

    def _append_user_turn(self, session_key: str, tenant: TenantConfig, message: str) -> None:
        self.sessions.append(
            session_key,
            "user",
            message,
            retention_days=tenant.session_retention_days,
            max_messages=tenant.max_messages_per_session,
        )

    # ------------------------------------------------------------------ /chat checks

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

    async def _reject(
        self,
        send: Send,
        record: UsageRecord,
        status: int,
        code: str,
        message: str,
        trace_id: str | None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        record.status = "rejected"
        record.http_status = status
        record.error_code = code
        record.error_detail = message
        self._publish(record)
        await _send_json(send, status, fail_body(code, message, trace_id), headers)

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
        try:
            payload = json.loads(body.decode("utf-8", errors="replace"), parse_constant=_reject_constant)
        except ValueError:
            await self._reject(send, record, 400, "invalid_json", "Invalid JSON", trace_id)
            return
        request = parse_chat_request(payload)
        if request is None:
            await self._reject(send, record, 400, "invalid_request", "Invalid request", trace_id)
            return
        record.session_id = request.session_id
        record.stream = request.stream
        limit = self.env.max_message_length()
        if limit is not None and utf16_len(request.message) > limit:
            await self._reject(send, record, 400, "invalid_request", "Message too long", trace_id)
            return
        try:
            selection = select_models(request.model_id, self.env, tenant)
        except ModelNotAllowed as exc:
            record.selection = [exc.decision.as_dict()]
            await self._reject(
                send, record, 403, "model_not_allowed", "Requested model is not allowed", trace_id
            )
            return
        record.selection = selection.as_dicts()

        user_key = request.user_id or headers.get("x-user-id") or "anonymous"
        record.rate_limit_key = f"{tenant.tenant_id}:ratelimit:{user_key}"
        rate = self.rate_limiter.check(
            record.rate_limit_key, tenant.rate_limit.per_minute, tenant.rate_limit.window_sec
        )
        if not rate.allowed:
            await self._reject(
                send, record, 429, "rate_limited", "Rate limit exceeded", trace_id, rate.headers()
            )
            return

        session_key = self.sessions.key(tenant.tenant_id, request.session_id)
        history = self.sessions.history(
            session_key,
            limit=self._history_limit(tenant),
            retention_days=tenant.session_retention_days,
            max_messages=tenant.max_messages_per_session,
        )
        if self.quirks.append_before_budget_check:
            self._append_user_turn(session_key, tenant, request.message)
        messages = [ChatMessage(m.role, m.content) for m in history] + [ChatMessage("user", request.message)]
        estimated_in = estimate_tokens_from_messages(m.content for m in messages)
        record.estimated_tokens_in = estimated_in

        try:
            reservation = await self.ledger.admit(tenant, estimated_in)
        except BudgetExceeded as exc:
            record.budget_window = exc.window
            await self._reject(send, record, 429, "budget_exceeded", str(exc), trace_id)
            return
        record.ledger_keys = [reservation.daily_key, reservation.monthly_key]
        if not self.quirks.append_before_budget_check:
            # Only an admitted turn enters the history: a refused one would be sent, and charged, again
            # with every later turn, and the client would see a question that was never answered.
            self._append_user_turn(session_key, tenant, request.message)

        metadata_in: dict[str, object] = {
            "traceId": trace_id,
            "sessionId": request.session_id,
            "route": "/chat",
        }
        metadata, dropped = gateway_metadata(metadata_in, tenant.tenant_id)
        record.metadata_sent = metadata
        record.metadata_dropped = dropped
        call = _Call(
            tenant,
            trace_id,
            request,
            record,
            selection,
            rate,
            messages,
            estimated_in,
            reservation,
            metadata,
            started,
        )
        work = self._stream(call, send) if request.stream else self._complete(call, send)
        await self._until_disconnect(call, work, receive)

    async def _until_disconnect(self, call: _Call, work: Awaitable[None], receive: Receive) -> None:
        """Run ``work``; if the client leaves first, cancel it (and with it the upstream) at once."""

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        async def run() -> None:
            await work

        async with asyncio.TaskGroup() as group:
            worker = group.create_task(run())
            watcher = group.create_task(watch())
            await asyncio.wait((worker, watcher), return_when=asyncio.FIRST_COMPLETED)
            if not worker.done():
                call.disconnected = True
                worker.cancel()
            watcher.cancel()

    # ------------------------------------------------------------------ upstream attempts

    def _fall_back(self, error: UpstreamError, index: int, call: _Call) -> bool:
        if index + 1 >= len(call.selection.candidates):
            return False
        deadline = self.upstream.total_timeout
        if deadline is not None and asyncio.get_running_loop().time() - call.started >= deadline:
            return False
        return self.fallback.allows(error.error_class)

    @staticmethod
    def _attempt_failed(attempt: AttemptRecord, error: UpstreamError) -> None:
        attempt.outcome = "failed"
        attempt.error_class = error.error_class.value
        attempt.status = error.status
        attempt.cf_code = error.code
        attempt.message = error.message
        attempt.log_id = error.log_id or attempt.log_id

    async def _stream(self, call: _Call, send: Send) -> None:
        loop = asyncio.get_running_loop()
        deadline = self.upstream.deadline()
        record = call.record
        try:
            for index, model in enumerate(call.selection.candidates):
                attempt = AttemptRecord(model, "pending")
                record.attempts.append(attempt)
                record.models_tried.append(model)
                attempt_started = loop.time()
                call.tracker = UsageTracker(ignore_reported=self.quirks.stream_usage_estimates_only)
                try:
                    async with self.upstream.stream(
                        account_id=call.tenant.account_id,
                        gateway_id=call.tenant.ai_gateway_id,
                        model=model,
                        messages=call.messages,
                        metadata=call.metadata,
                        event_id=record.request_id,
                        deadline=deadline,
                    ) as upstream:
                        attempt.log_id = upstream.log_id
                        async for batch in upstream.batches():
                            # Tokens that arrived together leave together: one event each, one write.
                            events: list[bytes] = []
                            for frame in batch:
                                call.tracker.add_frame(frame)
                                if frame.token:
                                    if not call.head_sent:
                                        await self._start_stream(call, send, model, attempt_started)
                                    call.answer.append(frame.token)
                                    events.append(self._token_event(call, frame.token))
                            if events:
                                await _write(send, b"".join(events))
                    if not call.head_sent:
                        await self._start_stream(call, send, model, attempt_started)
                    attempt.outcome = "served"
                    break
                except UpstreamError as error:
                    if error.truncated and self.quirks.truncation_is_success:
                        if not call.head_sent:
                            await self._start_stream(call, send, model, attempt_started)
                        attempt.outcome = "served"
                        break
                    self._attempt_failed(attempt, error)
                    if call.head_sent:
                        attempt.outcome = "failed_mid_stream"
                        call.error = error
                        break
                    if self._fall_back(error, index, call):
                        attempt.fell_back = True
                        continue
                    call.error = error
                    break
                finally:
                    attempt.duration_ms = (loop.time() - attempt_started) * 1000
            call.served_ended = loop.time()
            await self._end_stream(call, send)
        except _ClientGone:
            call.disconnected = True
            if record.attempts and record.attempts[-1].outcome == "pending":
                record.attempts[-1].outcome = "cancelled"
        except asyncio.CancelledError:
            call.disconnected = True
            if record.attempts and record.attempts[-1].outcome == "pending":
                record.attempts[-1].outcome = "cancelled"
            await self._finish(call)
            raise
        except Exception as exc:  # a bug must not leave a reservation open or the client without `done`
            call.error = UpstreamError(ErrorClass.SERVER, f"internal error: {type(exc).__name__}")
            with contextlib.suppress(Exception):
                await self._end_stream(call, send)
        await self._finish(call)

    async def _end_stream(self, call: _Call, send: Send) -> None:
        if not call.head_sent:
            await self._start_stream(call, send, None, None)
        if call.error is not None:
            await _write(send, encode_event(self._error_payload(call), event="error"))
        await _write(send, encode_event(self._done_payload(call), event="done"))
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError as exc:
            raise _ClientGone from exc

    async def _start_stream(
        self, call: _Call, send: Send, model: str | None, attempt_started: float | None
    ) -> None:
        loop_now = asyncio.get_running_loop().time()
        call.head_sent = True
        if model is not None:
            call.served_model = model
            call.served_started = attempt_started
            call.record.ttft_ms = (loop_now - call.started) * 1000
        headers: Headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            (b"x-tenant-id", call.tenant.tenant_id.encode()),
        ]
        if call.trace_id is not None:
            headers.append((b"x-trace-id", call.trace_id.encode("latin-1", errors="replace")))
        headers += call.rate.headers()
        named = call.selection.primary.model if self.quirks.stream_model_header_primary else model
        if named is not None:
            headers.append((b"x-model-id", named.encode()))
        headers.append((b"x-tokens-in", str(call.estimated_in).encode()))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
        except OSError as exc:
            raise _ClientGone from exc

    def _token_event(self, call: _Call, token: str) -> bytes:
        if call.token_frame is None:
            # Every token event is the same JSON around its content: build the two halves once.
            head = dumps({"sessionId": call.request.session_id, "role": "assistant", "content": ""})[:-3]
            tail = dumps(_with_trace({"tenantId": call.tenant.tenant_id}, call.trace_id))[1:]
            call.token_frame = (b"data: " + head, b"," + tail + b"\n\n")
        head, tail = call.token_frame
        # Compact JSON never holds a raw CR or LF, so one data line carries the event.
        return head + dumps(token) + tail

    def _error_payload(self, call: _Call) -> str:
        payload = _with_trace({"code": "ai_error", "message": "AI provider unavailable"}, call.trace_id)
        return dumps(payload).decode()

    def _done_payload(self, call: _Call) -> str:
        if self.quirks.done_names_last_candidate:
            if call.served_model is not None and call.error is not None:
                return dumps({"done": True}).decode()
            if call.served_model is None and call.record.attempts:
                last = call.record.attempts[-1]
                usage = {
                    "modelId": last.model,
                    "tokensIn": call.estimated_in,
                    "latencyMs": round(last.duration_ms or 0),
                }
                return dumps({"done": True, "usage": usage}).decode()
        if call.served_model is None:
            return dumps({"done": True}).decode()
        counts = call.tracker.counts(call.estimated_in)
        started = call.served_started if call.served_started is not None else call.started
        ended = call.served_ended if call.served_ended is not None else asyncio.get_running_loop().time()
        usage = {
            "modelId": call.served_model,
            "tokensIn": counts.tokens_in,
            "tokensOut": counts.tokens_out,
            "totalTokens": counts.tokens_total,
            "latencyMs": round((ended - started) * 1000),
        }
        return dumps({"done": True, "usage": usage}).decode()

    async def _complete(self, call: _Call, send: Send) -> None:
        loop = asyncio.get_running_loop()
        deadline = self.upstream.deadline()
        record = call.record
        text: str | None = None
        latency_ms = 0.0
        try:
            for index, model in enumerate(call.selection.candidates):
                attempt = AttemptRecord(model, "pending")
                record.attempts.append(attempt)
                record.models_tried.append(model)
                attempt_started = loop.time()
                try:
                    result = await self.upstream.complete(
                        account_id=call.tenant.account_id,
                        gateway_id=call.tenant.ai_gateway_id,
                        model=model,
                        messages=call.messages,
                        metadata=call.metadata,
                        event_id=record.request_id,
                        deadline=deadline,
                    )
                except UpstreamError as error:
                    self._attempt_failed(attempt, error)
                    attempt.duration_ms = (loop.time() - attempt_started) * 1000
                    if self._fall_back(error, index, call):
                        attempt.fell_back = True
                        continue
                    call.error = error
                    break
                latency_ms = (loop.time() - attempt_started) * 1000
                attempt.duration_ms = latency_ms
                attempt.outcome = "served"
                attempt.log_id = result.log_id
                call.served_model = model
                call.served_started = attempt_started
                call.served_ended = loop.time()
                record.ttft_ms = (call.served_ended - call.started) * 1000
                call.tracker.add_usage(result.usage)
                call.tracker.add_text(result.text)
                call.answer.append(result.text)
                text = result.text
                break
        except asyncio.CancelledError:
            if record.attempts and record.attempts[-1].outcome == "pending":
                record.attempts[-1].outcome = "cancelled"
            await self._finish(call)
            raise
        except Exception as exc:  # a bug must not leave a reservation open or answer with a traceback
            call.error = UpstreamError(ErrorClass.SERVER, f"internal error: {type(exc).__name__}")
            call.served_model = None
            text = None
        await self._finish(call)
        if text is None or call.served_model is None:
            await _send_json(send, 502, fail_body("ai_error", "AI provider unavailable", call.trace_id))
            return
        headers: Headers = [
            *call.rate.headers(),
            (b"x-model-id", call.served_model.encode()),
            (b"x-tokens-in", str(record.tokens_in).encode()),
            (b"x-tokens-out", str(record.tokens_out).encode()),
            (b"x-tokens-total", str(record.tokens_total).encode()),
            (b"x-ai-latency-ms", str(round(latency_ms)).encode()),
        ]
        data = {"status": "accepted", "sessionId": call.request.session_id, "stream": False, "message": text}
        try:
            await _send_json(send, 200, ok_body(data, call.trace_id), headers)
        except OSError:
            call.disconnected = True

    # ------------------------------------------------------------------ settlement and metrics

    async def _finish(self, call: _Call) -> None:
        """Settle the ledger, persist the answer, publish the record. Runs once, even when cancelled."""
        record = call.record
        loop = asyncio.get_running_loop()
        record.latency_ms = (loop.time() - call.started) * 1000
        record.client_disconnected = call.disconnected
        record.model_served = call.served_model
        record.fallback_used = bool(call.served_model) and call.served_model != call.selection.primary.model
        record.log_ids = [a.log_id for a in record.attempts if a.log_id]
        succeeded = call.served_model is not None and call.error is None and not call.disconnected
        uncharged = (
            self.quirks.no_charge_on_stream_failure
            and call.request.stream
            and (call.error is not None or call.disconnected)
        )
        if call.served_model is not None:
            counts = call.tracker.counts(call.estimated_in)
            self._fill_counts(record, call.served_model, counts)
        if call.served_model is not None and not uncharged:
            record.ledger_charged = counts.tokens_total
            try:
                await self.ledger.settle(call.reservation, counts.tokens_total)
            except Exception as exc:  # a ledger failure is recorded; it never costs the client the answer
                record.ledger_error = f"{type(exc).__name__}: {exc}"
        else:
            await self.ledger.release(call.reservation)
            record.ledger_charged = 0
        if succeeded:
            counts = call.tracker.counts(call.estimated_in)
            self.sessions.append(
                self.sessions.key(call.tenant.tenant_id, call.request.session_id),
                "assistant",
                "".join(call.answer),
                retention_days=call.tenant.session_retention_days,
                max_messages=call.tenant.max_messages_per_session,
                token_count=counts.tokens_out,
            )
        if call.disconnected:
            record.status = "disconnected"
        elif call.error is not None:
            record.status = "truncated" if call.error.truncated else "error"
            record.error_code = "ai_error"
            record.error_detail = str(call.error)
        else:
            record.status = "success"
        if call.request.stream or record.status == "success":
            record.http_status = 200
        else:
            record.http_status = 502
        self._publish(record)

    @staticmethod
    def _fill_counts(record: UsageRecord, model: str, counts: TokenCounts) -> None:
        record.tokens_in = counts.tokens_in
        record.tokens_out = counts.tokens_out
        record.tokens_total = counts.tokens_total
        record.tokens_in_estimated = counts.in_estimated
        record.tokens_out_estimated = counts.out_estimated
        neurons = counts.neurons
        if neurons is None:
            neurons = neurons_for(model, counts.tokens_in, counts.tokens_out)
            record.neurons_estimated = neurons is not None
        record.neurons = neurons
        record.cost_usd = neurons * USD_PER_NEURON if neurons is not None else None

    def _publish(self, record: UsageRecord) -> None:
        for observer in self.observers:
            observer.record(record)


# ---------------------------------------------------------------------- ASGI helpers


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


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or ``None`` if the client left while sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON_TYPE, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _write(send: Send, chunk: bytes) -> None:
    try:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except OSError as exc:
        raise _ClientGone from exc
