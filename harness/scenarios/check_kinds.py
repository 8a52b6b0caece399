"""The check kinds across a run: ``ledger``, ``upstream_calls``, ``logs``, ``metrics``, ``agreement``,
``measurement`` and ``session``, each declaring the facts it reads and evaluating itself from a
``CheckContext``.

Evaluation helpers that compare values (``match``, the per-kind comparisons) stay in
``aigw_harness.scenarios.checks``; this module adds what each kind needs and where its facts come from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from aigw_harness.report.results import CheckResult, CheckStatus, Exchange, Measurement, OvershootPoint
from aigw_harness.scenarios import checks as chk
from aigw_harness.scenarios.kinds import CheckKind, Symptom, measurement_kind
from aigw_harness.scenarios.model import (
    AgreementCheck,
    Check,
    LedgerCheck,
    LogsCheck,
    MeasurementCheck,
    MetricsCheck,
    SessionCheck,
    UpstreamCallsCheck,
)
from aigw_harness.scenarios.targets import (
    Capability,
    LedgerView,
    SessionView,
    StoredSession,
    UpstreamCall,
    UsageRecord,
)

__all__ = ["CheckContext", "billed_tokens", "charged_tokens"]


@dataclass(slots=True)
class CheckContext:
    """What a check may read once the steps have been played."""

    observations: chk.Observations
    measurements: Mapping[str, Measurement]
    """Scenario-wide measurements by name."""
    overshoot: Sequence[OvershootPoint] = ()
    ledger: LedgerView | None = None
    sessions: SessionView | None = None
    clock_now: Callable[[], datetime] = field(default=datetime.now)

    @property
    def exchanges(self) -> list[Exchange]:
        return self.observations.exchanges


class UpstreamCallsKind(CheckKind):
    key = "upstream_calls"

    def needs(self, spec: UpstreamCallsCheck) -> frozenset[Capability]:
        return frozenset({Capability.UPSTREAM_CALLS})

    def symptoms(self, spec: UpstreamCallsCheck) -> frozenset[Symptom]:
        shown: set[Symptom] = set()
        if any(x is not None for x in (spec.count, spec.models, spec.statuses, spec.cut)):
            shown.add(Symptom.ROUTING)
        if any(x is not None for x in (spec.gateway_id, spec.metadata, spec.metadata_entries)):
            shown.add(Symptom.ATTRIBUTION)
        return frozenset(shown)

    async def evaluate(self, check: Check, spec: UpstreamCallsCheck, context: CheckContext) -> CheckResult:
        return chk.upstream_calls_check(
            check.id, check.description, spec, context.observations.upstream or []
        )


class LogsKind(CheckKind):
    key = "logs"

    def needs(self, spec: LogsCheck) -> frozenset[Capability]:
        return frozenset({Capability.GATEWAY_LOGS})

    def symptoms(self, spec: LogsCheck) -> frozenset[Symptom]:
        return frozenset({Symptom.ATTRIBUTION})

    async def evaluate(self, check: Check, spec: LogsCheck, context: CheckContext) -> CheckResult:
        return chk.logs_check(check.id, check.description, spec, context.observations.logs or [])


class MetricsKind(CheckKind):
    key = "metrics"

    def needs(self, spec: MetricsCheck) -> frozenset[Capability]:
        return frozenset({Capability.METRICS})

    def symptoms(self, spec: MetricsCheck) -> frozenset[Symptom]:
        return frozenset({Symptom.USAGE})

    async def evaluate(self, check: Check, spec: MetricsCheck, context: CheckContext) -> CheckResult:
        return chk.metrics_check(check.id, check.description, spec, context.observations.metrics or [])


_AGREEMENT_SOURCES = {
    "metrics": Capability.METRICS,
    "logs": Capability.GATEWAY_LOGS,
    "upstream": Capability.UPSTREAM_CALLS,
}
_AGREEMENT_FIELDS = {
    "model": Symptom.ROUTING,
    "tokens_in": Symptom.USAGE,
    "tokens_out": Symptom.USAGE,
    "cost": Symptom.USAGE,
    "status": Symptom.ENVELOPE,
}


class AgreementKind(CheckKind):
    key = "agreement"

    def needs(self, spec: AgreementCheck) -> frozenset[Capability]:
        return frozenset(_AGREEMENT_SOURCES[s] for s in spec.sources if s in _AGREEMENT_SOURCES)

    def symptoms(self, spec: AgreementCheck) -> frozenset[Symptom]:
        shown = {_AGREEMENT_FIELDS[f] for f in spec.fields}
        if "logs" in spec.sources:
            shown.add(Symptom.ATTRIBUTION)  # a call outside AI Gateway leaves no record to agree with
        return frozenset(shown)

    async def evaluate(self, check: Check, spec: AgreementCheck, context: CheckContext) -> CheckResult:
        return chk.agreement_check(check.id, check.description, spec, context.observations)


class MeasurementKindCheck(CheckKind):
    key = "measurement"

    def needs(self, spec: MeasurementCheck) -> frozenset[Capability]:
        return measurement_kind(spec.name).needs()

    def symptoms(self, spec: MeasurementCheck) -> frozenset[Symptom]:
        return measurement_kind(spec.name).symptoms

    async def evaluate(self, check: Check, spec: MeasurementCheck, context: CheckContext) -> CheckResult:
        found = context.measurements.get(spec.name)
        if found is None:
            extra = {"overshoot_tokens": [float(p.overshoot_tokens) for p in context.overshoot]}
            found = measurement_kind(spec.name).over(context.exchanges, extra)
        return chk.measurement_check(check.id, check.description, spec.name, spec.stat, spec.value, found)


def _period_key(period: str, instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d" if period == "daily" else "%Y-%m")


def charged_tokens(record: UsageRecord) -> int:
    """What one usage record charged: the SUT's own figure, else a success's total tokens."""
    if record.charged is not None:
        return record.charged
    if record.status != "success":
        return 0
    return record.total_tokens or (record.tokens_in or 0) + (record.tokens_out or 0)


def billed_tokens(call: UpstreamCall) -> int:
    """What the upstream billed for one call: its input and output tokens when it answered."""
    if call.status >= 400:
        return 0
    return (call.tokens_in or 0) + (call.tokens_out or 0)


def _in_period(exchange: Exchange, period: str, key: str) -> bool:
    # Without the SUT's clock at send time, every request of the scenario counts (one period).
    return exchange.sut_time is None or exchange.sut_time.startswith(key)


class LedgerKind(CheckKind):
    key = "ledger"

    def needs(self, spec: LedgerCheck) -> frozenset[Capability]:
        needed = {Capability.LEDGER}
        if spec.agrees_with_metrics:
            needed.add(Capability.METRICS)
        if spec.agrees_with_billed:
            needed.add(Capability.UPSTREAM_CALLS)
        return frozenset(needed)

    def symptoms(self, spec: LedgerCheck) -> frozenset[Symptom]:
        return frozenset({Symptom.USAGE})

    async def evaluate(self, check: Check, spec: LedgerCheck, context: CheckContext) -> CheckResult:
        if context.ledger is None:
            raise RuntimeError("a ledger check ran without a ledger")
        now = context.clock_now()
        key = _period_key(spec.period.value, now)
        used = await context.ledger.used(spec.tenant, spec.period.value, now)
        problems: list[str] = []
        expected: list[str] = []
        observed: dict[str, Any] = {"used": used}
        mine = [e for e in context.exchanges if e.tenant == spec.tenant]
        concerned = [e.id for e in mine]
        if spec.used is not None:
            expected.append(f"used {spec.used.describe()}")
            if (why := chk.match(spec.used, used)) is not None:
                problems.append(f"used: {why}")
        if spec.agrees_with_billed:
            traces = {e.trace_id for e in mine if e.trace_id and _in_period(e, spec.period.value, key)}
            calls = [c for trace in traces for c in context.observations.by_trace.get(trace, [])]
            if not traces or not calls:
                # The SUT does not tie its upstream calls to our requests: attribute them by tenant.
                calls = [
                    c
                    for c in context.observations.upstream or []
                    if str(c.metadata.get("tenantId", spec.tenant)) == spec.tenant
                ]
            # A call cut short (a fault, or the client leaving) sent no usage: what it billed lies between
            # nothing and its whole answer, so those calls widen the range instead of being guessed.
            billed = sum(billed_tokens(c) for c in calls if not c.cut)
            cut_at_most = sum(billed_tokens(c) for c in calls if c.cut)
            observed.update(billed=billed, calls=len(calls), cut_calls_at_most=cut_at_most)
            wanted = f"{billed}" if not cut_at_most else f"between {billed} and {billed + cut_at_most}"
            expected.append(
                f"used == the tokens the upstream billed for {spec.tenant}'s requests in {key} ({wanted})"
            )
            if not billed <= used <= billed + cut_at_most:
                problems.append(f"the SUT charged {used}, the upstream billed {wanted}")
        if spec.agrees_with_metrics:
            records = [
                r
                for r in context.observations.metrics or []
                if r.tenant_id == spec.tenant and (r.started_at is None or r.started_at.startswith(key))
            ]
            charged = sum(charged_tokens(r) for r in records)
            observed["metrics_total"] = charged
            traces = {r.trace_id for r in records if r.trace_id}
            concerned = [e.id for e in context.exchanges if e.trace_id in traces]
            expected.append(f"used == the tokens the usage records charged in {key}")
            if charged != used:
                problems.append(f"ledger says {used}, metrics say {charged}")
        return CheckResult(
            id=check.id,
            kind="ledger",
            description=check.description,
            status=CheckStatus.FAILED if problems else CheckStatus.PASSED,
            expected="; ".join(expected),
            observed=observed,
            reason="; ".join(problems),
            exchanges=concerned,
        )


def _message_problems(
    wanted: Sequence[Mapping[str, Any]], count: Any, messages: Sequence[Any], what: str
) -> list[str]:
    """Why ``messages`` do not meet per-message conditions (``wanted``) and a count (a ``Match``, or
    ``None`` for exactly ``len(wanted)``)."""
    problems: list[str] = []
    if count is not None:
        if (why := chk.match(count, len(messages))) is not None:
            problems.append(f"{what} count: {why}")
    elif len(messages) != len(wanted):
        problems.append(f"{len(messages)} {what} messages, expected {len(wanted)}")
    for index, conditions in enumerate(wanted):
        if index >= len(messages):
            problems.append(f"{what} message {index}: absent")
            continue
        for path, condition in conditions.items():
            if (why := chk.match(condition, chk.get_path(messages[index], path))) is not None:
                problems.append(f"{what} message {index} {path}: {why}")
    return problems


def _describe_messages(wanted: Sequence[Mapping[str, Any]], count: Any, what: str) -> list[str]:
    parts = [f"{what}: count {count.describe()}" if count is not None else f"{what}: {len(wanted)} messages"]
    for index, conditions in enumerate(wanted):
        if conditions:
            fields = ", ".join(f"{path} {c.describe()}" for path, c in conditions.items())
            parts.append(f"{what} message {index}: {fields}")
    return parts


def _shown(messages: Sequence[Any]) -> list[dict[str, Any]]:
    def short(value: Any) -> Any:
        return value[:77] + "..." if isinstance(value, str) and len(value) > 80 else value

    return [
        {"role": m.get("role"), "content": short(m.get("content"))}
        if isinstance(m, Mapping)
        else {"message": chk.json_short(m, 80)}
        for m in messages[:12]
    ]


def _sent_messages(call: UpstreamCall) -> list[Any]:
    """The chat messages of one upstream call: a binding call's ``inputs.messages``, or a REST body's."""
    body: Any = call.request or {}
    for path in ("inputs.messages", "messages"):
        found = chk.get_path(body, path)
        if isinstance(found, list):
            return found
    return []


def _session_exchanges(spec: SessionCheck, exchanges: Sequence[Exchange]) -> list[Exchange]:
    """The scenario's requests in the session."""
    return [
        e
        for e in exchanges
        if e.tenant == spec.tenant
        and isinstance(e.request_body, Mapping)
        and e.request_body.get("sessionId") == spec.session
    ]


