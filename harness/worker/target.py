"""The ``worker`` target: the user's own Worker in workerd, with ``env.AI`` answered by the fake.

    aigw run --target worker --target-option config=path/to/wrangler.jsonc [--target-option env=dev] \\
        [--target-option tenants=var:TENANTS|worker] [--target-option ledger_kv=RATE_LIMITER] \\
        [--target-option ledger_key={tenant}:token-usage:{period}:{date}] \\
        [--target-option sessions_do=SESSIONS] [--target-option sessions_name={tenant}:{session}] \\
        [--target-option sessions_key=messages | sessions_prefix=PREFIX] \\
        [--target-option gateways=gw-a,gw-b] [--target-option node_modules=DIR] scenarios/...

Each scenario gets a fresh fake and a fresh Worker (fresh KV, Durable Objects and D1), so scenarios cannot
leak state into each other. The scenario's environment overrides the Worker's vars (``MODEL_ID`` and the
like). The upstream is our fake, so it can be scripted and what it was asked and billed read (its request
store), and its Logs API read. The Worker's clock is its ``Date`` (moved by an offset the bundle's ``Date``
adds; timers keep the real clock). Its tenants are its own unless the ``tenants`` option says otherwise
(below).

What the Worker charged is read from its own KV namespaces: the key of a tenant's usage for a period
follows ``ledger_key`` (default ``{tenant}:token-usage:{period}:{date}``, the platform's keys; see
``aigw_harness.scenarios.state.ledger_key`` for the placeholders), looked up in ``ledger_kv`` or, without it,
in every KV namespace the Worker declares. A Worker has no usage records the harness could read, so
checks that need ``metrics`` are skipped alone (ledger checks compare with what the upstream billed).

What the Worker stored in a chat session is read from its own Durable Object storage when ``sessions_do``
names the namespace's binding: the object called ``sessions_name`` (default ``{tenant}:{session}``, the
platform's), its entry under ``sessions_key`` (default ``messages``, a list of messages) or, with
``sessions_prefix``, every entry under that prefix (one message each, in key order). The object's class is
re-exported as a subclass that reads its own storage when the runner asks (any storage backend). Without
``sessions_do``, sessions are read through the Worker's history route.

Catalogue scenarios name tenants and set environments, which the runner counts as ``tenant_config``.
``tenants=var:NAME`` hands the scenario's tenant documents (the platform's tenant config format, a JSON
list) to a Worker that reads its tenants from the var ``NAME``, so every such scenario applies as written.
``tenants=worker`` runs them with the Worker's own tenant configuration standing in for the scenario's
(sound when the Worker's tenants are the catalogue's). By default they are skipped.

``gateways`` lists the AI Gateway ids the Worker may use (with ``tenants=var:NAME``, the scenario's
tenants' gateways too); any other is Cloudflare's error 2001, which is how a mistyped slug shows up.
Without either, gateways are created on first use.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx

from aigw_harness.errors import ConfigError
from aigw_harness.scenarios.control import fake_sources
from aigw_harness.scenarios.sessions import (
    DEFAULT_SESSION_KEY,
    DEFAULT_SESSION_NAME,
    check_session_pattern,
    entries_document,
    session_name,
    stored_session,
)
from aigw_harness.scenarios.state import DEFAULT_LEDGER_KEY, check_pattern, ledger_key, parse_usage
from aigw_harness.scenarios.targets import (
    Capability,
    ScenarioSetup,
    StoredSession,
    SutConfig,
    SystemUnderTest,
    TargetOptions,
)
from aigw_harness.worker.bridge import WorkerBridge, find_node
from aigw_harness.worker.node_packages import find_node_packages
from aigw_harness.worker.wrangler import WorkerConfig, load_worker_config

__all__ = ["WorkerTarget"]


class _KvLedger:
    """What the Worker charged, read from its own KV namespaces under a key pattern (the platform's by
    default): the named namespace, or the first of the Worker's namespaces holding the key."""

    def __init__(self, worker: WorkerBridge, bindings: tuple[str, ...], pattern: str) -> None:
        self._worker = worker
        self._bindings = bindings
        self._pattern = pattern

    async def used(self, tenant_id: str, period: Literal["daily", "monthly"], at: datetime) -> int:
        key = ledger_key(self._pattern, tenant_id, period, at)
        for binding in self._bindings:
            value = await self._worker.kv_get(binding, key)
            if value is not None:
                return parse_usage(value)
        return 0


