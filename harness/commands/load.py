"""``aigw load``: Locust users speaking ``/chat`` against a target, then budget drift and a report."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from aigw_harness.commands.run import add_run_options, options_from, positive_float
from aigw_harness.errors import ConfigError
from aigw_harness.load.analysis import analyse
from aigw_harness.load.run import LoadOptions, default_profile_path, run_load, run_worker
from aigw_harness.report.render import write_report

__all__ = ["register"]

_EPILOG = """\
one machine (the default): the target starts here, Locust's users run in a child process
  aigw load --users 500 --spawn-rate 100 --duration 60s
  aigw load --processes 2 ...                   users spread over 2 local Locust worker processes

many machines: a master here (it starts the target and waits for its workers), workers anywhere
  aigw load --master --expect-workers 2 --master-bind-host 0.0.0.0 --users 2000 --duration 120s
  aigw load --worker --master-host HOST [--processes N]     on each load machine (same --profile file)

targets are those of 'aigw run': fake (the reference gateway on the embedded fake; default), url
(--sut-url, plus --target-option upstream_url=URL when its upstream is 'aigw fake serve'), worker
(--target-option config=wrangler.jsonc). What the target cannot read (billing, ledger) is reported as not
shown, never guessed.

exit status: 0 every goal of the profile held, 1 a goal was missed (a finding), 2 usage or configuration
error (bad profile: file, line and field named; Locust failed to start).
"""


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration like 30s, 5m or 1h, got {text!r}") from None
    if not 0 < value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most a week, got {text!r}")
    return value


def _count(low: int, high: int) -> type[int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse  # type: ignore[return-value]  # argparse only calls it


def _handle(args: argparse.Namespace) -> int:
    profile = args.profile or default_profile_path()
    if args.worker:
        if not args.master_host:
            raise ConfigError("--worker needs --master-host HOST (the machine running 'aigw load --master')")
        log = Path(args.out or "reports/load-worker") / "locust-worker.log"
        print(
            f"aigw load: Locust worker for {args.master_host}:{args.master_port}; log {log}", file=sys.stderr
        )
        return asyncio.run(run_worker(profile, args.master_host, args.master_port, args.processes, log))
    run_options = options_from(args)
    out = args.out or Path("reports") / f"load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    options = LoadOptions(
        out_dir=out,
        profile_path=profile,
        users=args.users,
        spawn_rate=args.spawn_rate or float(args.users),
        duration_s=args.duration,
        target=run_options.target if isinstance(run_options.target, str) else "fake",
        target_options=run_options.target_options(),
        processes=args.processes,
        master=args.master,
        expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host,
        master_bind_port=args.master_port,
    )
    if not args.quiet:
        print(
            f"aigw load: {options.users} users ({options.spawn_rate:g}/s) for {options.duration_s:g} s "
            f"against target {options.target}, profile {profile}",
            file=sys.stderr,
        )
    facts = asyncio.run(run_load(options))
    results = analyse(facts)
    paths = write_report(results, out)
    load = results.scenarios[0].load
    if load is not None:
        raised = [f.id for f in results.scenarios[0].findings if f.raised]
        print(
            f"{load.answers} answers ({load.answers_per_s:g}/s), {load.complete} complete, "
            f"{load.contract_violations} contract violations; goals missed: {', '.join(raised) or 'none'}",
            file=sys.stderr,
        )
    print(f"report: {paths.report_html}")
    print(f"        {paths.report_md}")
    print(f"        {paths.results_json}")
    print(f"locust: {out / 'locust.json'}, {out / 'locust_stats.csv'}")
    return 0 if results.ok else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "load",
        help="drive a target with Locust users speaking /chat; report time to first token, errors and "
        "budget drift",
        description="Run Locust users that speak the /chat contract (JSON and SSE) against a target, "
        "measure every answer as it arrives, then compare what the upstream billed with what the SUT "
        "charged. Writes reports/load-<time>/ (report.html, report.md, results.json, Locust's CSV and JSON).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", type=Path, metavar="FILE", help="load profile YAML (default: built in)")
    parser.add_argument("--users", type=_count(1, 1_000_000), default=10, metavar="N", help="default: 10")
    parser.add_argument(
        "--spawn-rate",
        type=positive_float(100_000),
        metavar="R",
        help="users started per second (default: all at once)",
    )
    parser.add_argument(
        "--duration", type=_duration, default=10.0, metavar="TIME", help="30s, 5m, 1h (default: 10s)"
    )
    parser.add_argument(
        "--processes", type=_count(0, 256), default=0, metavar="N", help="local Locust worker processes"
    )
    add_run_options(parser)
    parser.set_defaults(time_scale=1.0)  # load runs in real time: what Locust measures is what users see
    group = parser.add_argument_group("distributed (Locust's master and workers)")
    group.add_argument(
        "--master", action="store_true", help="run as master: start the target, wait for workers"
    )
    group.add_argument("--expect-workers", type=_count(1, 10_000), default=1, metavar="N", help="default: 1")
    group.add_argument("--master-bind-host", default="127.0.0.1", metavar="HOST", help="default: 127.0.0.1")
    group.add_argument("--worker", action="store_true", help="run as a worker of a master elsewhere")
    group.add_argument("--master-host", metavar="HOST", help="the master's address (with --worker)")
    group.add_argument(
        "--master-port", type=_count(1, 65535), default=5557, metavar="PORT", help="default: 5557"
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write (default: reports/load-<time>)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(handler=_handle)
