"""Finding and loading scenario files; every mistake names file, line and field (via
``aigw_fakes.datafiles``).

Loading checks everything a run will need, so that a mistake is reported when the file is read, not half-way
through a run: the scenario model, the upstream behaviour documents against the fake's behaviour model,
tenant names (no paths), inline tenant documents against the tenant schema, and, given the tenants
directory, that every named tenant file exists and is valid. Does not run anything:
``aigw_harness.scenarios.runner`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from aigw_fakes.behaviour import BehaviourDocument
from aigw_fakes.datafiles import (
    DataFileError,
    Problem,
    line_of,
    load_model,
    parse_data,
    read_text,
    validate_data,
    validate_part,
)
from aigw_harness.catalogue import catalogue_dir
from aigw_harness.gateway.tenants import TenantConfig
from aigw_harness.scenarios.assumptions import model_references
from aigw_harness.scenarios.model import Scenario

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

DEFAULT_DIR = catalogue_dir()
"""The catalogue (see ``aigw_harness.catalogue``): ``./scenarios`` in this repository or a project that has
one."""
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


def load_scenario(path: Path, tenants_dir: Path | None = None) -> LoadedScenario:
    """Read and check one scenario file; with ``tenants_dir``, the tenant files it names are checked too."""
    source = str(path)
    data, positions = parse_data(read_text(path), source)
    scenario = validate_data(data, Scenario, source, positions)
    problems = _setup_problems(scenario, source, positions, tenants_dir)
    if problems:
        raise DataFileError(source, problems)
    return LoadedScenario(path, scenario)


def load_scenarios(paths: list[Path], tenants_dir: Path | None = None) -> list[LoadedScenario]:
    """Load every scenario; all files' problems are reported together, and ids must be unique."""
    loaded: list[LoadedScenario] = []
    errors: list[DataFileError] = []
    for path in discover(paths):
        try:
            loaded.append(load_scenario(path, tenants_dir))
        except DataFileError as exc:
            errors.append(exc)
    errors.extend(duplicate_ids(loaded))
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise DataFileError(
            f"{len(errors)} scenario files",
            [Problem("", str(error).replace("\n", "\n  ")) for error in errors],
        )
    return loaded


def duplicate_ids(loaded: list[LoadedScenario]) -> list[DataFileError]:
    """One error for each scenario whose id an earlier file already uses."""
    errors: list[DataFileError] = []
    seen: dict[str, Path] = {}
    for item in loaded:
        first = seen.setdefault(item.scenario.id, item.path)
        if first != item.path:
            errors.append(
                DataFileError(
                    str(item.path),
                    [
                        Problem(
                            "id", f"{item.scenario.id!r} is already used by {first}", line=_id_line(item.path)
                        )
                    ],
                )
            )
    return errors


def _id_line(path: Path) -> int | None:
    try:
        _, positions = parse_data(read_text(path), str(path))
    except DataFileError:
        return None
    return line_of(positions, ("id",))


type _Lines = Mapping[tuple[str | int, ...], int] | Callable[[], Mapping[tuple[str | int, ...], int]]