class _DoSessions:
    """What the Worker stored in its chat sessions, read from its own Durable Object storage."""

    def __init__(self, worker: WorkerBridge, selection: _SessionSelection) -> None:
        self._worker = worker
        self._selection = selection

    async def session(self, tenant_id: str, session_id: str) -> StoredSession:
        chosen = self._selection
        name = session_name(chosen.name, tenant_id, session_id)
        entries = await self._worker.do_storage(chosen.binding, name, key=chosen.key, prefix=chosen.prefix)
        where = f"key {chosen.key!r}" if chosen.key is not None else f"keys under {chosen.prefix!r}"
        source = f"Durable Object {chosen.binding} {name!r}, {where}"
        return stored_session(entries_document(entries, chosen.key), source)


@dataclass(frozen=True, slots=True)
class _SessionSelection:
    """Where the Worker keeps its sessions: a Durable Object namespace, the object's name pattern, and the
    key (or key prefix) of its messages."""

    binding: str
    class_name: str
    name: str
    key: str | None
    prefix: str | None


class _WorkerClock:
    """The Worker's ``Date``, moved by an offset from the real clock (see ``js/clock-shim.mjs``)."""

    def __init__(self, worker: WorkerBridge) -> None:
        self._worker = worker
        self._offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    async def set(self, instant: datetime) -> None:
        self._offset = (instant - datetime.now(UTC)).total_seconds()
        await self._worker.set_clock_offset(self._offset)

    async def advance(self, seconds: float) -> None:
        self._offset += seconds
        await self._worker.set_clock_offset(self._offset)


def _tenant_files(base: Path, pattern: str) -> dict[str, dict[str, Any]]:
    """The tenant documents a Worker bundles at build time, by tenant id."""
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted(base.glob(pattern)):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"tenants=files:{pattern}: {path} is not a JSON tenant document ({exc})"
            ) from None
        tenant_id = document.get("tenantId") if isinstance(document, dict) else None
        if not isinstance(tenant_id, str):
            raise ConfigError(f"tenants=files:{pattern}: {path} has no tenantId")
        documents[tenant_id] = document
    if not documents:
        raise ConfigError(f"tenants=files:{pattern}: no file matches under {base}")
    return documents


