"""Baselines: the verdicts a run gave, recorded so that a later run fails only on what changed.

A baseline file holds, per scenario, its status, each check's status and each raised finding's severity:
stable ids and status strings, no timings, sorted, so that a change to it reads well in a diff::

    {"aigw_baseline": 1, "scenarios": {"budget.burst-kv": {"status": "failed",
      "checks": {"ledger-matches-usage": "failed", ...}, "findings": {"BUDGET-KV-LOST-UPDATES": "high"}}}}

Statuses are kept as the strings the run wrote, whatever they are (``passed``, ``failed``, ``skipped``,
``not_applicable``, ``not_exercised``...), so a new status needs no change here. Only ``failed`` and
``error`` are failures; any other status is "did not fail".

``compare`` sorts every difference into new (a regression: a check or scenario newly failing, a finding
newly raised or grown in severity), fixed (a known failure passing, a known finding gone or lower), unchanged
(known findings and failures still there) and notes. A note is a difference that does not count: a check
that depends on timing (time to first token, durations, progressive delivery, measurements), a finding
decided only by such checks, or a scenario that did not reach a verdict this run (skipped, not applicable),
since on a loaded machine those fall either side of their bounds without any change to the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aigw_fakes.datafiles import load_model
from aigw_harness.report.results import (
    BaselineChange,
    BaselineComparison,
    FindingResult,
    Results,
    ScenarioResult,
)

__all__ = [
    "Baseline",
    "ScenarioBaseline",
    "baseline_of",
    "compare",
    "is_timing_check",
    "load_baseline",
    "summary_lines",
    "write_baseline",
]

FAILING = frozenset({"failed", "error"})
"""Statuses that are failures; every other status string is not."""
JUDGED = frozenset({"passed", "failed"})
"""Scenario statuses under which its checks and findings were judged (others: skipped, not applicable...)."""
SEVERITIES = ("info", "low", "medium", "high", "critical")

_TIMING = re.compile(r"ttft|duration|latency|gap|tokens_per_s|progressive|x-ratelimit-reset")


class ScenarioBaseline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    checks: dict[str, str] = Field(default_factory=dict)
    """Check id → its status."""
    findings: dict[str, str] = Field(default_factory=dict)
    """Raised finding id → its severity."""


class Baseline(BaseModel):
    """A baseline file (``aigw baseline update``)."""

    model_config = ConfigDict(extra="forbid")

    aigw_baseline: Literal[1] = 1
    target: str = ""
    """The target the baseline was recorded on, for the reader; not compared."""
    scenarios: dict[str, ScenarioBaseline]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def baseline_of(results: Results) -> Baseline:
    scenarios = {
        s.id: ScenarioBaseline(
            status=str(s.status),
            checks={c.id: str(c.status) for c in s.checks},
            findings={f.id: f.severity for f in s.findings if f.raised},
        )
        for s in results.scenarios
    }
    return Baseline(target=results.run.target, scenarios=scenarios)


def write_baseline(results: Results, path: Path) -> Baseline:
    baseline = baseline_of(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(baseline.to_json(), encoding="utf-8")
    return baseline


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file; a bad one is a ``DataFileError`` naming the file and field."""
    return load_model(path, Baseline)


def is_timing_check(check_id: str, kind: str = "expect") -> bool:
    """Whether a check's verdict depends on how fast the machine ran (such checks flip under load)."""
    return kind == "measurement" or _TIMING.search(check_id) is not None


def _timing_finding(finding: FindingResult | None, scenario: ScenarioResult | None) -> bool:
    """Decided by timing alone: what it cites that failed (a check, or a step through its checks) failed
    on timing checks only, and it cites at least one timing check or measurement."""
    if finding is None or scenario is None:
        return False
    timing_cited = False
    for evidence in finding.evidence:
        if evidence.kind == "measurement":
            timing_cited = True
            continue
        # A step stands for its checks; a check for itself.
        cited = [
            c
            for c in scenario.checks
            if c.id == evidence.ref or (evidence.kind == "step" and c.step == evidence.ref)
        ]
        timing_cited |= any(is_timing_check(c.id, c.kind) for c in cited)
        if any(str(c.status) in FAILING and not is_timing_check(c.id, c.kind) for c in cited):
            return False
    return timing_cited


def _rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def compare(
    baseline: Baseline, results: Results, *, file: str = "", strict: bool = False
) -> BaselineComparison:
    out = BaselineComparison(file=file, strict=strict)
    for change, bucket in _changes(baseline, results):
        getattr(out, bucket).append(change)
    return out


