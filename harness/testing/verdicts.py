"""Compare the verdicts pytest gave scenarios with those of an ``aigw run``.

``pytest --aigw-scenarios ... --aigw-report-dir DIR`` writes ``DIR/verdicts.json``: for each scenario, the
verdict its items' outcomes add up to (error if any item errored, failed if any failed, skipped if all were
skipped at setup, passed otherwise). ``aigw run --out OUT`` writes ``OUT/results.json``. The two runs agree
when every scenario has the same verdict in both::

    python -m harness.testing.verdicts DIR/verdicts.json OUT/results.json

exits 0 when they agree and 1 (listing the differences) when they do not.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from fakes.datafiles import DataFileError, load_model
from harness.report.results import Results, load_results

__all__ = ["PytestVerdicts", "compare", "main"]

type Verdict = Literal["passed", "failed", "skipped", "error"]


class PytestVerdicts(BaseModel):
    """``verdicts.json`` as the pytest plugin writes it."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["pytest"]
    scenarios: dict[str, Verdict]


def compare(pytest_verdicts: Mapping[str, str], results: Results) -> list[str]:
    """Every difference between the two runs, one sentence each (empty when they agree)."""
    run = {scenario.id: scenario.status.value for scenario in results.scenarios}
    differences: list[str] = []
    for scenario_id, verdict in run.items():
        seen = pytest_verdicts.get(scenario_id)
        if seen is None:
            differences.append(f"{scenario_id}: {verdict} in aigw run, not run through pytest")
        elif seen != verdict:
            differences.append(f"{scenario_id}: {verdict} in aigw run, {seen} through pytest")
    for scenario_id, verdict in pytest_verdicts.items():
        if scenario_id not in run:
            differences.append(f"{scenario_id}: {verdict} through pytest, not in aigw run")
    return differences


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        usage = "usage: python -m harness.testing.verdicts PYTEST_VERDICTS_JSON AIGW_RESULTS_JSON"
        print(usage, file=sys.stderr)
        return 2
    try:
        verdicts = load_model(Path(args[0]), PytestVerdicts)
        results = load_results(args[1])
    except (DataFileError, OSError) as exc:
        print(f"verdicts: error: {exc}", file=sys.stderr)
        return 2
    differences = compare(verdicts.scenarios, results)
    for line in differences:
        print(f"verdicts: {line}", file=sys.stderr)
    total = len(results.scenarios)
    if differences:
        print(f"verdicts: {len(differences)} difference(s) over {total} scenarios", file=sys.stderr)
        return 1
    print(f"verdicts: pytest and aigw run agree on all {total} scenarios")
    return 0


if __name__ == "__main__":
    sys.exit(main())
