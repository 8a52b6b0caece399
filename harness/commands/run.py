"""``aigw run``: run scenario files against a target and write the findings report."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from aigw_harness.ci import gate as ci_gate
from aigw_harness.errors import ConfigError
from aigw_harness.report.render import write_report
from aigw_harness.report.results import Results, ScenarioResult, ScenarioStatus
from aigw_harness.scenarios.loader import DEFAULT_DIR, load_scenarios
from aigw_harness.scenarios.runner import RunOptions, run_scenarios
from aigw_harness.scenarios.targets import REGISTRY

__all__ = ["ProgressPrinter", "add_run_options", "catalogue_of", "options_from", "positive_float", "register"]

_EPILOG = """\
targets:
  fake    the reference gateway and the fake AI Gateway in this process (default; every capability)
  url     any deployment speaking the /chat contract (--sut-url); add --target-option upstream_url=URL
          when its upstream is 'aigw fake serve', so that scenarios scripting the upstream run too
  live    the reference gateway against the real Cloudflare AI Gateway (needs credentials)
  replay  the reference gateway against recorded cassettes
  worker  your Worker in workerd with env.AI pointed at the fake (needs Node.js)
  module:factory  any other Target implementation

exit status: 0 every expectation held (skipped scenarios allowed), 1 an expectation failed or a scenario
could not run, 2 a usage or configuration error (bad flag, bad scenario file: file, line and field named).
With --baseline FILE: 0 when nothing regressed against the baseline (known failures and findings are
listed), 1 when a check newly fails, a finding is newly raised or grows in severity (and, with --strict,
when a known failure or finding is fixed: update the baseline to accept it).

examples:
  aigw run                                   the whole catalogue on the embedded fake
  aigw run scenarios/budget-*.yaml --seed 7  some scenarios, another seed
  aigw run --target url --sut-url http://127.0.0.1:8787 scenarios/streaming-contract.yaml
  aigw run --baseline aigw-baseline.json --junitxml junit.xml   the CI gate (docs/ci.md)
"""


def positive_float(high: float) -> Callable[[str], float]:
    """An argparse type: a number above 0 and at most ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"must be above 0 and at most {high:g}, got {text}")
        return value

    return parse


def _key_value(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default="fake",
        metavar="NAME",
        help=f"where to run: {', '.join(REGISTRY)} or module:factory (default: fake)",
    )
    parser.add_argument("--sut-url", metavar="URL", help="the deployment serving /chat (for --target url)")
    parser.add_argument(
        "--target-option",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="an option for the target, repeatable (url: upstream_url, account_id, api_token)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed for the fake and ids (default: 0)"
    )
    parser.add_argument(
        "--time-scale",
        type=positive_float(10),
        default=0.05,
        metavar="X",
        help="multiply scripted delays, timeouts and pauses by X (default: 0.05, twenty times faster); "
        "reported times are unscaled",
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        metavar="DIR",
        help=f"the scenario catalogue to run when no PATH is given, and its tenants (default: {DEFAULT_DIR})",
    )
    parser.add_argument(
        "--tenants",
        type=Path,
        metavar="DIR",
        help="where tenant files named by scenarios live (default: the catalogue's tenants/)",
    )


def catalogue_of(args: argparse.Namespace) -> Path:
    """The catalogue a command was given (``--catalogue``), else the default one."""
    catalogue: Path | None = getattr(args, "catalogue", None)
    return catalogue if catalogue is not None else DEFAULT_DIR


def options_from(args: argparse.Namespace) -> RunOptions:
    if args.target == "url" and not args.sut_url:
        raise ConfigError("--target url needs --sut-url URL")
    if args.sut_url and args.target == "fake":
        args.target = "url"  # a URL given means that deployment is the system under test
    return RunOptions(
        target=args.target,
        sut_url=args.sut_url,
        seed=args.seed,
        time_scale=args.time_scale,
        tenants_dir=args.tenants or catalogue_of(args) / "tenants",
        extra=dict(args.target_option),
    )


