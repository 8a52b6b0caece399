"""From the facts of a load run to results: figures, goal checks and findings, in the run's results format.

Inputs are Locust's own output files (its final statistics as JSON and its per-second history as CSV, which
a master writes after aggregating every worker's figures) and what the target could read afterwards: the
upstream's request store (what was billed) and the SUT's ledger (what it charged). The output is one
``ScenarioResult`` with a ``load`` section in a ``Results`` document, so the report, results.json and the
docs treat a load run like any other run.

Percentiles are nearest-rank (the definition used everywhere in the harness) over the values Locust keeps,
which it rounds to two significant digits above 100 ms.
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aigw_harness import __version__
from aigw_harness.errors import ConfigError
from aigw_harness.load.profile import LoadProfile
from aigw_harness.report.results import (
    BudgetDrift,
    CheckResult,
    CheckStatus,
    Evidence,
    FindingResult,
    LoadPoint,
    LoadSummary,
    Measurement,
    Results,
    RunInfo,
    ScenarioResult,
    ScenarioStatus,
)
from aigw_harness.scenarios.targets import UpstreamCall, UsageRecord

__all__ = [
    "ANSWER_TYPES",
    "BudgetSample",
    "HistoryRow",
    "LoadFacts",
    "LocustEntry",
    "analyse",
    "hist_percentile",
    "read_locust_stats",
    "read_user_counts",
]

ANSWER_TYPES = ("SSE", "JSON")
"""Locust request types that count answers; every ``/chat`` answer is reported under exactly one."""


@dataclass(frozen=True, slots=True)
class LocustEntry:
    """One row of Locust's final statistics (aggregated over workers by the master)."""

    method: str
    name: str
    num_requests: int
    num_failures: int
    response_times: Mapping[float, int]
    """Histogram: rounded response time (ms) → count."""
    start_time: float
    last_request_timestamp: float | None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    timestamp: int
    users: int
    method: str
    name: str
    requests_per_s: float
    failures_per_s: float
    p50: float | None
    p95: float | None


@dataclass(frozen=True, slots=True)
class BudgetSample:
    t_s: float
    upstream_calls: int
    billed: int
    charged: int | None


@dataclass(frozen=True, slots=True)
class LoadFacts:
    """Everything a load run observed; ``analyse`` turns it into results."""

    profile: LoadProfile
    profile_path: str
    target: str
    sut: str
    users: int
    spawn_rate: float
    duration_s: float
    wall_s: float
    started_at: datetime
    stats: list[LocustEntry]
    user_counts: list[HistoryRow]
    samples: list[BudgetSample]
    upstream_calls: list[UpstreamCall] | None
    usage_records: list[UsageRecord] | None
    ledger_used: dict[str, int] | None
    daily_budgets: dict[str, int]
    seed: int = 0
    workers: int = 0


def read_locust_stats(prefix: Path) -> list[LocustEntry]:
    """Locust's final statistics (``--json-file PREFIX`` writes ``PREFIX.json``)."""
    path = prefix.with_suffix(".json")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Locust wrote no readable statistics at {path}: {exc}") from None
    entries: list[LocustEntry] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        entries.append(
            LocustEntry(
                method=str(row.get("method", "")),
                name=str(row.get("name", "")),
                num_requests=int(row.get("num_requests", 0)),
                num_failures=int(row.get("num_failures", 0)),
                response_times={float(k): int(v) for k, v in dict(row.get("response_times", {})).items()},
                start_time=float(row.get("start_time", 0.0)),
                last_request_timestamp=_float(row.get("last_request_timestamp")),
            )
        )
    return entries


