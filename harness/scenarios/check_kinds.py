"""The check kinds across a run: ``ledger``, ``upstream_calls``, ``logs``, ``metrics``, ``agreement`` and
``measurement``, each declaring the facts it reads and evaluating itself from a ``CheckContext``.

Evaluation helpers that compare values (``match``, the per-kind comparisons) stay in
``aigw_harness.scenarios.checks``; this module adds what each kind needs and where its facts come from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    UpstreamCallsCheck,
)
from aigw_harness.scenarios.targets import Capability, LedgerView, UpstreamCall, UsageRecord

__all__ = ["CheckContext", "billed_tokens", "charged_tokens"]


@dataclass(slots=True)
class CheckContext:
    """What a check may read once the steps have been played."""

    observations: chk.Observations
    measurements: Mapping[str, Measurement]
    """Scenario-wide measurements by name."""
    overshoot: Sequence[OvershootPoint] = ()
    ledger: LedgerView | None = None
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
