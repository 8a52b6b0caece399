"""Targets: how the runner starts or reaches a system under test (SUT), and what that system lets it see.

A ``Target`` turns a ``ScenarioSetup`` into a running ``SystemUnderTest`` for one scenario, inside an async
context manager that stops everything it started. The SUT always serves the platform's ``/chat`` contract at
``chat_url``; everything else (scripting the upstream, reading AI Gateway's logs, the gateway's usage
records, the budget ledger, moving the clock) is optional and announced as a ``Capability``. A scenario that
needs a capability the target lacks is skipped with the reason.

Targets are registered by name with the dotted path of a factory, so that heavy ones (mitmproxy, Node.js,
live credentials) load only when chosen. Other parts add targets by implementing ``Target`` and adding a
line to ``REGISTRY``; a plugin can also pass ``module:factory`` as the target name.

The sources hand the runner plain records (``UpstreamCall``, ``GatewayLogRecord``, ``UsageRecord``) so that
the runner and the report never depend on how a particular fake, gateway or account stores them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from harness.catalogue import tenants_dir as catalogue_tenants_dir
from harness.errors import ConfigError

__all__ = [
    "REGISTRY",
    "Capability",
    "ClockControl",
    "GatewayLogRecord",
    "GatewayLogs",
    "LedgerView",
    "MetricsSource",
    "ScenarioSetup",
    "SystemUnderTest",
    "Target",
    "TargetOptions",
    "UpstreamCall",
    "UpstreamControl",
    "UsageRecord",
    "load_target",
]


class Capability(StrEnum):
    UPSTREAM_CONTROL = "upstream_control"
    """The upstream is our fake and its behaviour can be scripted."""
    GATEWAY_LOGS = "gateway_logs"
    """Cloudflare's Logs API (fake or live) can be read."""
    METRICS = "metrics"
    """The reference gateway's usage records can be read."""
    LEDGER = "ledger"
    """The budget ledger can be read."""
    CLOCK = "clock"
    """The SUT's clock can be moved (UTC day and month boundaries)."""
    TENANT_CONFIG = "tenant_config"
    """The scenario's tenants, environment and budget store apply."""


@dataclass(frozen=True, slots=True)
class ScenarioSetup:
    """What a scenario asks of the system under test, handed to ``Target.session``."""

    scenario_id: str
    tenants: list[dict[str, Any]]
    """Tenant documents (the gateway's tenant config format), resolved from names and inline entries."""
    environment: Mapping[str, str]
    budget_store: Literal["atomic", "kv"]
    clock_start: datetime | None
    """Where the SUT's clock starts; ``None`` leaves it at the real time."""
    upstream: Mapping[str, Any] | None
    """The upstream's behaviour document at the start; ``None`` keeps the fake's default behaviour."""
    seed: int = 0
    time_scale: float = 1.0
    """Delays in behaviour documents and pauses are multiplied by this (0.05 runs 20 times faster)."""
    absent_gateways: tuple[str, ...] = ()
    """Gateway ids the upstream account must not have (a mistyped or deleted slug), where it is our fake."""
    gateway: Mapping[str, Any] = field(default_factory=dict)
    """Reference-gateway settings the scenario asks for (``harness.scenarios.model.GatewayOptions`` fields,
    durations in nominal seconds), for targets that run the reference gateway."""


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One request the upstream (the fake AI Gateway) received."""

    id: str
    model: str | None
    status: int
    log_id: str | None = None
    gateway_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    stream: bool | None = None
    outcome: str | None = None
    """Which scripted outcome answered it (``default``, ``rule 0 step 1 (call 2)``), when the fake says."""
    created_at: str | None = None
    duration_ms: float | None = None
    ttfb_ms: float | None = None
    complete: bool = True
    """The response was written to the end."""
    cut: bool = False
    """The response was cut off (a scripted fault or the client going away)."""


@dataclass(frozen=True, slots=True)
class GatewayLogRecord:
    """One AI Gateway log record, with the Logs API's field names."""

    id: str
    gateway_id: str | None
    model: str | None
    provider: str | None
    status_code: int | None
    success: bool | None
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    duration_ms: float | None
    metadata: Mapping[str, Any]
    cached: bool | None = None
    step: int | None = None
    created_at: str | None = None


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One usage record from the gateway's metrics hook (one per attempt: failed candidates included)."""

    tenant_id: str
    model_id: str | None
    status: str
    """``success`` or ``error``."""
    tokens_in: int | None
    tokens_out: int | None
    total_tokens: int | None
    latency_ms: float | None
    trace_id: str | None = None
    cost: float | None = None
    log_id: str | None = None
    stream: bool | None = None
    started_at: str | None = None
    """ISO 8601 UTC on the SUT's clock: which budget day and month the record belongs to."""
    charged: int | None = None
    """Tokens the gateway charged to the budget for this request (partial streams included)."""


