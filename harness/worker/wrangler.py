"""Read a Wrangler configuration (``wrangler.jsonc``, ``.json`` or ``.toml``) for one environment.

``load_worker_config(path, env=None)`` returns a ``WorkerConfig``: the entry point, compatibility settings,
vars (plus ``.dev.vars`` secrets, as ``wrangler dev`` loads them) and the bindings the Worker bridge
simulates (KV, Durable Objects, D1, R2), the ``ai`` binding it replaces with the fake-backed adapter, and
every other declared binding as a stub that fails clearly when used.

Environments follow Wrangler's rules: ``name``, ``main`` and the compatibility settings are inherited from
the top level unless the environment sets them; bindings and vars are not inherited, so an environment
without ``vars`` has none. Mistakes raise ``DataFileError`` (file, line, field) or ``ConfigError``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aigw_fakes.datafiles import DataFileError, Problem, read_text, validate_data
from aigw_harness.errors import ConfigError
from aigw_harness.worker.jsonc import parse_jsonc

__all__ = ["BindingStub", "DurableObjectBinding", "WorkerConfig", "load_worker_config"]

CONFIG_NAMES = ("wrangler.jsonc", "wrangler.json", "wrangler.toml")


class _Model(BaseModel):
    # Wrangler has many more keys; the ones the bridge does not use are accepted and ignored.
    model_config = ConfigDict(extra="allow")


class _KvNamespace(_Model):
    binding: str = Field(min_length=1)
    id: str | None = None


class _DurableObject(_Model):
    name: str = Field(min_length=1)
    class_name: str = Field(min_length=1)
    script_name: str | None = None


class _DurableObjects(_Model):
    bindings: list[_DurableObject] = []


class _Migration(_Model):
    tag: str
    new_classes: list[str] = []
    new_sqlite_classes: list[str] = []


class _D1(_Model):
    binding: str = Field(min_length=1)
    database_name: str | None = None
    database_id: str | None = None


class _R2(_Model):
    binding: str = Field(min_length=1)
    bucket_name: str | None = None


class _Ai(_Model):
    binding: str = Field(min_length=1)


class _Named(_Model):
    binding: str = Field(min_length=1)


class _Queues(_Model):
    producers: list[_Named] = []


class _EnvironmentKeys(_Model):
    name: str | None = None
    main: str | None = None
    define: dict[str, str] | None = None
    alias: dict[str, str] | None = None
    compatibility_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    compatibility_flags: list[str] | None = None
    vars: dict[str, Any] | None = None
    kv_namespaces: list[_KvNamespace] | None = None
    durable_objects: _DurableObjects | None = None
    migrations: list[_Migration] | None = None
    d1_databases: list[_D1] | None = None
    r2_buckets: list[_R2] | None = None
    ai: _Ai | None = None
    # Declared bindings the bridge cannot simulate: each becomes a stub.
    vectorize: list[_Named] | None = None
    services: list[_Named] | None = None
    queues: _Queues | None = None
    analytics_engine_datasets: list[_Named] | None = None
    hyperdrive: list[_Named] | None = None
    browser: _Named | None = None
    images: _Named | None = None
    mtls_certificates: list[_Named] | None = None
    dispatch_namespaces: list[_Named] | None = None
    workflows: list[_Named] | None = None


class _WranglerFile(_EnvironmentKeys):
    env: dict[str, _EnvironmentKeys] = {}


@dataclass(frozen=True, slots=True)
class DurableObjectBinding:
    binding: str
    class_name: str
    sqlite: bool


@dataclass(frozen=True, slots=True)
class BindingStub:
    binding: str
    kind: str  # what Wrangler calls it, e.g. "vectorize", "service (auth-worker)"
    class_name: str | None = None
    """For a Durable Object said to live in another Worker: its class, simulated after all when the bundle
    itself exports it (the runner decides, from the bundle's exports)."""
    sqlite: bool = False


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    source: Path  # the Wrangler file
    environment: str | None
    name: str
    main: Path  # absolute path of the entry point
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...]
    vars: Mapping[str, Any]
    kv_namespaces: tuple[str, ...]
    d1_databases: tuple[str, ...]
    r2_buckets: tuple[str, ...]
    durable_objects: tuple[DurableObjectBinding, ...]
    ai_binding: str | None
    stubs: tuple[BindingStub, ...]
    warnings: tuple[str, ...] = field(default=())
    define: Mapping[str, str] = field(default_factory=dict)  # esbuild replacements (not inherited)
    alias: Mapping[str, str] = field(default_factory=dict)  # module aliases, paths made absolute

    def durable_object_classes(self) -> dict[str, str]:
        """Durable Object bindings and their classes: the Worker's own, and those said to live in another
        Worker whose class the bundle may export after all."""
        classes = {d.binding: d.class_name for d in self.durable_objects}
        classes.update({s.binding: s.class_name for s in self.stubs if s.class_name})
        return classes


