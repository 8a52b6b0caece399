"""Admission of one ``/chat`` turn, in the platform's order: JSON, schema, message length, model selection
and allow-list, rate limit, history, input estimate, budget, and the append of the user message.

``Admission.admit`` returns an admitted ``Turn`` (everything the attempts and the settlement need) or a
``Rejection`` (status, code, message, headers). The body is parsed by
``aigw_fakes.hardened_http.loads_strict`` (the shared leaf): numbers are finite and bounded, nesting is
bounded, and every string is valid Unicode
before it is stored or forwarded (a lone UTF-16 surrogate, which JSON can spell and UTF-8 cannot carry,
becomes U+FFFD), so one message cannot poison a session. It writes nothing to the client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aigw_fakes.hardened_http import loads_strict
from aigw_harness.gateway.ledger import BudgetExceeded, BudgetLedger, Reservation
from aigw_harness.gateway.metrics import UsageRecord
from aigw_harness.gateway.ratelimit import RateLimiter, RateLimitResult
from aigw_harness.gateway.selection import ModelNotAllowed, Selection, select_models
from aigw_harness.gateway.sessions import SessionStore
from aigw_harness.gateway.settings import PlatformQuirks
from aigw_harness.gateway.tenants import EnvOverrides, TenantConfig
from aigw_harness.gateway.tokens import UsageTracker, estimate_tokens_from_messages, utf16_len
from aigw_harness.gateway.upstream import ChatMessage, UpstreamError, UpstreamRequest, gateway_metadata

__all__ = ["Admission", "ChatRequest", "Rejection", "Turn", "parse_chat_request", "session_problem"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_MAX_MESSAGE = 10000


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


def session_problem(session_id: str) -> str | None:
    if not session_id:
        return "Missing sessionId"
    if _UUID.fullmatch(session_id) is None:
        return "Invalid sessionId"
    return None


@dataclass(frozen=True, slots=True)
class Rejection:
    status: int
    code: str
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass
class Turn:
    """One admitted ``/chat`` turn: what was asked, and what its attempts did (filled in as they run)."""

    tenant: TenantConfig
    trace_id: str | None
    request: ChatRequest
    record: UsageRecord
    selection: Selection
    rate: RateLimitResult
    upstream: UpstreamRequest  # the first candidate's call; ``for_model`` gives the others'
    estimated_in: int
    reservation: Reservation
    started: float  # loop time
    served_model: str | None = None
    served_started: float | None = None
    served_ended: float | None = None
    tracker: UsageTracker = field(default_factory=UsageTracker)
    answer: list[str] = field(default_factory=list)
    error: UpstreamError | None = None
    requested_model_failed: bool = False  # the model the client named was refused as a model problem
    disconnected: bool = False


class Admission:
    """The checks before a turn may call a model; it owns the rate limiter and the session store."""

    def __init__(
        self,
        *,
        env: EnvOverrides,
        ledger: BudgetLedger,
        rate_limiter: RateLimiter,
        sessions: SessionStore,
        quirks: PlatformQuirks,
    ) -> None:
        self.env = env
        self.ledger = ledger
        self.rate_limiter = rate_limiter
        self.sessions = sessions
        self.quirks = quirks

    def history_limit(self, tenant: TenantConfig) -> int:
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

    async def admit(
        self,
        tenant: TenantConfig,
        headers: dict[str, str],
        body: bytes,
        trace_id: str | None,
        record: UsageRecord,
        started: float,
    ) -> Turn | Rejection:
        try:
            # Finite, bounded numbers and valid Unicode (a lone surrogate becomes U+FFFD) in every string.
            payload = loads_strict(body.decode("utf-8", errors="replace"))
        except ValueError:
            return Rejection(400, "invalid_json", "Invalid JSON")
        request = parse_chat_request(payload)
        if request is None:
            return Rejection(400, "invalid_request", "Invalid request")
        record.session_id = request.session_id
        record.stream = request.stream
        limit = self.env.max_message_length()
        if limit is not None and utf16_len(request.message) > limit:
            return Rejection(400, "invalid_request", "Message too long")
        try:
            selection = select_models(request.model_id, self.env, tenant)
        except ModelNotAllowed as exc:
            record.selection = [exc.decision.as_dict()]
            return Rejection(403, "model_not_allowed", "Requested model is not allowed")
        record.selection = selection.as_dicts()

        user_key = request.user_id or headers.get("x-user-id") or "anonymous"
        record.rate_limit_key = f"{tenant.tenant_id}:ratelimit:{user_key}"
        rate = self.rate_limiter.check(
            record.rate_limit_key, tenant.rate_limit.per_minute, tenant.rate_limit.window_sec
        )
        if not rate.allowed:
            return Rejection(429, "rate_limited", "Rate limit exceeded", tuple(rate.headers()))

        session_key = self.sessions.key(tenant.tenant_id, request.session_id)
        history = self.sessions.history(
            session_key,
            limit=self.history_limit(tenant),
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
            return Rejection(429, "budget_exceeded", str(exc))
        record.ledger_keys = [reservation.daily_key, reservation.monthly_key]
        if not self.quirks.append_before_budget_check:
            # Only an admitted turn enters the history: a refused one would be sent, and charged, again
            # with every later turn, and the client would see a question that was never answered.
            self._append_user_turn(session_key, tenant, request.message)

        metadata, dropped = gateway_metadata(
            {"traceId": trace_id, "sessionId": request.session_id, "route": "/chat"}, tenant.tenant_id
        )
        record.metadata_sent = metadata
        record.metadata_dropped = dropped
        upstream = UpstreamRequest(
            account_id=tenant.account_id,
            gateway_id=tenant.ai_gateway_id,
            model=selection.candidates[0],
            messages=messages,
            metadata=metadata,
            event_id=record.request_id,
            stream=request.stream,
        )
        return Turn(
            tenant, trace_id, request, record, selection, rate, upstream, estimated_in, reservation, started
        )
