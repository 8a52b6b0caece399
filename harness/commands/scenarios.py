"""``aigw list``, ``aigw validate`` and ``aigw schema``: look at scenario files without running them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aigw_fakes.datafiles import DataFileError
from aigw_harness.scenarios.loader import (
    DEFAULT_DIR,
    LoadedScenario,
    discover,
    duplicate_ids,
    json_schema,
    load_scenario,
    load_scenarios,
)
from aigw_harness.scenarios.runner import needed_capabilities

__all__ = ["register"]


def _list(args: argparse.Namespace) -> int:
    loaded = load_scenarios(args.paths or [DEFAULT_DIR])
    ordered = sorted(loaded, key=lambda i: (i.scenario.area.value, i.scenario.id))
    rows = [
        {
            "id": item.scenario.id,
            "area": item.scenario.area.value,
            "title": item.scenario.title,
            "path": str(item.path),
            "needs": sorted(c.value for c in needed_capabilities(item.scenario)),
        }
        for item in ordered
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(row["id"]) for row in rows), default=10)
    for row in rows:
        needs = ",".join(row["needs"]) or "-"
        print(f"{row['area']:<13} {row['id']:<{width}}  {row['title']}  [needs: {needs}]")
    print(f"{len(loaded)} scenarios", file=sys.stderr)
    return 0


def _problems(error: DataFileError) -> list[dict[str, object]]:
    return [
        {"source": error.source, "line": p.line, "column": p.column, "field": p.field, "message": p.message}
        for p in error.problems
    ]


def _validate(args: argparse.Namespace) -> int:
    files = discover(args.paths)
    if not files:
        print("no scenario files found", file=sys.stderr)
        return 2
    tenants_dir: Path = args.tenants
    bad: set[Path] = set()
    loaded: list[LoadedScenario] = []
    problems: dict[str, list[dict[str, object]]] = {str(path): [] for path in files}
    for path in files:
        try:
            loaded.append(load_scenario(path, tenants_dir))
        except DataFileError as exc:
            bad.add(path)
            problems[str(path)] += _problems(exc)
            if not args.json:
                print(exc, file=sys.stderr)
    for error in duplicate_ids(loaded):
        bad.add(Path(error.source))
        problems.setdefault(error.source, []).extend(_problems(error))
        if not args.json:
            print(error, file=sys.stderr)
    if args.json:
        report = {
            "ok": not bad,
            "files": [{"path": path, "ok": not found, "problems": found} for path, found in problems.items()],
        }
        print(json.dumps(report, indent=2))
        return 2 if bad else 0
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
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
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
    validate.add_argument(
        "--json",
        action="store_true",
        help="print each file's verdict and problems as JSON",
    )
    validate.set_defaults(handler=_validate)

    schema = subparsers.add_parser(
        "schema",
        help="print the scenario files' JSON Schema (for editors)",
        description="Print the JSON Schema of scenario files; scenarios/schema.json is this output.",
    )
    schema.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    schema.set_defaults(handler=_schema)
