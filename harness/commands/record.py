"""``aigw record``: record an upstream through mitmproxy as cassettes, or serve cassettes back.

    aigw record --upstream URL [--upstream URL]... --cassettes DIR [--host H] [--port P] [faults]
    aigw record --replay --cassettes DIR [--time-scale X] [--host H] [--port P] [faults]

Recording runs mitmproxy in reverse-proxy mode (one listener per upstream; the first on ``--port``) and
redacts the values of ``--redact-env`` variables and credential headers before anything is written.
Replaying serves the cassettes with their original timing (``--time-scale 1``), scaled, or at once (0).
Fault flags apply to both; ``--delay-event`` only to replay (the proxy cannot wait between events).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path

from aigw_harness.errors import ConfigError
from aigw_harness.proxy.fault_plan import FaultPlan, parse_indices
from aigw_harness.proxy.redaction import DEFAULT_SECRET_ENV


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "record", help="record an upstream as cassettes (mitmproxy), or replay them"
    )
    parser.add_argument("--cassettes", type=Path, required=True, metavar="DIR", help="cassette directory")
    parser.add_argument(
        "--upstream", action="append", default=[], metavar="URL", help="upstream origin (repeatable)"
    )
    parser.add_argument("--replay", action="store_true", help="serve the cassettes instead of recording")
    parser.add_argument("--time-scale", type=float, default=1.0, help="replay timing factor (0: no delays)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=8790,
        help="first listener (default: 8790; 0: a free one)",
    )
    parser.add_argument(
        "--redact-env",
        action="append",
        default=None,
        metavar="NAME",
        help=f"environment variable holding a secret (default: {', '.join(DEFAULT_SECRET_ENV)})",
    )
    faults = parser.add_argument_group("faults (SSE-aware)")
    faults.add_argument("--status", type=int, help="replace the response status")
    faults.add_argument("--cut-after", type=int, help="end event streams after N events")
    faults.add_argument("--drop", default="", help="0-based event indices to drop, e.g. 1,3")
    faults.add_argument("--corrupt", default="", help="0-based event indices to corrupt")
    faults.add_argument("--delay-head", type=int, default=0, metavar="MS", help="hold the response head back")
    faults.add_argument(
        "--delay-event", action="append", default=[], metavar="I:MS", help="replay only: wait before event I"
    )
    faults.add_argument(
        "--fault-path", default="", metavar="REGEX", help="proxy only: faults only on matching paths"
    )
    parser.set_defaults(handler=_record)


def _plan(args: argparse.Namespace) -> FaultPlan:
    delays: dict[int, float] = {}
    for item in args.delay_event:
        index, colon, ms = item.partition(":")
        if not colon or not index.isdigit():
            raise ConfigError(f"--delay-event {item!r}: expected INDEX:MS, e.g. 2:500")
        try:
            delays[int(index)] = float(ms)
        except ValueError:
            raise ConfigError(f"--delay-event {item!r}: {ms!r} is not a number of milliseconds") from None
    try:
        return FaultPlan(
            status=args.status,
            cut_after=args.cut_after,
            drop=parse_indices(args.drop, "--drop"),
            corrupt=parse_indices(args.corrupt, "--corrupt"),
            delay_head_ms=float(args.delay_head),
            delay_events=delays,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _record(args: argparse.Namespace) -> int:
    plan = _plan(args)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    if args.replay:
        return _serve_replay(args, plan)
    if not args.upstream:
        raise ConfigError("--upstream is required when recording (or pass --replay to serve cassettes)")
    if plan.delay_events:
        raise ConfigError("--delay-event works only with --replay: the proxy cannot wait between events")
    from aigw_harness.proxy.mitm import ProxySettings, running_proxy

    options: dict[str, object] = {
        "aigw_fault_status": plan.status or 0,
        "aigw_fault_cut_after": -1 if plan.cut_after is None else plan.cut_after,
        "aigw_fault_drop": args.drop,
        "aigw_fault_corrupt": args.corrupt,
        "aigw_fault_delay_head_ms": args.delay_head,
        "aigw_fault_path": args.fault_path,
    }
    settings = ProxySettings(
        upstreams=args.upstream,
        cassette_dir=args.cassettes,
        host=args.host,
        port=args.port,
        redact_env=args.redact_env or DEFAULT_SECRET_ENV,
        fault_options=options,
    )

    async def run() -> None:
        async with running_proxy(settings) as (urls, _, _):
            for upstream, url in zip(args.upstream, urls, strict=True):
                print(f"aigw record: {url} → {upstream}, cassettes in {args.cassettes}", file=sys.stderr)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _serve_replay(args: argparse.Namespace, plan: FaultPlan) -> int:
    from aigw_harness.proxy.redaction import Redactor
    from aigw_harness.proxy.replay import CassetteLibrary, running_replay

    if args.time_scale < 0:
        raise ConfigError(f"--time-scale must be 0 or more, got {args.time_scale}")
    redactor = Redactor.from_environment(args.redact_env or DEFAULT_SECRET_ENV, os.environ)
    library = CassetteLibrary.from_directory(args.cassettes, redactor)

    async def run() -> None:
        async with running_replay(
            library, time_scale=args.time_scale, faults=plan, host=args.host, port=args.port
        ) as url:
            print(
                f"aigw record: replaying {len(library.cassettes)} cassettes from {args.cassettes} on {url}",
                file=sys.stderr,
            )
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0