_MARK = {
    ScenarioStatus.PASSED: "ok",
    ScenarioStatus.FAILED: "FAIL",
    ScenarioStatus.ERROR: "ERROR",
    ScenarioStatus.SKIPPED: "skip",
    ScenarioStatus.NOT_APPLICABLE: "n/a",
}


class ProgressPrinter:
    """One line per scenario; on a terminal, the scenario being run is shown while it runs."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.live = stream.isatty()

    def __call__(self, index: int, total: int, result: ScenarioResult | None, scenario_id: str) -> None:
        if self.quiet:
            return
        prefix = f"[{index + 1:>{len(str(total))}}/{total}]"
        if result is None:
            if self.live:
                self.stream.write(f"\r\x1b[K{prefix} {scenario_id} ...")
                self.stream.flush()
            return
        mark = _MARK.get(result.status, str(result.status))
        line = f"{prefix} {mark:<5} {scenario_id} ({result.duration_s:.2f} s)"
        if result.status in (ScenarioStatus.SKIPPED, ScenarioStatus.ERROR, ScenarioStatus.NOT_APPLICABLE):
            line += f": {result.reason}"
        elif result.status is ScenarioStatus.FAILED:
            failed = [c.id for c in result.checks if c.status == "failed"]
            line += f": {', '.join(failed[:4])}{' ...' if len(failed) > 4 else ''}"
        self.stream.write(("\r\x1b[K" if self.live else "") + line + "\n")
        self.stream.flush()


def summary_lines(results: Results) -> list[str]:
    s = results.summary
    raised = ", ".join(f"{n} {sev}" for sev, n in s.findings_raised.items()) or "none"
    return [
        f"{s.total} scenarios in {results.run.duration_s:.1f} s: {s.passed} passed, {s.failed} failed, "
        f"{s.error} errors, {s.skipped} skipped"
        + (f", {s.not_applicable} not applicable" if s.not_applicable else "")
        + f"; findings raised: {raised}",
    ]


def _handle(args: argparse.Namespace) -> int:
    options = options_from(args)
    gate = ci_gate.Gate.from_args(args)  # a bad baseline file stops the run before it starts
    paths = args.paths or [catalogue_of(args)]
    loaded = load_scenarios(paths, options.tenants_dir)
    if not loaded:
        raise ConfigError(f"no scenario files found in {', '.join(map(str, paths))}")
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    progress = ProgressPrinter(sys.stderr, quiet=args.quiet)
    results = asyncio.run(run_scenarios(loaded, options, progress, run_id=run_id))
    results = gate.compare(results)
    out = args.out or Path("reports") / run_id
    paths_written = write_report(results, out)
    gate.write_junit(results)
    status = gate.exit_status(results)
    if args.json:
        summary = {
            "ok": status == 0,
            "run": results.run.id,
            "summary": results.summary.model_dump(),
            "baseline": results.baseline.model_dump() if results.baseline is not None else None,
            "report": {
                "html": str(paths_written.report_html),
                "md": str(paths_written.report_md),
                "results": str(paths_written.results_json),
            },
        }
        print(json.dumps(summary, indent=2))
        return status
    for line in summary_lines(results) + gate.summary_lines(results):
        print(line, file=sys.stderr)
    print(f"report: {paths_written.report_html}")
    print(f"        {paths_written.report_md}")
    print(f"        {paths_written.results_json}")
    return status


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run scenario files against a target and write a findings report",
        description="Run scenario files against a target and write reports/<run>/report.html, report.md "
        "and results.json. Without PATH, runs every scenario under scenarios/.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="scenario files or directories")
    add_run_options(parser)
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write the report (default: reports/<run id>)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--json", action="store_true", help="print the summary and report paths as JSON on standard output"
    )
    ci_gate.add_gate_options(parser)
    parser.set_defaults(handler=_handle)
