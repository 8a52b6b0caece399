"""``aigw fidelity``: how faithful is the fake? The same probes to the fake and to live or a recording.

    aigw fidelity --against live [--record DIR] [--model M] [--out DIR] [cost guard flags]
    aigw fidelity --against DIR [--out DIR]

Writes the comparison as every run's results (``results.json``, ``report.md``, ``report.html`` in ``--out``:
one scenario per probe, a failed check where the fake differs) and prints the report. Exit status 1 when
any difference was found.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from aigw_harness.commands.live import add_cost_flags, guard_from, render_plan
from aigw_harness.errors import ConfigError
from aigw_harness.live.credentials import LiveCredentials
from aigw_harness.live.fidelity import DEFAULT_MODEL, FidelityReport, default_probes
from aigw_harness.live.fidelity_run import against_cassettes, against_live
from aigw_harness.live.findings import fidelity_results
from aigw_harness.live.spike import new_run_id
from aigw_harness.proxy.redaction import Redactor
from aigw_harness.report.render import write_report


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fidelity", help="compare the fake with live Cloudflare or a recording of it"
    )
    parser.add_argument(
        "--against", required=True, metavar="live|DIR", help="'live', or a directory recorded with --record"
    )
    parser.add_argument(
        "--record", type=Path, metavar="DIR", help="with --against live: keep the live answers as cassettes"
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"model the probes use (default: {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("fidelity-results"),
        help="directory for results.json, report.md and report.html (default: fidelity-results)",
    )
    add_cost_flags(parser)
    parser.set_defaults(handler=_fidelity)


def _fidelity(args: argparse.Namespace) -> int:
    probes = default_probes(args.model)
    redactor = Redactor({})  # recordings are redacted already
    if args.against == "live":
        guard = guard_from(args)
        estimates = guard.check_plan([p.planned for p in probes if p.planned is not None])
        print(render_plan(estimates, guard.caps), file=sys.stderr)
        if args.dry_run:
            print("dry run: nothing was sent", file=sys.stderr)
            return 0
        creds = LiveCredentials.from_environment(os.environ)
        redactor = creds.redactor()
        report: FidelityReport = asyncio.run(
            against_live(creds, probes, guard, model=args.model, record_dir=args.record)
        )
    else:
        if args.record is not None:
            raise ConfigError("--record works only with --against live")
        directory = Path(args.against)
        if not directory.is_dir():
            raise ConfigError(f"--against {args.against!r}: give 'live' or an existing recording directory")
        report = asyncio.run(against_cassettes(directory, probes))
    results = fidelity_results(report, new_run_id(), redactor)
    paths = write_report(results, args.out)
    print(paths.report_md.read_text(encoding="utf-8"))
    print(f"written: {paths.results_json}, {paths.report_md}, {paths.report_html}", file=sys.stderr)
    return 1 if report.differences else 0
