"""``aigw snapshot record`` and ``aigw snapshot check``: contract snapshots of a system under test's
responses (``aigw_harness.ci.snapshot``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from aigw_harness.ci.snapshot import SNAPSHOT_SCENARIO, load_snapshot, with_drift, write_snapshot
from aigw_harness.commands.run import ProgressPrinter, add_run_options, catalogue_of, options_from
from aigw_harness.errors import ConfigError
from aigw_harness.report.render import write_report
from aigw_harness.report.results import Results, load_results
from aigw_harness.scenarios.loader import load_scenarios
from aigw_harness.scenarios.runner import run_scenarios

__all__ = ["register"]

DEFAULT_FILE = Path("aigw-snapshot.yaml")
CONTRACT_SCENARIOS = ("streaming-contract.yaml", "streaming-error-contract.yaml")
"""What runs without PATH: the catalogue's streaming contract scenarios."""

_EPILOG = """\
A snapshot keeps, per scenario step, the shape of the responses: statuses, header formats, event names
and order, terminal events, JSON keys and value types of every event and of JSON (error) bodies. Values
that vary between runs are left out. Without PATH, the streaming contract scenarios run.

examples:
  aigw snapshot record --target url --sut-url http://127.0.0.1:8787 --out contract.yaml
  aigw snapshot check contract.yaml --target url --sut-url http://127.0.0.1:8787
  aigw run --snapshot contract.yaml --baseline aigw-baseline.json     drift as findings, in the gate
"""


def _results(args: argparse.Namespace) -> Results:
    if args.from_results is not None:
        if args.paths:
            raise ConfigError("give scenario PATHs or --from RESULTS_JSON, not both")
        return load_results(args.from_results)
    options = options_from(args)
    catalogue = catalogue_of(args)
    contract = [catalogue / name for name in CONTRACT_SCENARIOS if (catalogue / name).is_file()]
    paths = args.paths or contract or [catalogue]
    loaded = load_scenarios(paths, options.tenants_dir)
    if not loaded:
        raise ConfigError(f"no scenario files found in {', '.join(map(str, paths))}")
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return asyncio.run(run_scenarios(loaded, options, ProgressPrinter(sys.stderr, args.quiet), run_id=run_id))


def _record(args: argparse.Namespace) -> int:
    snapshot = write_snapshot(_results(args), args.out)
    print(f"snapshot {args.out}: the shape of {len(snapshot.exchanges)} step(s) recorded")
    return 0


def _check(args: argparse.Namespace) -> int:
    if not args.snapshot.is_file():
        raise ConfigError(f"{args.snapshot}: no such file; record one with 'aigw snapshot record'")
    snapshot = load_snapshot(args.snapshot)
    results, drifts = with_drift(_results(args), snapshot, str(args.snapshot))
    for drift in drifts:
        print(f"  DRIFT  {drift}", file=sys.stderr)
    checked = next(s for s in results.scenarios if s.id == SNAPSHOT_SCENARIO)
    print(
        f"snapshot {args.snapshot}: {len(drifts)} drift(s) over {len(checked.checks)} step(s)",
        file=sys.stderr,
    )
    if args.out is not None:
        written = write_report(results, args.out)
        print(f"report: {written.report_html}")
    return 1 if drifts else 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="scenario files or directories")
    parser.add_argument(
        "--from",
        dest="from_results",
        type=Path,
        metavar="RESULTS_JSON",
        help="take the responses from this results.json instead of running",
    )
    add_run_options(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "snapshot",
        help="record the shape of a system's responses, or find drift from a recorded one",
        description="Contract snapshots: the shape of the /chat responses, not their text.",
    )
    actions = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    record = actions.add_parser(
        "record",
        help="run scenarios (or read a results.json) and write the snapshot",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(record)
    record.add_argument(
        "--out", type=Path, default=DEFAULT_FILE, metavar="FILE", help=f"default: {DEFAULT_FILE}"
    )
    record.set_defaults(handler=_record)
    check = actions.add_parser(
        "check",
        help="run again and report each drift from the snapshot with its before and after (exit 1 on drift)",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("snapshot", type=Path, metavar="SNAPSHOT", help="the recorded snapshot file")
    _common(check)
    check.add_argument(
        "--out", type=Path, metavar="DIR", help="also write a report with the drift as findings"
    )
    check.set_defaults(handler=_check)
