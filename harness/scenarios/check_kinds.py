"""The check kinds across a run: ``ledger``, ``upstream_calls``, ``logs``, ``metrics``, ``agreement``,
``measurement`` and ``session``, each declaring the facts it reads and evaluating itself from a
``CheckContext``.

Evaluation helpers that compare values (``match``, the per-kind comparisons) stay in
``harness.scenarios.checks``; this module adds what each kind needs and where its facts come from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from harness.report.results import CheckResult, CheckStatus, Exchange, Measurement, OvershootPoint
from harness.scenarios import checks as chk
from harness.scenarios.kinds import CheckKind, measurement_kind
from harness.scenarios.model import (
    AgreementCheck,
    Check,
    LedgerCheck,
    LogsCheck,
    MeasurementCheck,
    MetricsCheck,
    SessionCheck,
    UpstreamCallsCheck,
)
from harness.scenarios.targets import (
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

    async def evaluate(self, check: Check, spec: UpstreamCallsCheck, context: CheckContext) -> CheckResult:
        return chk.upstream_calls_check(
            check.id, check.description, spec, context.observations.upstream or []
        )


class LogsKind(CheckKind):
    key = "logs"

    def needs(self, spec: LogsCheck) -> frozenset[Capability]:
        return frozenset({Capability.GATEWAY_LOGS})

    async def evaluate(self, check: Check, spec: LogsCheck, context: CheckContext) -> CheckResult:
        return chk.logs_check(check.id, check.description, spec, context.observations.logs or [])


class MetricsKind(CheckKind):
    key = "metrics"

    def needs(self, spec: MetricsCheck) -> frozenset[Capability]:
        return frozenset({Capability.METRICS})

    async def evaluate(self, check: Check, spec: MetricsCheck, context: CheckContext) -> CheckResult:
        return chk.metrics_check(check.id, check.description, spec, context.observations.metrics or [])


_AGREEMENT_SOURCES = {
    "metrics": Capability.METRICS,
    "logs": Capability.GATEWAY_LOGS,
    "upstream": Capability.UPSTREAM_CALLS,
}


class AgreementKind(CheckKind):
    key = "agreement"

    def needs(self, spec: AgreementCheck) -> frozenset[Capability]:
        return frozenset(_AGREEMENT_SOURCES[s] for s in spec.sources if s in _AGREEMENT_SOURCES)

    async def evaluate(self, check: Check, spec: AgreementCheck, context: CheckContext) -> CheckResult:
        return chk.agreement_check(check.id, check.description, spec, context.observations)


class MeasurementKindCheck(CheckKind):
    key = "measurement"

    def needs(self, spec: MeasurementCheck) -> frozenset[Capability]:
        return measurement_kind(spec.name).needs()

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


def _session_problems(spec: SessionCheck, messages: list[Any]) -> list[str]:
    problems: list[str] = []
    if spec.count is not None:
        if (why := chk.match(spec.count, len(messages))) is not None:
            problems.append(f"count: {why}")
    elif spec.messages is not None and len(messages) != len(spec.messages):
        problems.append(f"{len(messages)} messages stored, expected {len(spec.messages)}")
    for index, conditions in enumerate(spec.messages or []):
        if index >= len(messages):
            problems.append(f"message {index}: absent")
            continue
        for path, condition in conditions.items():
            if (why := chk.match(condition, chk.get_path(messages[index], path))) is not None:
                problems.append(f"message {index} {path}: {why}")
    return problems


def _session_expected(spec: SessionCheck) -> str:
    parts: list[str] = []
    if spec.count is not None:
        parts.append(f"count {spec.count.describe()}")
    elif spec.messages is not None:
        parts.append(f"exactly {len(spec.messages)} messages")
    for index, conditions in enumerate(spec.messages or []):
        if conditions:
            fields = ", ".join(f"{path} {c.describe()}" for path, c in conditions.items())
            parts.append(f"message {index}: {fields}")
    where = f"session {spec.session} of {spec.tenant}, oldest first"
    return f"{where}: " + "; ".join(parts)


def _shown(messages: list[Any]) -> list[dict[str, Any]]:
    return [
        {"role": m.get("role"), "content": chk.json_short(m.get("content"), 80)}
        if isinstance(m, dict)
        else {"message": chk.json_short(m, 80)}
        for m in messages[:12]
    ]


class SessionKind(CheckKind):
    """What the SUT stored in a session: its storage where the target reads it, else its history route
    (``harness.scenarios.sessions``). An order the source does not state is judged both ways."""

    key = "session"

    def needs(self, spec: SessionCheck) -> frozenset[Capability]:
        return frozenset({Capability.SESSIONS})

    async def evaluate(self, check: Check, spec: SessionCheck, context: CheckContext) -> CheckResult:
        if context.sessions is None:
            raise RuntimeError("a session check ran without a way to read sessions")
        expected = _session_expected(spec)
        try:
            stored: StoredSession = await context.sessions.session(spec.tenant, spec.session)
        except (ValueError, httpx.HTTPError) as exc:
            return CheckResult(
                id=check.id,
                kind="session",
                description=check.description,
                status=CheckStatus.FAILED,
                expected=expected,
                reason=f"the stored session could not be read: {exc}",
            )
        messages = [dict(m) for m in stored.messages]
        problems = _session_problems(spec, messages)
        order = "oldest first" if stored.order == "oldest_first" else "order not stated by the source"
        if problems and stored.order == "unknown" and not _session_problems(spec, messages[::-1]):
            problems, messages, order = [], messages[::-1], "newest first (read reversed)"
        return CheckResult(
            id=check.id,
            kind="session",
            description=check.description,
            status=CheckStatus.FAILED if problems else CheckStatus.PASSED,
            expected=expected,
            observed={
                "source": stored.source,
                "order": order,
                "count": len(messages),
                "messages": _shown(messages),
            },
            reason="; ".join(problems[:4]) + (f" (and {len(problems) - 4} more)" if problems[4:] else ""),
        )
