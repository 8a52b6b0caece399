"""The results of a run: a versioned, documented schema written as ``results.json``.

Everything the report, the docs and the pytest plugin show comes from here, and every finding points at
its evidence: the exchanges (request ids, trace ids), the AI Gateway log ids, timings and observed values.

Versioning: ``schema_version`` changes when a field is removed or changes meaning; new optional fields
keep the version. Times are milliseconds at the scenario's nominal time scale (what they would be without
time compression: real milliseconds divided by the run's ``time_scale``); ``*_at`` fields are ISO 8601 UTC.

This module knows results, not how they were obtained: it never imports the runner or a target.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aigw_fakes.datafiles import load_model
from aigw_harness.report.stats import SEVERITY_ORDER

__all__ = [
    "SCHEMA_VERSION",
    "BaselineChange",
    "BaselineComparison",
    "BudgetDrift",
    "CheckResult",
    "CheckStatus",
    "EventRecord",
    "Evidence",
    "Exchange",
    "FindingResult",
    "LoadPoint",
    "LoadSummary",
    "Measurement",
    "OvershootPoint",
    "Results",
    "RunInfo",
    "ScenarioResult",
    "ScenarioStatus",
    "Summary",
    "load_results",
]

SCHEMA_VERSION: Literal[1] = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioStatus(StrEnum):
    PASSED = "passed"
    """Every expectation and check that ran held."""
    FAILED = "failed"
    """At least one expectation or check did not hold."""
    SKIPPED = "skipped"
    """The target lacks a capability the scenario needs; ``reason`` names it."""
    ERROR = "error"
    """The scenario could not run to the end (the SUT failed to start, a step raised); ``reason`` says why."""
    NOT_APPLICABLE = "not_applicable"
    """The SUT does not meet an assumption of the scenario and the target could not arrange it: ``reason``
    names the assumption (``not applicable: MODEL_ID unset``). Never a finding."""


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_EXERCISED = "not_exercised"
    """The fault the check's step depends on was not delivered (``reason`` says why): not judged."""


class EventRecord(_Model):
    """One SSE event as the client received it."""

    t_ms: float
    """Since the request was sent."""
    event: str
    data: str


class Exchange(_Model):
    """One HTTP request to the system under test and what came back."""

    id: str
    """The runner's request id (``r0001``), also sent as ``x-request-id`` and ``x-trace-id``."""
    step: str
    index: int = 0
    """Which copy within a repeated or concurrent step."""
    concurrency: int = 1
    method: str = "POST"
    path: str = "/chat"
    tenant: str | None = None
    request_body: Any = None
    started_ms: float
    """Since the scenario started."""
    status: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body_json: Any = None
    body_text: str | None = None
    """The body when it is not JSON or not a stream (truncated to 4 KiB)."""
    stream: bool = False
    raw_stream: str | None = None
    """The stream's bytes as text (truncated to 16 KiB), for framing checks and evidence."""
    events: list[EventRecord] = Field(default_factory=list)
    ttft_ms: float | None = None
    duration_ms: float | None = None
    disconnected: bool = False
    """The client closed the connection on purpose (``disconnect_after_events``)."""
    timed_out: bool = False
    transport_error: str | None = None
    trace_id: str | None = None
    sut_time: str | None = None
    """The SUT's clock when the request was sent (ISO 8601 UTC), where the target gives its clock: which
    budget day and month the request belongs to."""
    log_ids: list[str] = Field(default_factory=list)
    """``cf-aig-log-id``s of the AI Gateway requests this exchange caused (from the upstream or its logs)."""
    upstream_models: list[str] = Field(default_factory=list)
    """Models the upstream was asked for on behalf of this exchange, in order."""


class CheckResult(_Model):
    """One expectation on a step's responses, or one scenario-level check."""

    id: str
    """``STEP.status``, ``STEP.sse.terminal_done``... for expectations; the check's own id otherwise."""
    step: str | None = None
    kind: str
    description: str = ""
    status: CheckStatus
    expected: str
    observed: Any = None
    reason: str = ""
    """Why it failed or was skipped, in a sentence."""
    exchanges: list[str] = Field(default_factory=list)
    """Request ids the observation comes from (the failing ones first)."""
    log_ids: list[str] = Field(default_factory=list)