def _changes(baseline: Baseline, results: Results) -> Iterator[tuple[BaselineChange, str]]:
    for scenario in results.scenarios:
        known = baseline.scenarios.get(scenario.id)
        status = str(scenario.status)
        change = BaselineChange(
            scenario=scenario.id,
            kind="scenario",
            ref=scenario.id,
            before=known.status if known is not None else None,
            after=status,
        )
        if known is None:
            known = ScenarioBaseline(status="")
            bucket = "new" if status in FAILING else "notes"
            yield change.model_copy(update={"note": "not in the baseline"}), bucket
        elif status == known.status or (status in JUDGED and known.status in JUDGED):
            pass  # the same, or a change its checks and findings account for
        elif status == "error":
            yield change.model_copy(update={"note": "could not run to the end"}), "new"
        elif known.status == "error" and status in JUDGED:
            yield change, "fixed"
        else:
            yield change.model_copy(update={"note": f"not judged this run ({status})"}), "notes"
        if status in JUDGED:
            # Checks and findings are news only when the scenario reached a verdict this run.
            yield from _check_changes(scenario, known)
            yield from _finding_changes(scenario, known)


def _check_changes(scenario: ScenarioResult, known: ScenarioBaseline) -> Iterator[tuple[BaselineChange, str]]:
    for check in scenario.checks:
        after = str(check.status)
        before = known.checks.get(check.id)
        change = BaselineChange(scenario=scenario.id, kind="check", ref=check.id, before=before, after=after)
        timing = is_timing_check(check.id, check.kind)
        if after in FAILING and before == after:
            yield change, "unchanged"
        elif after in FAILING:
            yield (
                (change.model_copy(update={"note": "timing-dependent"}), "notes")
                if timing
                else (change, "new")
            )
        elif before in FAILING and after == "passed":
            yield (
                (change.model_copy(update={"note": "timing-dependent"}), "notes")
                if timing
                else (change, "fixed")
            )
        elif before is not None and before != after:
            yield change.model_copy(update={"note": "status changed, not a failure"}), "notes"
    ran = {c.id for c in scenario.checks}
    for check_id, before in sorted(known.checks.items()):
        if check_id not in ran:
            note = "no longer in the scenario"
            yield (
                BaselineChange(
                    scenario=scenario.id, kind="check", ref=check_id, before=before, after=None, note=note
                ),
                "notes",
            )


def _finding_changes(
    scenario: ScenarioResult, known: ScenarioBaseline
) -> Iterator[tuple[BaselineChange, str]]:
    by_id = {f.id: f for f in scenario.findings}
    raised = {f.id: f.severity for f in scenario.findings if f.raised}
    for finding_id in sorted(set(raised) | set(known.findings)):
        before, after = known.findings.get(finding_id), raised.get(finding_id)
        change = BaselineChange(
            scenario=scenario.id, kind="finding", ref=finding_id, before=before, after=after
        )
        if before == after:
            yield change, "unchanged"
            continue
        timing = _timing_finding(by_id.get(finding_id), scenario)
        if timing:
            yield change.model_copy(update={"note": "decided by timing checks only"}), "notes"
        elif _rank(after) > _rank(before):
            yield change, "new"
        else:
            yield change, "fixed"


def _describe(change: BaselineChange) -> str:
    where = change.scenario if change.kind == "scenario" else f"{change.scenario} {change.kind} {change.ref}"
    text = f"{where}: {change.before or 'absent'} -> {change.after or 'absent'}"
    return text + (f" ({change.note})" if change.note else "")


def summary_lines(comparison: BaselineComparison) -> list[str]:
    """What a terminal shows: the counts, then every new and fixed entry, then the known findings."""
    known = [c for c in comparison.unchanged if c.kind == "finding"]
    lines = [
        f"baseline {comparison.file}: {len(comparison.new)} new, {len(comparison.fixed)} fixed, "
        f"{len(known)} known finding(s) unchanged, {len(comparison.notes)} note(s)"
    ]
    lines += [f"  NEW    {_describe(c)}" for c in comparison.new]
    fixed_mark = "FIXED " if comparison.strict else "fixed "
    lines += [f"  {fixed_mark} {_describe(c)}" for c in comparison.fixed]
    lines += [f"  known  {c.scenario} finding {c.ref} [{c.after}]" for c in known]
    if comparison.fixed and comparison.strict:
        lines.append(
            "  fixed entries fail with --strict: update the baseline (aigw baseline update) to accept them"
        )
    return lines
