"""Compare the verdicts pytest gave scenarios with those of an ``aigw run``.

``pytest --aigw-scenarios ... --aigw-report-dir DIR`` writes ``DIR/verdicts.json``: for each scenario, the
verdict its items' outcomes add up to (error if any item errored, failed if any failed, skipped if all were
skipped at setup, passed otherwise), and each item's outcome. ``aigw run --out OUT`` writes
``OUT/results.json``. The two runs agree when every scenario has the same verdict in both::

    python -m aigw_harness.testing.verdicts DIR/verdicts.json OUT/results.json

exits 0 when they agree and 1 (listing the differences) when they do not. The two are separate runs: a
check on timing (time to first token, durations, latency, gaps, tokens per second, progressive delivery)
may fall either side of its bound on a loaded machine, so a verdict that differs only by such checks is
reported as a note, not a disagreement.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from aigw_fakes.datafiles import DataFileError, load_model
from aigw_harness.ci.baseline import is_timing_check
from aigw_harness.report.results import Results, ScenarioResult, load_results

__all__ = ["Comparison", "PytestVerdicts", "compare", "main"]

type Verdict = Literal["passed", "failed", "skipped", "error"]


class PytestVerdicts(BaseModel):
    """``verdicts.json`` as the pytest plugin writes it."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["pytest"]
    scenarios: dict[str, Verdict]
    items: dict[str, dict[str, Verdict]] = {}
    """Scenario id → item (expectation or check id) → outcome."""


@dataclass(slots=True)
class Comparison:
    differences: list[str] = field(default_factory=list)
    """Scenarios whose verdicts disagree, one sentence each."""
    timing_notes: list[str] = field(default_factory=list)
    """Scenarios whose verdicts differ only by timing checks."""

    @property
    def agree(self) -> bool:
        return not self.differences


def compare(verdicts: PytestVerdicts, results: Results) -> Comparison:
    comparison = Comparison()
    run = {scenario.id: scenario for scenario in results.scenarios}
    for scenario_id, scenario in run.items():
        seen = verdicts.scenarios.get(scenario_id)
        expected = scenario.status.value
        if seen is None:
            comparison.differences.append(f"{scenario_id}: {expected} in aigw run, not run through pytest")
        elif seen != expected:
            apart = _failed_apart(verdicts.items.get(scenario_id, {}), scenario)
            sentence = f"{scenario_id}: {expected} in aigw run, {seen} through pytest"
            if apart and all(is_timing_check(check) for check in apart):
                comparison.timing_notes.append(f"{sentence}, by timing checks only ({', '.join(apart)})")
            else:
                comparison.differences.append(sentence + (f" ({', '.join(apart)})" if apart else ""))
    for scenario_id, verdict in verdicts.scenarios.items():
        if scenario_id not in run:
            comparison.differences.append(f"{scenario_id}: {verdict} through pytest, not in aigw run")
    return comparison


def _failed_apart(items: dict[str, Verdict], scenario: ScenarioResult) -> list[str]:
    """Checks that failed in one run and not in the other (empty when either side gave no detail)."""
    if not items or scenario.status.value in ("error", "skipped"):
        return []
    through_pytest = {name for name, outcome in items.items() if outcome == "failed"}
    in_run = {check.id for check in scenario.checks if check.status.value == "failed"}
    return sorted(through_pytest ^ in_run)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        usage = "usage: python -m aigw_harness.testing.verdicts PYTEST_VERDICTS_JSON AIGW_RESULTS_JSON"
        print(usage, file=sys.stderr)
        return 2
    try:
        verdicts = load_model(Path(args[0]), PytestVerdicts)
        results = load_results(args[1])
    except (DataFileError, OSError) as exc:
        print(f"verdicts: error: {exc}", file=sys.stderr)
        return 2
    comparison = compare(verdicts, results)
    for line in comparison.timing_notes:
        print(f"verdicts: note: {line}", file=sys.stderr)
    for line in comparison.differences:
        print(f"verdicts: {line}", file=sys.stderr)
    total = len(results.scenarios)
    if not comparison.agree:
        count = len(comparison.differences)
        print(f"verdicts: {count} difference(s) over {total} scenarios", file=sys.stderr)
        return 1
    timing = f" ({len(comparison.timing_notes)} apart on timing only)" if comparison.timing_notes else ""
    print(f"verdicts: pytest and aigw run agree on all {total} scenarios{timing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