class Measurement(_Model):
    name: str
    unit: str
    step: str | None = None
    count: int
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None
    samples: list[float] = Field(default_factory=list)
    """Up to 500 samples, in the order observed."""


class OvershootPoint(_Model):
    """How far a tenant's budget was overshot after one burst."""

    step: str
    tenant: str
    period: Literal["daily", "monthly"]
    concurrency: int
    budget_store: str
    limit: int
    used: int
    """What the ledger says was used after the burst."""
    consumed: int
    """Tokens actually served in the period (usage before the burst plus what the burst's admitted requests
    used, from the gateway's usage records); differs from ``used`` when the ledger loses updates."""
    overshoot_tokens: int
    """``max(0, consumed - limit)``."""
    admitted: int
    """Requests in the burst that were let through."""


class LoadPoint(_Model):
    """One second of a load run, as Locust and the budget sampler saw it."""

    t_s: float
    """Since the load started."""
    users: int | None = None
    answers_per_s: float | None = None
    failures_per_s: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    """Locust's current percentiles (its recent window) of time to first token."""
    billed: int | None = None
    """Tokens the upstream billed so far (successful calls)."""
    charged: int | None = None
    """Tokens the SUT's ledger had charged so far (daily keys of the profile's tenants)."""


class BudgetDrift(_Model):
    """Billed upstream against charged by the SUT, for one tenant, after a load run."""

    tenant: str
    upstream_calls: int
    billed: int
    """Input plus output tokens of the tenant's successful upstream calls (by ``metadata.tenantId``)."""
    charged: int | None
    """What the SUT's ledger says the tenant used today; ``None`` when the target cannot read it."""
    recorded: int | None = None
    """What the SUT meant to charge: the sum of its per-request charges (its usage records), when readable."""
    lost: int | None
    """Charges the ledger dropped: ``recorded - charged`` when the SUT's records are readable, otherwise
    ``billed - charged``; never negative. Lost read-modify-write updates show up here."""
    drift: int | None = None
    """``charged - billed``: positive when the SUT charged more than the upstream billed (estimates above
    real usage), negative when it charged less (estimates below, or lost updates)."""
    budget: int | None = None
    overshoot: int | None = None
    """``max(0, billed - budget)``: tokens served beyond the daily budget."""


class LoadSummary(_Model):
    """A Locust run against the SUT: who drove it, how it went over time, and what was billed and charged."""

    profile: str
    users: int
    spawn_rate: float
    duration_s: float
    workers: int = 0
    answers: int
    """Every ``/chat`` answer, counted once (Locust's ``SSE`` and ``JSON`` rows)."""
    complete: int
    answers_per_s: float
    errors_by_class: dict[str, int] = Field(default_factory=dict)
    contract_violations: int = 0
    timeline: list[LoadPoint] = Field(default_factory=list)
    drift: list[BudgetDrift] = Field(default_factory=list)
    upstream_calls: int | None = None
    """Requests the upstream received during the run, when the target can say."""


class Evidence(_Model):
    ref: str
    """The step, check or measurement the finding names."""
    kind: Literal["check", "step", "measurement"]
    status: str
    summary: str
    """One line: expected against observed, or the measurement's figures."""
    exchanges: list[str] = Field(default_factory=list)
    log_ids: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    observed: Any = None


class FindingResult(_Model):
    id: str
    title: str
    severity: Literal["info", "low", "medium", "high", "critical"]
    raised: bool
    """Whether the condition (``when``) held in this run."""
    when: Literal["failed", "passed", "always"]
    detail: str = ""
    recommendation: str
    evidence: list[Evidence]
    root_cause: bool = False
    """Raised by the runner's conformance checks of the SUT's upstream calls: a cause, not a symptom."""
    masks: list[str] = Field(default_factory=list)
    """Ids of this scenario's findings that are symptoms of this one (grouped under it in the report)."""
    masked_by: str | None = None
    """The root-cause finding this finding is a symptom of."""