def _read(path: Path) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    if not path.exists():
        raise ConfigError(f"{path}: no such Wrangler configuration file")
    text = read_text(path)
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text), _toml_positions(text)
        except tomllib.TOMLDecodeError as exc:
            at = _TOML_AT.search(str(exc))
            message = _TOML_AT.sub("", str(exc))
            line, column = (int(at.group(1)), int(at.group(2))) if at else (None, None)
            if "(at end of document)" in message:
                message = message.replace(" (at end of document)", " at the end of the file")
                line = text.count("\n") + (0 if text.endswith("\n") else 1)
            raise DataFileError(str(path), [Problem("", f"invalid TOML: {message}", line, column)]) from None
        except RecursionError:
            raise DataFileError(str(path), [Problem("", "invalid TOML: nested too deeply")]) from None
    return parse_jsonc(text, str(path))


_TOML_AT = re.compile(r" \(at line (\d+), column (\d+)\)")
_TOML_TABLE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")


def _toml_positions(text: str) -> dict[tuple[str | int, ...], int]:
    """The line of each table and key, for error messages (dotted keys and array tables included)."""
    positions: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    arrays: dict[tuple[str | int, ...], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _TOML_TABLE.match(raw)
        if header is not None:
            path: tuple[str | int, ...] = tuple(_toml_key_parts(header.group(2)))
            if header.group(1) == "[[":
                arrays[path] = arrays.get(path, -1) + 1
                path = (*path, arrays[path])
            table = path
            positions.setdefault(table, number)
            continue
        key = _TOML_KEY.match(raw)
        if key is not None:
            positions.setdefault((*table, *_toml_key_parts(key.group(1))), number)
    return positions


def _toml_key_parts(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]


def resolve_config_path(path: Path) -> Path:
    """A Wrangler file, or a directory holding one (``wrangler.jsonc`` first, as Wrangler looks)."""
    if path.is_dir():
        for name in CONFIG_NAMES:
            if (path / name).is_file():
                return path / name
        raise ConfigError(f"{path}: no {', '.join(CONFIG_NAMES)} in this directory")
    return path


def _dev_vars(directory: Path, environment: str | None) -> dict[str, str]:
    """``.dev.vars`` (or ``.dev.vars.<env>``): the local secrets ``wrangler dev`` adds to vars."""
    candidates = [directory / f".dev.vars.{environment}"] if environment else []
    candidates.append(directory / ".dev.vars")
    for candidate in candidates:
        if candidate.is_file():
            return _parse_dotenv(candidate)
    return {}


_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def _parse_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = _DOTENV_LINE.match(raw)
        if match is None:
            raise DataFileError(str(path), [Problem("", "expected NAME=value", line=number)])
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[name] = value
    return values


def _stubs(keys: _EnvironmentKeys) -> list[BindingStub]:
    stubs: list[BindingStub] = []
    for kind, items in (
        ("vectorize", keys.vectorize),
        ("analytics_engine_datasets", keys.analytics_engine_datasets),
        ("hyperdrive", keys.hyperdrive),
        ("mtls_certificates", keys.mtls_certificates),
        ("dispatch_namespaces", keys.dispatch_namespaces),
        ("workflows", keys.workflows),
    ):
        stubs.extend(BindingStub(item.binding, kind) for item in items or [])
    for service in keys.services or []:
        target = (service.model_extra or {}).get("service", "?")
        stubs.append(BindingStub(service.binding, f"service binding to Worker {target!r}"))
    if keys.queues:
        stubs.extend(BindingStub(item.binding, "queue producer") for item in keys.queues.producers)
    for kind, single in (("browser", keys.browser), ("images", keys.images)):
        if single is not None:
            stubs.append(BindingStub(single.binding, kind))
    return stubs


def load_worker_config(path: str | Path, environment: str | None = None) -> WorkerConfig:
    """Read the Wrangler file at ``path`` (or in that directory) for ``environment`` (None: top level)."""
    source = resolve_config_path(Path(path)).resolve()
    data, positions = _read(source)
    if not isinstance(data, dict):
        raise DataFileError(str(source), [Problem("", "the configuration must be an object", line=1)])
    config = validate_data(data, _WranglerFile, str(source), positions)

    keys: _EnvironmentKeys = config
    prefix: tuple[str, ...] = ()
    if environment is not None:
        if environment not in config.env:
            known = ", ".join(sorted(config.env)) or "none are declared"
            raise ConfigError(f"{source}: no environment {environment!r} under 'env' (known: {known})")
        keys = config.env[environment]
        prefix = ("env", environment)

    def inherited[T](own: T | None, top: T | None) -> T | None:
        return own if own is not None else top

    main = inherited(keys.main, config.main)
    if main is None:
        raise DataFileError(
            str(source),
            [Problem("main", "the Worker's entry point is missing (set 'main', e.g. \"src/index.ts\")")],
        )
    main_path = (source.parent / main).resolve()
    if not main_path.is_file():
        field_name = ".".join((*prefix, "main")) if keys.main is not None else "main"
        line = positions.get((*prefix, "main") if keys.main is not None else ("main",))
        raise DataFileError(
            str(source), [Problem(field_name, f"entry point {main_path} does not exist", line=line)]
        )

    if environment is None:
        name = config.name or source.parent.name
    else:
        name = keys.name or f"{config.name or source.parent.name}-{environment}"

    migrations = keys.migrations if keys.migrations is not None else config.migrations or []
    sqlite_classes = {cls for migration in migrations for cls in migration.new_sqlite_classes}
    warnings: list[str] = []
    durable_objects: list[DurableObjectBinding] = []
    stubs = _stubs(keys)
    for binding in keys.durable_objects.bindings if keys.durable_objects else []:
        if binding.script_name and binding.script_name != name:
            stubs.append(
                BindingStub(
                    binding.name,
                    f"Durable Object {binding.class_name} in Worker {binding.script_name!r}",
                    class_name=binding.class_name,
                    sqlite=binding.class_name in sqlite_classes,
                )
            )
        else:
            durable_objects.append(
                DurableObjectBinding(binding.name, binding.class_name, binding.class_name in sqlite_classes)
            )
    if environment is not None:
        for key in ("vars", "kv_namespaces", "durable_objects", "d1_databases", "r2_buckets", "ai"):
            if getattr(config, key) is not None and getattr(keys, key) is None:
                warnings.append(
                    f"'{key}' is declared at the top level but not in env.{environment}; "
                    "Wrangler does not inherit it, so this environment has none"
                )

    aliases = inherited(keys.alias, config.alias) or {}
    alias = {
        name: str((source.parent / target).resolve()) if target.startswith(".") else target
        for name, target in aliases.items()
    }
    variables: dict[str, Any] = dict(keys.vars or {})
    variables.update(_dev_vars(source.parent, environment))
    return WorkerConfig(
        source=source,
        environment=environment,
        name=name,
        main=main_path,
        compatibility_date=inherited(keys.compatibility_date, config.compatibility_date),
        compatibility_flags=tuple(inherited(keys.compatibility_flags, config.compatibility_flags) or ()),
        vars=variables,
        kv_namespaces=tuple(kv.binding for kv in keys.kv_namespaces or []),
        d1_databases=tuple(d1.binding for d1 in keys.d1_databases or []),
        r2_buckets=tuple(r2.binding for r2 in keys.r2_buckets or []),
        durable_objects=tuple(durable_objects),
        ai_binding=keys.ai.binding if keys.ai else None,
        stubs=tuple(stubs),
        warnings=tuple(warnings),
        define=dict(keys.define or {}),
        alias=alias,
    )
