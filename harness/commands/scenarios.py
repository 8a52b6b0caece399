"""``aigw list``, ``aigw validate`` and ``aigw schema``: look at scenario files without running them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fakes.datafiles import DataFileError
from harness.scenarios.loader import (
    DEFAULT_DIR,
    LoadedScenario,
    discover,
    duplicate_ids,
    json_schema,
    load_scenario,
    load_scenarios,
)
from harness.scenarios.runner import needed_capabilities

__all__ = ["register"]


def _list(args: argparse.Namespace) -> int:
    loaded = load_scenarios(args.paths or [DEFAULT_DIR])
    width = max((len(item.scenario.id) for item in loaded), default=10)
    for item in sorted(loaded, key=lambda i: (i.scenario.area.value, i.scenario.id)):
        s = item.scenario
        needs = ",".join(sorted(c.value for c in needed_capabilities(s))) or "-"
        print(f"{s.area.value:<13} {s.id:<{width}}  {s.title}  [needs: {needs}]")
    print(f"{len(loaded)} scenarios", file=sys.stderr)
    return 0


def _validate(args: argparse.Namespace) -> int:
    files = discover(args.paths)
    if not files:
        print("no scenario files found", file=sys.stderr)
        return 2
    tenants_dir: Path = args.tenants
    bad: set[Path] = set()
    loaded: list[LoadedScenario] = []
    for path in files:
        try:
            loaded.append(load_scenario(path, tenants_dir))
        except DataFileError as exc:
            bad.add(path)
            print(exc, file=sys.stderr)
    for error in duplicate_ids(loaded):
        bad.add(Path(error.source))
        print(error, file=sys.stderr)
    for item in loaded:
        if item.path not in bad:
            print(f"{item.path}: ok")
    if bad:
        print(f"{len(bad)} of {len(files)} files have problems", file=sys.stderr)
        return 2
    return 0


def _schema(args: argparse.Namespace) -> int:
    text = json_schema()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = subparsers.add_parser(
        "list",
        help="list scenarios with their area and the capabilities they need",
        description="List the scenarios under PATH (default: scenarios/) with their area, title and the "
        "target capabilities they need.",
    )
    listing.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="scenario files or directories")
    listing.set_defaults(handler=_list)

    validate = subparsers.add_parser(
        "validate",
        help="check scenario files; every mistake is named by file, line and field",
        description="Check scenario files without running them: the scenario model, upstream behaviour "
        "documents, tenant names and documents (and the tenant files they name), and that ids are unique "
        "across files. Exit status 0 when all are valid, 2 otherwise (each problem printed with file, line "
        "and field).",
    )
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="scenario files or directories")
    validate.add_argument(
        "--tenants",
        type=Path,
        default=DEFAULT_DIR / "tenants",
        metavar="DIR",
        help="where tenant files named by scenarios live (default: scenarios/tenants)",
    )
    validate.set_defaults(handler=_validate)

    schema = subparsers.add_parser(
        "schema",
        help="print the scenario files' JSON Schema (for editors)",
        description="Print the JSON Schema of scenario files; scenarios/schema.json is this output.",
    )
    schema.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    schema.set_defaults(handler=_schema)