# A tenant name is a file name in the tenants directory, never a path.
_TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _setup_problems(
    scenario: Scenario, source: str, positions: _Lines, tenants_dir: Path | None
) -> list[Problem]:
    """What the model alone cannot check: documents for the fake and the gateway, and tenant references."""
    problems: list[Problem] = []

    def check_part(document: Any, model: type[pydantic.BaseModel], at: tuple[str | int, ...]) -> None:
        try:
            validate_part(document, model, source, positions, at)
        except DataFileError as exc:
            problems.extend(exc.problems)

    if scenario.upstream is not None:
        check_part(scenario.upstream, BehaviourDocument, ("upstream",))
    for index, step in enumerate(scenario.steps):
        if step.upstream is not None:
            check_part(step.upstream, BehaviourDocument, ("steps", index, "upstream"))
    tenant_ids: dict[str, str] = {}
    for index, entry in enumerate(scenario.tenants):
        at: tuple[str | int, ...] = ("tenants", index)
        name = entry if isinstance(entry, str) else entry.get("extends")
        name_at = at if isinstance(entry, str) else (*at, "extends")
        if name is not None and not (isinstance(name, str) and _TENANT_NAME.match(name) and ".." not in name):
            problems.append(
                Problem(
                    _field(name_at),
                    f"{name!r} is not a tenant name: give the name of a file in the tenants directory "
                    "(letters, digits, '.', '_', '-'; no paths)",
                    line=line_of(positions, name_at),
                )
            )
            continue
        document: dict[str, Any] | None = None
        if isinstance(entry, dict) and name is None:
            document = entry
            check_part(entry, TenantConfig, at)
        elif tenants_dir is not None and isinstance(name, str):
            where = _tenant_path(name, tenants_dir)
            if where is None:
                problems.append(
                    Problem(
                        _field(name_at),
                        f"no tenant file for {name!r} in {tenants_dir} (looked for {name}.yaml, .yml, .json "
                        f"and {name}/tenant.config.json)",
                        line=line_of(positions, name_at),
                    )
                )
                continue
            try:
                document = resolve_tenant(scenario, index, tenants_dir)
                if isinstance(entry, str):
                    load_model(where, TenantConfig)
            except DataFileError as exc:
                problems.append(
                    Problem(
                        _field(at),
                        "the tenant file has problems:\n    " + str(exc).replace("\n", "\n    "),
                        line_of(positions, at),
                    )
                )
                continue
            if isinstance(entry, dict):  # the file's document with the entry's keys over it
                check_part(document, TenantConfig, at)
        if document is not None:
            tenant_id = document.get("tenantId")
        else:  # not read: a named file's id is taken to be its name
            tenant_id = entry.get("tenantId", name) if isinstance(entry, dict) else name
        if isinstance(tenant_id, str):
            if tenant_id in tenant_ids:
                problems.append(
                    Problem(
                        _field(at),
                        f"tenant {tenant_id!r} is also configured by {tenant_ids[tenant_id]}",
                        line=line_of(positions, at),
                    )
                )
            tenant_ids.setdefault(tenant_id, _field(at))
    for loc, reference, tenant_id in model_references(scenario):
        if tenant_id not in tenant_ids:
            known = ", ".join(sorted(tenant_ids)) or "none"
            problems.append(
                Problem(
                    _field(loc),
                    f"{reference} names tenant {tenant_id!r}, which is not among the scenario's tenants "
                    f"({known})",
                    line=line_of(positions, loc),
                )
            )
    return problems


def _field(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def resolve_tenants(scenario: Scenario, tenants_dir: Path) -> list[dict[str, Any]]:
    """The scenario's tenant documents (see ``resolve_tenant_entries``)."""
    return resolve_tenant_entries(scenario.tenants, tenants_dir, scenario.id)


def resolve_tenant(scenario: Scenario, index: int, tenants_dir: Path) -> dict[str, Any]:
    """The tenant document of ``scenario.tenants[index]`` (see ``resolve_tenant_entries``)."""
    entry = scenario.tenants[index]
    return resolve_tenant_entries([entry], tenants_dir, scenario.id)[0]


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


def _tenant_path(entry: str, tenants_dir: Path) -> Path | None:
    if not _TENANT_NAME.match(entry) or ".." in entry:
        return None
    candidates = [
        tenants_dir / f"{entry}.yaml",
        tenants_dir / f"{entry}.yml",
        tenants_dir / f"{entry}.json",
        tenants_dir / entry / "tenant.config.json",
    ]
    return next((c for c in candidates if c.is_file()), None)


def _tenant_file(source: str, entry: str, tenants_dir: Path, field: str) -> dict[str, Any]:
    if not _TENANT_NAME.match(entry) or ".." in entry:
        raise DataFileError(source, [Problem(field, f"{entry!r} is not a tenant name (no paths)")])
    path = _tenant_path(entry, tenants_dir)
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