class ScenarioResult(_Model):
    id: str
    title: str
    area: str
    description: str
    questions: list[str] = Field(default_factory=list)
    path: str
    status: ScenarioStatus
    reason: str = ""
    requires: list[str] = Field(default_factory=list)
    budget_store: str
    started_at: str
    duration_s: float
    """Wall-clock seconds (not scaled)."""
    exchanges: list[Exchange] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    overshoot: list[OvershootPoint] = Field(default_factory=list)
    findings: list[FindingResult] = Field(default_factory=list)
    upstream_calls: int | None = None
    log_records: int | None = None
    load: LoadSummary | None = None
    """Set by ``aigw load``: the run's load figures."""


class RunInfo(_Model):
    id: str
    started_at: str
    finished_at: str
    duration_s: float
    """Wall-clock seconds for the whole run."""
    target: str
    sut: str
    """What was tested, in words."""
    seed: int
    time_scale: float
    aigw_version: str
    capabilities: list[str] = Field(default_factory=list)


class Summary(_Model):
    total: int
    passed: int
    failed: int
    skipped: int
    error: int
    not_applicable: int = 0
    findings_raised: dict[str, int]
    """Raised findings by severity, most severe first."""
    checks_passed: int
    checks_failed: int
    checks_skipped: int = 0


class BaselineChange(_Model):
    """One difference (or sameness) between a run and a baseline, for one scenario, check or finding."""

    scenario: str
    kind: Literal["scenario", "check", "finding"]
    ref: str
    """The check or finding id; the scenario id for ``kind: scenario``."""
    before: str | None
    """The status (checks, scenarios) or severity (findings) in the baseline; ``None``: not there."""
    after: str | None
    """The same in this run; ``None``: not there (a finding not raised, a check that did not run)."""
    note: str = ""


class BaselineComparison(_Model):
    """A run compared with a recorded baseline (``aigw run --baseline FILE``)."""

    file: str
    new: list[BaselineChange] = Field(default_factory=list)
    """Regressions: a check or scenario newly failed, a finding newly raised or grown in severity."""
    fixed: list[BaselineChange] = Field(default_factory=list)
    """A known failure that passes now, a known finding no longer raised or lower in severity."""
    unchanged: list[BaselineChange] = Field(default_factory=list)
    """Known findings still raised at the same severity, and known failures still failing."""
    notes: list[BaselineChange] = Field(default_factory=list)
    """Changes that do not count: timing-dependent checks and findings, scenarios not judged this run."""
    strict: bool = False
    """Whether a fixed entry fails the gate (until the baseline is updated)."""

    @property
    def regressed(self) -> bool:
        return bool(self.new) or (self.strict and bool(self.fixed))


class Results(_Model):
    schema_version: Literal[1] = 1
    run: RunInfo
    summary: Summary
    baseline: BaselineComparison | None = None
    """Set when the run was compared with a baseline: new, fixed and unchanged, shown first."""
    scenarios: list[ScenarioResult]

    @property
    def ok(self) -> bool:
        return self.summary.failed == 0 and self.summary.error == 0

    @staticmethod
    def summarise(scenarios: list[ScenarioResult]) -> Summary:
        counts = {status: 0 for status in ScenarioStatus}
        for scenario in scenarios:
            counts[scenario.status] += 1
        raised: dict[str, int] = {}
        for scenario in scenarios:
            for finding in scenario.findings:
                if finding.raised:
                    raised[finding.severity] = raised.get(finding.severity, 0) + 1
        checks = [c for s in scenarios for c in s.checks]
        return Summary(
            total=len(scenarios),
            passed=counts[ScenarioStatus.PASSED],
            failed=counts[ScenarioStatus.FAILED],
            skipped=counts[ScenarioStatus.SKIPPED],
            error=counts[ScenarioStatus.ERROR],
            not_applicable=counts[ScenarioStatus.NOT_APPLICABLE],
            findings_raised={sev: raised[sev] for sev in SEVERITY_ORDER if sev in raised},
            checks_passed=sum(c.status is CheckStatus.PASSED for c in checks),
            checks_failed=sum(c.status is CheckStatus.FAILED for c in checks),
            checks_skipped=sum(c.status is CheckStatus.SKIPPED for c in checks),
        )

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def load_results(path: str | Path) -> Results:
    """Read a ``results.json``; a file of another schema version is reported with the field."""
    try:
        # The fast path: a valid results.json parses directly (the line-tracking loader is for errors).
        return Results.model_validate_json(Path(path).read_bytes())
    except (OSError, ValueError):
        return load_model(path, Results)