class UpstreamControl(Protocol):
    async def load_behaviour(self, document: Mapping[str, Any]) -> None: ...
    async def reset(self) -> None: ...
    async def requests(self) -> list[UpstreamCall]: ...


class GatewayLogs(Protocol):
    async def list(self, gateway_id: str | None = None) -> list[GatewayLogRecord]:
        """Every log record of the gateway (all gateways when ``None``), oldest first."""
        ...

    async def get(self, gateway_id: str, log_id: str) -> GatewayLogRecord | None: ...


class MetricsSource(Protocol):
    async def records(self) -> list[UsageRecord]: ...


class LedgerView(Protocol):
    async def used(self, tenant_id: str, period: Literal["daily", "monthly"], at: datetime) -> int:
        """Tokens charged to the tenant for the UTC day or month containing ``at``."""
        ...


class ClockControl(Protocol):
    def now(self) -> datetime: ...
    async def set(self, instant: datetime) -> None: ...
    async def advance(self, seconds: float) -> None: ...


@dataclass(slots=True)
class SystemUnderTest:
    """What a running target hands the runner for one scenario."""

    chat_url: str
    """Base URL serving ``/chat`` and ``/health``."""
    capabilities: frozenset[Capability]
    upstream: UpstreamControl | None = None
    logs: GatewayLogs | None = None
    metrics: MetricsSource | None = None
    ledger: LedgerView | None = None
    clock: ClockControl | None = None
    description: str = ""
    """One line for the report: what was tested (``reference gateway 0.1 on the embedded fake``)."""


@dataclass(frozen=True, slots=True)
class TargetOptions:
    """Command-line options a target may use; each target reads what it needs and ignores the rest."""

    sut_url: str | None = None
    tenants_dir: Path = field(default_factory=catalogue_tenants_dir)
    seed: int = 0
    time_scale: float = 1.0
    extra: Mapping[str, str] = field(default_factory=dict)


class Target(Protocol):
    name: str
    capabilities: frozenset[Capability]

    def session(self, setup: ScenarioSetup) -> AbstractAsyncContextManager[SystemUnderTest]:
        """Start or reach the SUT for one scenario; leaving the context stops all it started."""
        ...


REGISTRY: dict[str, str] = {
    "fake": "harness.scenarios.fake_target:FakeTarget",
    "url": "harness.scenarios.url_target:UrlTarget",
    "live": "harness.live.target:LiveTarget",
    "replay": "harness.proxy.replay_target:ReplayTarget",
    "worker": "harness.worker.target:WorkerTarget",
}
"""Target name → ``module:factory``; the factory takes ``TargetOptions`` and returns a ``Target``."""


def load_target(name: str, options: TargetOptions) -> Target:
    """The target called ``name`` (a registry name or ``module:factory``), built with ``options``."""
    path = REGISTRY.get(name, name)
    module_name, colon, attr = path.partition(":")
    if not colon:
        raise ConfigError(
            f"unknown target {name!r}: choose one of {', '.join(REGISTRY)} or give module:factory"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"target {name!r} is not available here: cannot import {module_name} ({exc})"
        ) from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise ConfigError(f"target {name!r}: {module_name} has no {attr}")
    return cast(Callable[[TargetOptions], Target], factory)(options)
