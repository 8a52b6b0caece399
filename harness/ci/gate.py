"""What ``aigw run`` adds for CI: ``--baseline FILE`` (and ``--strict``) and ``--junitxml FILE``.

Kept here so that the run command only calls it: options, comparing the results with the baseline, the
lines for the terminal, the JUnit file and the exit status.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from aigw_harness.ci.baseline import Baseline, compare, load_baseline
from aigw_harness.ci.baseline import summary_lines as baseline_lines
from aigw_harness.ci.junit import write_junit
from aigw_harness.ci.snapshot import Snapshot, load_snapshot, with_drift
from aigw_harness.errors import ConfigError
from aigw_harness.report.results import Results

__all__ = ["Gate", "add_gate_options"]


def add_gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="compare with a baseline (aigw baseline update): exit 1 only for what regressed",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="with --baseline: a fixed failure or finding fails too, until the baseline is updated",
    )
    parser.add_argument(
        "--junitxml", type=Path, metavar="FILE", help="also write JUnit XML: one test case per check"
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        metavar="FILE",
        help="compare the responses' shape with a contract snapshot (aigw snapshot record); each drift is "
        "a finding",
    )


@dataclass(frozen=True, slots=True)
class Gate:
    baseline: Baseline | None = None
    baseline_path: Path | None = None
    strict: bool = False
    junitxml: Path | None = None
    snapshot: Snapshot | None = None
    snapshot_path: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Gate:
        path: Path | None = getattr(args, "baseline", None)
        strict = bool(getattr(args, "strict", False))
        if strict and path is None:
            raise ConfigError("--strict compares with a baseline: give --baseline FILE too")
        if path is not None and not path.is_file():
            raise ConfigError(
                f"--baseline {path}: no such file; record one with 'aigw baseline update --out {path}'"
            )
        baseline = load_baseline(path) if path is not None else None
        snapshot_path: Path | None = getattr(args, "snapshot", None)
        if snapshot_path is not None and not snapshot_path.is_file():
            raise ConfigError(
                f"--snapshot {snapshot_path}: no such file; record one with "
                f"'aigw snapshot record --out {snapshot_path}'"
            )
        snapshot = load_snapshot(snapshot_path) if snapshot_path is not None else None
        return cls(baseline, path, strict, getattr(args, "junitxml", None), snapshot, snapshot_path)

    def compare(self, results: Results) -> Results:
        if self.snapshot is not None:
            results, _ = with_drift(results, self.snapshot, str(self.snapshot_path))
        if self.baseline is None:
            return results
        comparison = compare(self.baseline, results, file=str(self.baseline_path), strict=self.strict)
        return results.model_copy(update={"baseline": comparison})

    def summary_lines(self, results: Results) -> list[str]:
        return baseline_lines(results.baseline) if results.baseline is not None else []

    def write_junit(self, results: Results) -> None:
        if self.junitxml is not None:
            write_junit(results, self.junitxml)
            print(f"        {self.junitxml}")

    def exit_status(self, results: Results) -> int:
        if results.baseline is not None:
            return 1 if results.baseline.regressed else 0
        return 0 if results.ok else 1