def _session_calls(spec: SessionCheck, observations: chk.Observations) -> list[UpstreamCall]:
    """The upstream calls made for the session's requests: by trace id, else by the ``sessionId`` the SUT
    put in the call's metadata."""
    traces = [e.trace_id for e in _session_exchanges(spec, observations.exchanges) if e.trace_id]
    calls = [c for trace in traces for c in observations.by_trace.get(trace, [])]
    if calls:
        return calls
    return [c for c in observations.upstream or [] if str(c.metadata.get("sessionId", "")) == spec.session]


class SessionKind(CheckKind):
    """What the SUT stored in a session: its storage where the target reads it, else its history route
    (``aigw_harness.scenarios.sessions``); an order the source does not state is judged both ways. And what it
    sent the model from the session on its last call (``sent``), from the upstream's requests."""

    key = "session"

    def needs(self, spec: SessionCheck) -> frozenset[Capability]:
        needed: set[Capability] = set()
        if spec.messages is not None or spec.count is not None:
            needed.add(Capability.SESSIONS)
        if spec.sent is not None:
            needed.add(Capability.UPSTREAM_CALLS)
        return frozenset(needed)

    async def evaluate(self, check: Check, spec: SessionCheck, context: CheckContext) -> CheckResult:
        expected: list[str] = [f"session {spec.session} of {spec.tenant}, oldest first"]
        problems: list[str] = []
        observed: dict[str, Any] = {}
        if spec.messages is not None or spec.count is not None:
            expected += _describe_messages(spec.messages or [], spec.count, "stored")
            problems += await self._stored(spec, context, observed)
        if spec.sent is not None:
            expected += _describe_messages(spec.sent, None, "sent")
            calls = _session_calls(spec, context.observations)
            sent = _sent_messages(calls[-1]) if calls else []
            observed.update(sent_calls=len(calls), sent=_shown(sent))
            if not calls:
                problems.append("no upstream call was made for this session")
            else:
                problems += _message_problems(spec.sent, None, sent, "sent")
        return chk.check_result(
            check.id, "session", check.description, problems, "; ".join(expected), observed, shown=4,
            exchanges=[e.id for e in _session_exchanges(spec, context.exchanges)],
        )  # fmt: skip

    async def _stored(self, spec: SessionCheck, context: CheckContext, observed: dict[str, Any]) -> list[str]:
        if context.sessions is None:
            raise RuntimeError("a session check ran without a way to read sessions")
        try:
            stored: StoredSession = await context.sessions.session(spec.tenant, spec.session)
        except (ValueError, httpx.HTTPError) as exc:
            return [f"the stored session could not be read: {exc}"]
        messages = [dict(m) for m in stored.messages]
        wanted = spec.messages or []
        problems = _message_problems(wanted, spec.count, messages, "stored")
        order = "oldest first" if stored.order == "oldest_first" else "not stated by the source"
        reverse_fits = problems and stored.order == "unknown"
        if reverse_fits and not _message_problems(wanted, spec.count, messages[::-1], "stored"):
            problems, messages, order = [], messages[::-1], "newest first (read reversed)"
        observed.update(source=stored.source, order=order, count=len(messages), messages=_shown(messages))
        return problems
