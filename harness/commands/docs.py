"""``aigw docs``: render the findings document.

    aigw docs [PATH]... [--out FILE] [--check]                       the catalogue on the embedded fake
    aigw docs --from [LABEL=]RESULTS.json [--from ...] [--out FILE] [--check]   from any runs' results

Without ``--from``, the catalogue runs on the embedded fake (seeded) and ``docs/ai-gateway.md`` is rendered
from it. With ``--from``, nothing runs: the document is the milestone's checklist answered by each run,
side by side (``aigw_harness.report.findings_doc``).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import sys
from pathlib import Path

from aigw_harness.errors import ConfigError
from aigw_harness.report.render import render_docs
from aigw_harness.scenarios.loader import DEFAULT_DIR, load_scenarios
from aigw_harness.scenarios.runner import RunOptions, run_scenarios

__all__ = ["DOCS_PATH", "generate", "register"]

DOCS_PATH = Path("docs/ai-gateway.md")


def generate(
    paths: list[Path], seed: int = 0, time_scale: float = 0.05, tenants_dir: Path | None = None
) -> str:
    """Run the scenarios on the embedded fake and render the document (deterministic for a seed)."""
    loaded = load_scenarios(paths)
    options = RunOptions(
        target="fake", seed=seed, time_scale=time_scale, tenants_dir=tenants_dir or DEFAULT_DIR / "tenants"
    )
    results = asyncio.run(run_scenarios(loaded, options, run_id="docs"))
    return render_docs(results)


def from_results(sources: list[str], out: Path) -> str:
    """The side-by-side findings document for ``[LABEL=]PATH`` sources (labels default to the target)."""
    from aigw_harness.report.findings_doc import LabelledRun, default_label, render_findings, report_link
    from aigw_harness.report.results import load_results

    runs: list[LabelledRun] = []
    for source in sources:
        label, equals, path_text = source.partition("=")
        if not equals or not label or "/" in label or label.endswith(".json"):
            label, path_text = "", source
        path = Path(path_text)
        if not path.is_file():
            raise ConfigError(f"--from {source}: no such file {path} (give a run's results.json)")
        results = load_results(path)
        name = label or default_label(results)
        taken = {r.label for r in runs}
        number = 2
        unique = name
        while unique in taken:
            unique, number = f"{name} ({number})", number + 1
        runs.append(LabelledRun(unique, results, report_link(path, out)))
    return render_findings(runs)


def _handle(args: argparse.Namespace) -> int:
    if args.sources:
        if args.paths:
            raise ConfigError(
                "give scenario PATHs (to run them) or --from RESULTS.json (to use runs), not both"
            )
        text = from_results(args.sources, args.out)
    else:
        text = generate(
            args.paths or [DEFAULT_DIR], seed=args.seed, time_scale=args.time_scale, tenants_dir=args.tenants
        )
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current == text:
            print(f"{args.out} is up to date", file=sys.stderr)
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True), str(args.out), "generated"
        )
        sys.stderr.writelines(list(diff)[:200])
        print(f"\n{args.out} is out of date: run 'aigw docs' and commit the result", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "docs",
        help="render the findings document (docs/ai-gateway.md) from a run, or from runs' results",
        description="Run the scenario catalogue against the embedded fake (seeded, so the result is "
        "deterministic) and render docs/ai-gateway.md: how streaming, metadata, model selection, fallback, "
        "usage and budgets behave. With --from, run nothing: render the milestone's checklist answered by "
        "each given run (any target), side by side, with the disagreements between systems. With --check, "
        "compare instead of writing: exit 1 when the file is out of date.",
    )
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        default=[],
        metavar="[LABEL=]RESULTS.json",
        help="a run's results.json (repeatable; the first is the baseline); LABEL names the system",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="scenario files or directories")
    parser.add_argument("--out", type=Path, default=DOCS_PATH, metavar="FILE", help=f"default: {DOCS_PATH}")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if FILE differs from what would be written"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed for the fake (default: 0)")
    parser.add_argument(
        "--time-scale", type=float, default=0.05, metavar="X", help="time compression (default: 0.05)"
    )
    parser.add_argument(
        "--tenants", type=Path, default=DEFAULT_DIR / "tenants", metavar="DIR", help="tenant files"
    )
    parser.set_defaults(handler=_handle)