def read_user_counts(prefix: Path) -> list[HistoryRow]:
    """Locust's per-second history (``--csv PREFIX --csv-full-history``); missing file: no rows."""
    path = prefix.parent / f"{prefix.name}_stats_history.csv"
    if not path.is_file():
        return []
    rows: list[HistoryRow] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                rows.append(
                    HistoryRow(
                        timestamp=int(row["Timestamp"]),
                        users=int(row["User Count"]),
                        method=row["Type"],
                        name=row["Name"],
                        requests_per_s=float(row["Requests/s"]),
                        failures_per_s=float(row["Failures/s"]),
                        p50=_float(row["50%"]),
                        p95=_float(row["95%"]),
                    )
                )
            except (KeyError, ValueError):
                continue
    return rows


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def hist_percentile(histogram: Mapping[float, int], fraction: float) -> float | None:
    """Nearest-rank percentile of the values a histogram counts (``fraction`` in 0..1)."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def _merged(entries: Sequence[LocustEntry]) -> dict[float, int]:
    merged: dict[float, int] = {}
    for entry in entries:
        for value, count in entry.response_times.items():
            merged[value] = merged.get(value, 0) + count
    return merged


def _measurement(name: str, entries: Sequence[LocustEntry], unit: str = "ms") -> Measurement:
    histogram = _merged(entries)
    count = sum(histogram.values())
    if not count:
        return Measurement(name=name, unit=unit, count=0)
    total = sum(value * n for value, n in histogram.items())
    return Measurement(
        name=name,
        unit=unit,
        count=count,
        min=min(histogram),
        p50=hist_percentile(histogram, 0.50),
        p90=hist_percentile(histogram, 0.90),
        p95=hist_percentile(histogram, 0.95),
        p99=hist_percentile(histogram, 0.99),
        max=max(histogram),
        mean=round(total / count, 3),
    )


def _timeline(facts: LoadFacts) -> list[LoadPoint]:
    start = facts.started_at.timestamp()
    by_second: dict[int, dict[str, Any]] = {}
    for row in facts.user_counts:
        point = by_second.setdefault(row.timestamp, {"users": row.users})
        point["users"] = max(point["users"], row.users)
        if row.method in ANSWER_TYPES:
            point["answers_per_s"] = point.get("answers_per_s", 0.0) + row.requests_per_s
            point["failures_per_s"] = point.get("failures_per_s", 0.0) + row.failures_per_s
        elif row.method == "TTFT":
            point["ttft_p50_ms"] = row.p50
            point["ttft_p95_ms"] = row.p95
    points = [
        LoadPoint(t_s=round(second - start, 3), **{k: v for k, v in values.items() if v is not None})
        for second, values in sorted(by_second.items())
    ]
    for sample in facts.samples:
        points.append(LoadPoint(t_s=sample.t_s, billed=sample.billed, charged=sample.charged))
    points.sort(key=lambda p: p.t_s)
    return points


def _drift(facts: LoadFacts) -> list[BudgetDrift]:
    if facts.upstream_calls is None:
        return []
    billed: dict[str, int] = {}
    calls: dict[str, int] = {}
    recorded: dict[str, int] | None = None
    if facts.usage_records is not None:
        recorded = {}
        for record in facts.usage_records:
            recorded[record.tenant_id] = recorded.get(record.tenant_id, 0) + (record.charged or 0)
    for call in facts.upstream_calls:
        tenant = call.metadata.get("tenantId")
        if not isinstance(tenant, str):
            continue
        calls[tenant] = calls.get(tenant, 0) + 1
        if call.status == 200:
            billed[tenant] = billed.get(tenant, 0) + (call.tokens_in or 0) + (call.tokens_out or 0)
    out: list[BudgetDrift] = []
    for tenant in dict.fromkeys(facts.profile.tenant_ids()):
        tenant_billed = billed.get(tenant, 0)
        charged = facts.ledger_used.get(tenant) if facts.ledger_used is not None else None
        meant = recorded.get(tenant, 0) if recorded is not None else None
        budget = facts.daily_budgets.get(tenant)
        lost = None if charged is None else max(0, (meant if meant is not None else tenant_billed) - charged)
        out.append(
            BudgetDrift(
                tenant=tenant,
                upstream_calls=calls.get(tenant, 0),
                billed=tenant_billed,
                charged=charged,
                recorded=meant,
                lost=lost,
                drift=None if charged is None else charged - tenant_billed,
                budget=budget,
                overshoot=max(0, tenant_billed - budget) if budget is not None else None,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class _Goal:
    check_id: str
    expected: str
    observed: Any
    passed: bool | None
    """``None``: the fact was not observable on this target (skipped, with ``reason``)."""
    reason: str
    finding_id: str
    title: str
    severity: Literal["info", "low", "medium", "high", "critical"]
    recommendation: str


def _goals(facts: LoadFacts, summary: LoadSummary, ttft: Measurement) -> list[_Goal]:
    goals = facts.profile.goals
    out: list[_Goal] = []
    if goals.ttft_p95_ms is not None:
        observed = ttft.p95
        out.append(
            _Goal(
                "goal.ttft_p95_ms",
                f"time to first token p95 <= {goals.ttft_p95_ms:g} ms",
                observed,
                None if observed is None else observed <= goals.ttft_p95_ms,
                "no stream delivered a token" if observed is None else "",
                "LOAD-TTFT",
                f"Time to first token at the 95th percentile is above {goals.ttft_p95_ms:g} ms under load",
                "medium",
                "Find where the first token waits (admission, ledger, session reads, the upstream's "
                "queue) at this concurrency; see the time-to-first-token chart for when it started.",
            )
        )
    if goals.error_rate is not None:
        rate = (summary.answers - summary.complete) / summary.answers if summary.answers else None
        out.append(
            _Goal(
                "goal.error_rate",
                f"share of incomplete answers <= {goals.error_rate:g}",
                None if rate is None else round(rate, 4),
                None if rate is None else rate <= goals.error_rate,
                "no answer was received" if rate is None else "",
                "LOAD-ERRORS",
                "Answers fail under load more often than the goal allows",
                "high",
                "Read the errors by class: rate limits and budgets are the profile's doing, ai_error and "
                "transport errors are the SUT's or the upstream's.",
            )
        )
    if goals.contract_violations is not None:
        out.append(
            _Goal(
                "goal.contract_violations",
                f"streams breaking the /chat SSE contract <= {goals.contract_violations}",
                summary.contract_violations,
                summary.contract_violations <= goals.contract_violations,
                "",
                "LOAD-CONTRACT",
                "Streams break the /chat SSE contract under load",
                "high",
                "Check the first broken rule in the errors by class; under load it is usually a missing "
                "done event after a cut upstream or interleaved writes.",
            )
        )
    lost = [d.lost for d in summary.drift]
    if goals.lost_tokens is not None:
        readable = summary.drift and all(value is not None for value in lost)
        total = sum(value or 0 for value in lost)
        out.append(
            _Goal(
                "goal.lost_tokens",
                f"charges the ledger dropped <= {goals.lost_tokens} tokens",
                {
                    d.tenant: {
                        "billed": d.billed,
                        "recorded": d.recorded,
                        "charged": d.charged,
                        "lost": d.lost,
                    }
                    for d in summary.drift
                },
                total <= goals.lost_tokens if readable else None,
                "" if readable else "the target cannot read both the upstream's billing and the SUT's ledger",
                "LOAD-LOST-UPDATES",
                "The budget ledger loses charges under concurrency (usage the SUT recorded, never stored)",
                "high",
                "Make the usage update atomic (a Durable Object per tenant, or reserve then reconcile) "
                "instead of a blind read-modify-write of a KV value.",
            )
        )
    if goals.drift_tokens is not None:
        readable = summary.drift and all(d.drift is not None for d in summary.drift)
        total = sum(abs(d.drift or 0) for d in summary.drift)
        out.append(
            _Goal(
                "goal.drift_tokens",
                f"|charged - billed| summed over tenants <= {goals.drift_tokens} tokens",
                {
                    d.tenant: {"billed": d.billed, "charged": d.charged, "drift": d.drift}
                    for d in summary.drift
                },
                total <= goals.drift_tokens if readable else None,
                "" if readable else "the target cannot read both the upstream's billing and the SUT's ledger",
                "LOAD-BILLING-DRIFT",
                "What tenants are charged differs from what AI Gateway billed",
                "medium",
                "Charge the usage the upstream reports (the stream's usage frame, the JSON result's usage) "
                "and estimate only when it reports none.",
            )
        )
    budgeted = [d for d in summary.drift if d.overshoot is not None]
    if goals.overshoot_tokens is not None:
        total = sum(d.overshoot or 0 for d in budgeted)
        out.append(
            _Goal(
                "goal.overshoot_tokens",
                f"tokens served beyond a daily budget <= {goals.overshoot_tokens}",
                {d.tenant: d.overshoot for d in budgeted},
                total <= goals.overshoot_tokens if budgeted else None,
                "" if budgeted else "no tenant of the profile has a daily budget, or billing is not readable",
                "LOAD-OVERSHOOT",
                "Tenants are served beyond their daily token budget under concurrency",
                "medium",
                "Reserve an output allowance at admission and count in-flight requests against the budget.",
            )
        )
    return out


def _check(goal: _Goal) -> CheckResult:
    status = (
        CheckStatus.SKIPPED
        if goal.passed is None
        else CheckStatus.PASSED
        if goal.passed
        else CheckStatus.FAILED
    )
    return CheckResult(
        id=goal.check_id,
        kind="load_goal",
        description=goal.expected,
        status=status,
        expected=goal.expected,
        observed=goal.observed,
        reason=goal.reason,
    )


def analyse(facts: LoadFacts) -> Results:
    """The run's results: one scenario with the load section, goal checks and the findings they raise."""
    stats = facts.stats
    answers = [e for e in stats if e.method in ANSWER_TYPES]
    total = sum(e.num_requests for e in answers)
    failed = sum(e.num_failures for e in answers)
    errors = {e.name: e.num_requests for e in stats if e.method == "ERROR"}
    contract = sum(e.num_failures for e in stats if e.method == "CONTRACT")
    ttft = _measurement("ttft_ms", [e for e in stats if e.method == "TTFT"])
    measurements = [
        ttft,
        _measurement("duration_ms", answers),
        _measurement("max_inter_token_gap_ms", [e for e in stats if e.method == "GAP"]),
    ]
    summary = LoadSummary(
        profile=facts.profile.name,
        users=facts.users,
        spawn_rate=facts.spawn_rate,
        duration_s=facts.duration_s,
        workers=facts.workers,
        answers=total,
        complete=total - failed,
        answers_per_s=round(total / facts.wall_s, 3) if facts.wall_s > 0 else 0.0,
        errors_by_class=dict(sorted(errors.items(), key=lambda item: (-item[1], item[0]))),
        contract_violations=contract,
        timeline=_timeline(facts),
        drift=_drift(facts),
        upstream_calls=len(facts.upstream_calls) if facts.upstream_calls is not None else None,
    )
    goals = _goals(facts, summary, ttft)
    checks = [
        CheckResult(
            id="answers",
            kind="load_goal",
            description="the load reached the SUT",
            status=CheckStatus.PASSED if total else CheckStatus.FAILED,
            expected="at least one /chat answer",
            observed=total,
            reason="" if total else "Locust recorded no answer: is the SUT reachable at the target's URL?",
        ),
        *(_check(goal) for goal in goals),
    ]
    findings = [
        FindingResult(
            id=goal.finding_id,
            title=goal.title,
            severity=goal.severity,
            raised=goal.passed is False,
            when="failed",
            recommendation=goal.recommendation,
            evidence=[
                Evidence(
                    ref=goal.check_id,
                    kind="check",
                    status=_check(goal).status,
                    summary=f"expected {goal.expected}; observed {json.dumps(goal.observed, default=str)}",
                    observed=goal.observed,
                )
            ],
        )
        for goal in goals
    ]
    failed_checks = any(c.status is CheckStatus.FAILED for c in checks)
    finished = datetime.now(UTC)
    scenario = ScenarioResult(
        id=f"load.{facts.profile.name}",
        title=f"Load: {facts.users} users for {facts.duration_s:g} s ({facts.profile.name} profile)",
        area="concurrency",
        description=(
            f"Locust users following the profile {facts.profile_path}: tenants "
            f"{', '.join(dict.fromkeys(facts.profile.tenant_ids()))}, "
            f"{facts.profile.stream_ratio:.0%} streamed. "
            "Every answer is measured as it arrives; afterwards what the upstream billed is compared with "
            "what the SUT's ledger charged."
        ),
        path=facts.profile_path,
        status=ScenarioStatus.FAILED if failed_checks else ScenarioStatus.PASSED,
        budget_store=facts.profile.budget_store,
        started_at=facts.started_at.isoformat(),
        duration_s=round(facts.wall_s, 3),
        checks=checks,
        measurements=measurements,
        findings=findings,
        upstream_calls=summary.upstream_calls,
        load=summary,
    )
    run = RunInfo(
        id=f"load-{facts.started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        started_at=facts.started_at.isoformat(),
        finished_at=finished.isoformat(),
        duration_s=round((finished - facts.started_at).total_seconds(), 3),
        target=facts.target,
        sut=facts.sut,
        seed=facts.seed,
        time_scale=1.0,
        aigw_version=__version__,
    )
    return Results(run=run, summary=Results.summarise([scenario]), scenarios=[scenario])
