"""Finding and loading scenario files; every mistake names file, line and field (via ``fakes.datafiles``).

Does not run anything: ``harness.scenarios.runner`` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from fakes.datafiles import DataFileError, Problem, load_model
from harness.scenarios.model import Scenario

__all__ = [
    "DEFAULT_DIR",
    "LoadedScenario",
    "discover",
    "json_schema",
    "load_scenario",
    "load_scenarios",
    "resolve_tenant_entries",
    "resolve_tenants",
]

DEFAULT_DIR = Path("scenarios")
_SUFFIXES = (".yaml", ".yml")
_NOT_SCENARIOS = {"tenants", "behaviours", "fixtures"}


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    path: Path
    scenario: Scenario


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files named by ``paths``: files as given, directories searched (tenant folders left out).

    A path that does not exist is a ``DataFileError`` naming it.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).parts
                if candidate.suffix in _SUFFIXES and not _NOT_SCENARIOS.intersection(relative[:-1]):
                    found.append(candidate)
        elif path.is_file():
            found.append(path)
        else:
            raise DataFileError(str(path), [Problem("", "no such file or directory")])
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)


def load_scenario(path: Path) -> LoadedScenario:
    return LoadedScenario(path, load_model(path, Scenario))


def load_scenarios(paths: list[Path]) -> list[LoadedScenario]:
    """Load every scenario; all files' problems are reported together, and ids must be unique."""
    loaded: list[LoadedScenario] = []
    errors: list[DataFileError] = []
    for path in discover(paths):
        try:
            loaded.append(load_scenario(path))
        except DataFileError as exc:
            errors.append(exc)
    seen: dict[str, Path] = {}
    for item in loaded:
        first = seen.setdefault(item.scenario.id, item.path)
        if first != item.path:
            errors.append(
                DataFileError(
                    str(item.path), [Problem("id", f"{item.scenario.id!r} is already used by {first}")]
                )
            )
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise DataFileError(
            f"{len(errors)} scenario files",
            [Problem("", str(error).replace("\n", "\n  ")) for error in errors],
        )
    return loaded


def resolve_tenants(scenario: Scenario, tenants_dir: Path) -> list[dict[str, Any]]:
    """The scenario's tenant documents (see ``resolve_tenant_entries``)."""
    return resolve_tenant_entries(scenario.tenants, tenants_dir, scenario.id)


def resolve_tenant_entries(
    entries: Sequence[str | Mapping[str, Any]], tenants_dir: Path, source: str, field: str = "tenants"
) -> list[dict[str, Any]]:
    """Tenant documents from names and inline entries: names are read from ``tenants_dir`` (``NAME.yaml``/
    ``.json`` or ``NAME/tenant.config.json``); inline documents are used as written, and one with
    ``extends: NAME`` starts from that tenant's file, its own top-level keys replacing the file's (mappings
    are merged). Mistakes name ``source`` and the entry's field (``tenants[2].extends``)."""
    documents: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        where = f"{field}[{index}]"
        if isinstance(entry, Mapping):
            inline = dict(entry)
            base_name = inline.pop("extends", None)
            if base_name is None:
                documents.append(inline)
                continue
            if not isinstance(base_name, str):
                raise DataFileError(source, [Problem(f"{where}.extends", "must be a tenant name")])
            base = _tenant_file(source, base_name, tenants_dir, f"{where}.extends")
            for key, value in inline.items():
                if isinstance(value, dict) and isinstance(base.get(key), dict):
                    base[key] = {**base[key], **value}
                else:
                    base[key] = value
            documents.append(base)
            continue
        documents.append(_tenant_file(source, entry, tenants_dir, where))
    return documents


def _tenant_file(source: str, entry: str, tenants_dir: Path, field: str) -> dict[str, Any]:
    candidates = [
        tenants_dir / f"{entry}.yaml",
        tenants_dir / f"{entry}.yml",
        tenants_dir / f"{entry}.json",
        tenants_dir / entry / "tenant.config.json",
    ]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise DataFileError(source, [Problem(field, f"no tenant file for {entry!r} in {tenants_dir}")])
    return _read_document(path)


class _Document(pydantic.RootModel[dict[str, Any]]):
    """Any mapping: the gateway validates tenant documents against its own model."""


def _read_document(path: Path) -> dict[str, Any]:
    return load_model(path, _Document).root


def json_schema() -> str:
    """The scenario format as JSON Schema (draft 2020-12), for editors; deterministic text."""
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://aigw-harness.invalid/scenarios/schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
