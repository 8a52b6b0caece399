"""``aigw baseline update``: record the verdicts of a run as the baseline that ``aigw run --baseline``
compares with (``aigw_harness.ci.baseline``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aigw_harness.ci.baseline import write_baseline
from aigw_harness.commands.run import ProgressPrinter, add_run_options, catalogue_of, options_from
from aigw_harness.errors import ConfigError
from aigw_harness.report.results import Results, load_results
from aigw_harness.scenarios.loader import load_scenarios
from aigw_harness.scenarios.runner import run_scenarios

__all__ = ["register"]

DEFAULT_FILE = Path("aigw-baseline.json")

_EPILOG = """\
The baseline holds each scenario's status, each check's status and each raised finding's severity (no
timings), sorted for readable diffs. Commit it; 'aigw run --baseline FILE' then exits 1 only for what
changed. Update it deliberately, when a change of verdict is intended, and review its diff.

examples:
  aigw baseline update                                    the catalogue on the embedded fake
  aigw baseline update --out .ci/baseline.json scenarios
  aigw baseline update --from reports/ci/results.json     from a run already made (no new run)
"""


def _handle(args: argparse.Namespace) -> int:
    if args.from_results is not None:
        if args.paths:
            raise ConfigError("give scenario PATHs or --from RESULTS_JSON, not both")
        results: Results = load_results(args.from_results)
    else:
        options = options_from(args)
        paths = args.paths or [catalogue_of(args)]
        loaded = load_scenarios(paths, options.tenants_dir)
        if not loaded:
            raise ConfigError(f"no scenario files found in {', '.join(map(str, paths))}")
        progress = ProgressPrinter(sys.stderr, quiet=args.quiet)
        results = asyncio.run(run_scenarios(loaded, options, progress))
    baseline = write_baseline(results, args.out)
    checks = sum(len(s.checks) for s in baseline.scenarios.values())
    findings = sum(len(s.findings) for s in baseline.scenarios.values())
    print(
        f"baseline {args.out}: {len(baseline.scenarios)} scenarios, {checks} checks, "
        f"{findings} raised finding(s) recorded"
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="record a run's verdicts as the baseline 'aigw run --baseline' compares with",
        description="Baselines for the CI gate.",
    )
    actions = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    update = actions.add_parser(
        "update",
        help="run the scenarios (or read a results.json) and write the baseline",
        description="Run scenario files (default: scenarios/) and record every scenario's status, check "
        "statuses and raised findings as the baseline.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    update.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="scenario files or directories")
    update.add_argument(
        "--out", type=Path, default=DEFAULT_FILE, metavar="FILE", help=f"default: {DEFAULT_FILE}"
    )
    update.add_argument(
        "--from",
        dest="from_results",
        type=Path,
        metavar="RESULTS_JSON",
        help="record the verdicts of this results.json instead of running",
    )
    add_run_options(update)
    update.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    update.set_defaults(handler=_handle)