class WorkerTarget:
    option_keys = frozenset(
        {
            "config",
            "env",
            "ledger_kv",
            "ledger_key",
            "gateways",
            "tenants",
            "unset",
            "sessions_do",
            "sessions_name",
            "sessions_key",
            "sessions_prefix",
            "node_modules",
        }
    )
    """The ``--target-option`` keys this target reads; any other is a usage error."""
    name = "worker"

    def __init__(self, options: TargetOptions) -> None:
        path = options.extra.get("config")
        if not path:
            raise ConfigError(
                "the worker target needs --target-option config=path/to/wrangler.jsonc (the Worker to run)"
            )
        environment = options.extra.get("env") or None
        self.config: WorkerConfig = load_worker_config(path, environment)
        if self.config.ai_binding is None:
            raise ConfigError(
                f"{self.config.source}: the Worker declares no 'ai' binding"
                + (f" in env.{environment}" if environment else "")
                + "; the worker target answers env.AI with the fake, so there is nothing to test"
            )
        # Fail now, not in the first scenario, when Node.js or the npm packages are missing.
        find_node()
        self.node_modules = find_node_packages(
            (self.config.source.parent, self.config.main.parent), options.extra.get("node_modules") or None
        ).node_modules
        self.ledger_kv = options.extra.get("ledger_kv") or None
        if self.ledger_kv and self.ledger_kv not in self.config.kv_namespaces:
            known = ", ".join(self.config.kv_namespaces) or "none"
            raise ConfigError(
                f"ledger_kv={self.ledger_kv!r}: the Worker has no such KV namespace (it has {known})"
            )
        # Without ledger_kv, every namespace the Worker declares is searched for the ledger's keys.
        self.ledger_bindings = (self.ledger_kv,) if self.ledger_kv else tuple(self.config.kv_namespaces)
        self.ledger_pattern = check_pattern(options.extra.get("ledger_key") or DEFAULT_LEDGER_KEY)
        gateways = options.extra.get("gateways", "")
        self.gateways = tuple(g.strip() for g in gateways.split(",") if g.strip())
        capabilities = {
            Capability.UPSTREAM_CALLS,
            Capability.UPSTREAM_CONTROL,
            Capability.GATEWAY_LOGS,
            Capability.CLOCK,
        }
        if self.ledger_bindings:
            capabilities.add(Capability.LEDGER)
        tenants = options.extra.get("tenants", "worker")
        self.tenants_var: str | None = None
        self.tenant_files: dict[str, dict[str, Any]] | None = None
        self.tenants_module: Path | None = None
        self.tenants_export = ""
        if tenants.startswith("var:") and tenants[4:]:
            self.tenants_var = tenants[4:]
            capabilities.add(Capability.TENANT_CONFIG)
        elif tenants.startswith("files:") and tenants[6:]:
            self.tenant_files = _tenant_files(self.config.source.parent, tenants[6:])
        elif tenants.startswith("bundle:") and "#" in tenants:
            module, _, export = tenants[7:].partition("#")
            self.tenants_module = (self.config.source.parent / module).resolve()
            if not self.tenants_module.is_file() or not export.isidentifier():
                raise ConfigError(
                    f"tenants={tenants!r}: expected bundle:FILE#EXPORT, FILE the module (relative to "
                    f"{self.config.source.name}) whose EXPORT lists the tenant documents"
                )
            self.tenants_export = export
            capabilities.add(Capability.TENANT_CONFIG)
        elif tenants not in ("scenario", "worker"):
            raise ConfigError(
                f"tenants={tenants!r}: expected 'worker' (the Worker's own tenants, asked through /health), "
                "'files:GLOB' (the tenant files the Worker bundles, relative to its wrangler file), "
                "'bundle:FILE#EXPORT' (the scenario's tenants bundled in place of the module FILE, which "
                "exports them as EXPORT) or 'var:NAME' (the scenario's tenants in the Worker's var NAME)"
            )
        capabilities.add(Capability.SUT_CONFIG)
        # Sessions: the Worker's Durable Object storage when named, else its history route.
        self.sessions = self._session_selection(options)
        capabilities.add(Capability.SESSIONS)
        # Vars every scenario runs with: var:KEY=VALUE overrides, unset=KEY[,KEY] removes.
        self.var_overrides: dict[str, Any] = {
            key[4:]: value for key, value in options.extra.items() if key.startswith("var:") and key[4:]
        }
        for name in options.extra.get("unset", "").split(","):
            if name.strip():
                self.var_overrides[name.strip()] = None
        self.capabilities = frozenset(capabilities)
        env_note = f" (env {environment})" if environment else ""
        self.description = f"the Worker {self.config.name}{env_note} in workerd, env.AI on the embedded fake"

    def _session_selection(self, options: TargetOptions) -> _SessionSelection | None:
        extra = options.extra
        binding = extra.get("sessions_do") or None
        if binding is None:
            given = [k for k in ("sessions_name", "sessions_key", "sessions_prefix") if extra.get(k)]
            if given:
                raise ConfigError(
                    f"{', '.join(given)}: give sessions_do=BINDING too (the sessions' namespace)"
                )
            return None
        classes = self.config.durable_object_classes()
        if binding not in classes:
            known = ", ".join(sorted(classes)) or "none"
            raise ConfigError(
                f"sessions_do={binding!r}: the Worker has no such Durable Object binding (it has {known})"
            )
        if extra.get("sessions_key") and extra.get("sessions_prefix"):
            raise ConfigError(
                "sessions_key and sessions_prefix: give one (a key holding the list, or a prefix of one key "
                "per message)"
            )
        prefix = extra.get("sessions_prefix") or None
        key = None if prefix is not None else extra.get("sessions_key") or DEFAULT_SESSION_KEY
        name = check_session_pattern(extra.get("sessions_name") or DEFAULT_SESSION_NAME, "sessions_name")
        return _SessionSelection(binding, classes[binding], name, key, prefix)

    def _fake_config(self, setup: ScenarioSetup) -> Any:
        from aigw_fakes.config import (
            DEFAULT_ACCOUNT_ID,
            DEFAULT_API_TOKEN,
            AccountConfig,
            FakeConfig,
            FidelityOptions,
            GatewayConfig,
        )

        gateways = set(self.gateways)
        if self.tenants_var or self.tenants_module:
            gateways |= {str(t["aiGatewayId"]) for t in setup.tenants if t.get("aiGatewayId")}
        gateway_ids = sorted(gateways - set(setup.absent_gateways))
        account = AccountConfig(
            id=DEFAULT_ACCOUNT_ID,
            api_tokens=[DEFAULT_API_TOKEN],
            gateways=[GatewayConfig(id=g) for g in gateway_ids],
        )
        return FakeConfig(
            accounts=[account],
            seed=setup.seed,
            time_scale=setup.time_scale,
            fidelity=FidelityOptions(auto_create_gateways=not gateway_ids and not setup.absent_gateways),
        )

    def _vars(self, setup: ScenarioSetup) -> dict[str, Any]:
        """The scenario's arrangements on top of the Worker's vars (``None`` unsets)."""
        variables: dict[str, Any] = {**self.var_overrides, **setup.environment}
        own = {**self.config.vars, **self.var_overrides}
        for key, value in setup.environment_defaults.items():
            if own.get(key) is None and key not in variables:
                variables[key] = value  # a default never replaces the Worker's own value
        variables.update(dict.fromkeys(setup.unset))
        if self.tenants_var and setup.tenants:
            variables[self.tenants_var] = list(setup.tenants)
        return variables

    def _replaced_modules(self, setup: ScenarioSetup) -> dict[str, str]:
        """The tenants module rebuilt with the scenario's tenants (none when it names no tenants)."""
        if self.tenants_module is None or not setup.tenants:
            return {}
        documents = json.dumps(list(setup.tenants))
        if self.tenants_export == "default":
            return {str(self.tenants_module): f"export default {documents};\n"}
        return {str(self.tenants_module): f"export const {self.tenants_export} = {documents};\n"}

    def sut_config(self, setup: ScenarioSetup) -> SutConfig:
        """The Worker's effective configuration for this scenario (vars after the arrangements)."""
        merged = {**self.config.vars, **self._vars(setup)}
        variables = {k: v for k, v in merged.items() if v is not None and k != self.tenants_var}
        tenants: dict[str, dict[str, Any]] | None = self.tenant_files
        env_note = f" env {self.config.environment}" if self.config.environment else ""
        return SutConfig(vars=variables, tenants=tenants, source=f"{self.config.source}{env_note}")

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        from aigw_fakes.server import FakeGateway  # the fake loads only when a scenario runs

        async with (
            FakeGateway.running(config=self._fake_config(setup)) as fake,
            WorkerBridge.running(
                self.config,
                fake.base_url,
                extra_vars=self._vars(setup),
                replace_modules=self._replaced_modules(setup),
                inspect_classes=(self.sessions.class_name,) if self.sessions else (),
                node_modules=self.node_modules,
            ) as worker,
            httpx.AsyncClient(timeout=30.0, trust_env=False) as client,
        ):
            clock = _WorkerClock(worker)
            if setup.clock_start is not None:
                await clock.set(setup.clock_start)
            sources = await fake_sources(
                client, fake.base_url, fake.account_id, fake.api_token, self.capabilities
            )
            yield SystemUnderTest(
                chat_url=worker.url,
                capabilities=sources.capabilities,
                upstream=sources.upstream,
                logs=sources.logs,
                ledger=_KvLedger(worker, self.ledger_bindings, self.ledger_pattern)
                if self.ledger_bindings
                else None,
                sessions=_DoSessions(worker, self.sessions) if self.sessions else None,
                clock=clock,
                config=self.sut_config(setup),
                description=self.description,
            )
