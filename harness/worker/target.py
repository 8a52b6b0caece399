"""The ``worker`` target: the user's own Worker in workerd, with ``env.AI`` answered by the fake.

    aigw run --target worker --target-option config=path/to/wrangler.jsonc [--target-option env=dev] \\
        [--target-option ledger_kv=RATE_LIMITER] [--target-option gateways=gw-a,gw-b] scenarios/...

Each scenario gets a fresh fake and a fresh Worker (fresh KV, Durable Objects and D1), so scenarios cannot
leak state into each other. The scenario's environment overrides the Worker's vars (``MODEL_ID`` and the
like). The upstream is our fake, so it can be scripted and its Logs API read; the Worker's clock cannot be
moved and its tenants are its own, so scenarios needing ``clock`` or ``tenant_config`` are skipped. With
``ledger_kv`` naming the KV namespace where the Worker keeps token usage under the platform's keys
(``{tenant}:token-usage:daily:{YYYY-MM-DD}``), budget scenarios can read it.

Catalogue scenarios name tenants and set environments, which the runner counts as ``tenant_config``. The
Worker keeps its own tenants, so by default those scenarios are skipped; ``tenants=worker`` runs them
anyway, with the Worker's own tenant configuration standing in for the scenario's (sound when the Worker's
tenants are the catalogue's, as for the platform the catalogue describes; the environment still applies).

``gateways`` lists the AI Gateway ids the Worker may use; any other is Cloudflare's error 2001, which is
how a mistyped slug shows up. Without it, gateways are created on first use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

import httpx

from harness.errors import ConfigError
from harness.gateway.ledger import budget_keys
from harness.scenarios.control import ControlApiUpstream, LogsApiReader
from harness.scenarios.targets import Capability, ScenarioSetup, SystemUnderTest, TargetOptions
from harness.worker.bridge import WorkerBridge, find_node, node_modules_dir
from harness.worker.wrangler import WorkerConfig, load_worker_config

__all__ = ["WorkerTarget"]


class _KvLedger:
    """Token usage the Worker keeps in a KV namespace under the platform's budget keys."""

    def __init__(self, worker: WorkerBridge, binding: str) -> None:
        self._worker = worker
        self._binding = binding

    async def used(self, tenant_id: str, period: Literal["daily", "monthly"], at: datetime) -> int:
        daily, monthly = budget_keys(tenant_id, at.timestamp())
        value = await self._worker.kv_get(self._binding, daily if period == "daily" else monthly)
        try:
            return int(float(value)) if value else 0
        except ValueError:
            return 0


class WorkerTarget:
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
        node_modules_dir(self.config.main.parent)
        self.ledger_kv = options.extra.get("ledger_kv") or None
        if self.ledger_kv and self.ledger_kv not in self.config.kv_namespaces:
            known = ", ".join(self.config.kv_namespaces) or "none"
            raise ConfigError(
                f"ledger_kv={self.ledger_kv!r}: the Worker has no such KV namespace (it has {known})"
            )
        gateways = options.extra.get("gateways", "")
        self.gateways = tuple(g.strip() for g in gateways.split(",") if g.strip())
        capabilities = {Capability.UPSTREAM_CONTROL, Capability.GATEWAY_LOGS}
        if self.ledger_kv:
            capabilities.add(Capability.LEDGER)
        tenants = options.extra.get("tenants", "scenario")
        if tenants not in ("scenario", "worker"):
            raise ConfigError(f"tenants={tenants!r}: expected 'scenario' (skip tenant scenarios) or 'worker'")
        if tenants == "worker":
            capabilities.add(Capability.TENANT_CONFIG)
        self.capabilities = frozenset(capabilities)
        env_note = f" (env {environment})" if environment else ""
        self.description = f"the Worker {self.config.name}{env_note} in workerd, env.AI on the embedded fake"

    def _fake_config(self, setup: ScenarioSetup) -> Any:
        from fakes.config import (
            DEFAULT_ACCOUNT_ID,
            DEFAULT_API_TOKEN,
            AccountConfig,
            FakeConfig,
            FidelityOptions,
            GatewayConfig,
        )

        gateway_ids = sorted(set(self.gateways) - set(setup.absent_gateways))
        account = AccountConfig(
            id=DEFAULT_ACCOUNT_ID,
            api_tokens=[DEFAULT_API_TOKEN],
            gateways=[GatewayConfig(id=g) for g in gateway_ids],
        )
        return FakeConfig(
            accounts=[account],
            seed=setup.seed,
            time_scale=setup.time_scale,
            fidelity=FidelityOptions(auto_create_gateways=not self.gateways),
        )

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        from fakes.server import FakeGateway  # the fake loads only when a scenario runs

        async with (
            FakeGateway.running(config=self._fake_config(setup)) as fake,
            WorkerBridge.running(self.config, fake.base_url, extra_vars=dict(setup.environment)) as worker,
            httpx.AsyncClient(timeout=30.0, trust_env=False) as client,
        ):
            logs = LogsApiReader(client, fake.base_url, fake.account_id, fake.api_token)
            capabilities = set(self.capabilities)
            if not await logs.served():
                capabilities.discard(Capability.GATEWAY_LOGS)
            yield SystemUnderTest(
                chat_url=worker.url,
                capabilities=frozenset(capabilities),
                upstream=ControlApiUpstream(client, fake.base_url),
                logs=logs if Capability.GATEWAY_LOGS in capabilities else None,
                ledger=_KvLedger(worker, self.ledger_kv) if self.ledger_kv else None,
                description=self.description,
            )
