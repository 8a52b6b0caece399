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
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from aigw_harness.catalogue import tenants_dir as catalogue_tenants_dir
from aigw_harness.errors import ConfigError

__all__ = [
    "CAPABILITY_WORDS",
    "REGISTRY",
    "Capability",
    "ClockControl",
    "GatewayLogRecord",
    "GatewayLogs",
    "LedgerView",
    "MetricsSource",
    "ScenarioSetup",
    "SessionView",
    "StoredSession",
    "SutConfig",
    "SystemUnderTest",
    "Target",
    "TargetOptions",
    "UpstreamCall",
    "UpstreamCalls",
    "UpstreamControl",
    "UsageRecord",
    "check_option_keys",
    "load_target",
]


class Capability(StrEnum):
    """A fact a target can give or an arrangement it can make. Steps, checks and measurements declare the
    ones they need (``aigw_harness.scenarios.kinds``); what can run on a target is computed from them."""

    UPSTREAM_CALLS = "upstream_calls"
    """What the upstream was asked and billed can be read (the fake's request store, or real calls seen
    through AI Gateway's logs): models, gateway, metadata, the stream flag, tokens, status, cut-offs."""
    UPSTREAM_CONTROL = "upstream_control"
    """The upstream's behaviour can be scripted (faults, token counts, delays): the upstream is our fake."""
    GATEWAY_LOGS = "gateway_logs"
    """Cloudflare's Logs API (fake or live) can be read."""
    METRICS = "metrics"
    """The SUT's own usage records can be read (the reference gateway's metrics hook)."""
    LEDGER = "ledger"
    """What the SUT charged to its budget ledger can be read (the reference ledger, a Worker's KV)."""
    CLOCK = "clock"
    """The SUT's clock can be moved (UTC day and month boundaries)."""
    TENANT_CONFIG = "tenant_config"
    """The scenario's tenants and environment can be applied to the SUT."""
    SUT_CONFIG = "sut_config"
    """The SUT's effective configuration can be read (vars, tenants), so that assumptions can be tested."""
    SESSIONS = "sessions"
    """What the SUT stored in a chat session can be read: from its storage (a Worker's Durable Object, a
    state probe, the reference gateway's store) or, failing that, from its history route."""

    def describe(self) -> str:
        """What the capability is, in a few words, for skip reasons."""
        return CAPABILITY_WORDS[self]


CAPABILITY_WORDS: dict[Capability, str] = {
    Capability.UPSTREAM_CALLS: "reading what the upstream was asked and billed",
    Capability.UPSTREAM_CONTROL: "scripting the upstream's behaviour (its upstream is not our fake)",
    Capability.GATEWAY_LOGS: "reading AI Gateway's logs",
    Capability.METRICS: "reading the system's own usage records",
    Capability.LEDGER: "reading what the system charged to its budget ledger",
    Capability.CLOCK: "moving the system's clock",
    Capability.TENANT_CONFIG: "applying the scenario's tenants and environment",
    Capability.SUT_CONFIG: "reading the system's effective configuration",
    Capability.SESSIONS: "reading the chat sessions the system stored",
}
"""Each capability in words (skip reasons say what is missing, not only its name)."""


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
    """Reference-gateway settings the scenario asks for (``aigw_harness.scenarios.model.GatewayOptions``
    fields, durations in nominal seconds), for targets that run the reference gateway."""
    unset: tuple[str, ...] = ()
    """Environment variables the scenario assumes are not set; a target that can unsets them."""
    environment_defaults: Mapping[str, str] = field(default_factory=dict)
    """Environment variables to set only where the SUT does not set them itself (never over its own)."""

    def effective_environment(self, own: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The scenario's environment over a SUT's ``own`` variables, with the defaults where neither sets
        one and the assumed-unset variables as ``None``."""
        merged: dict[str, Any] = dict(own or {})
        for key, value in self.environment_defaults.items():
            if merged.get(key) is None:
                merged[key] = value
        merged.update(self.environment)
        merged.update(dict.fromkeys(self.unset))
        return merged


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
    request: Mapping[str, Any] | None = None
    """The request body as sent, when it was JSON (a binding call's ``{inputs, options}``)."""
    request_headers: Mapping[str, str] = field(default_factory=dict)
    """The request's headers as the upstream stored them (secrets redacted)."""


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


class UpstreamCalls(Protocol):
    """What the upstream was asked and billed, without scripting it (a live target reads its logs)."""

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


@dataclass(frozen=True, slots=True)
class StoredSession:
    """The messages one session holds, as read from the SUT."""

    messages: Sequence[Mapping[str, Any]]
    """``{role, content, ...}`` in the order given by ``order``."""
    source: str
    """Where they were read (``Durable Object SESSIONS "acct:1111...", key "messages"``), for reports."""
    order: Literal["oldest_first", "unknown"] = "oldest_first"
    """``unknown`` when the source does not say which end is the newest (a history route without
    timestamps): checks then accept either order."""


class SessionView(Protocol):
    async def session(self, tenant_id: str, session_id: str) -> StoredSession:
        """What the tenant's session holds; no messages when it was never written."""
        ...


class ClockControl(Protocol):
    def now(self) -> datetime: ...
    async def set(self, instant: datetime) -> None: ...
    async def advance(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class SutConfig:
    """The SUT's effective configuration, as its target knows it once the scenario's arrangements are made:
    the runner tests the scenario's assumptions against it."""

    vars: Mapping[str, Any]
    """Environment variables (wrangler vars) as the SUT sees them."""
    tenants: Mapping[str, Mapping[str, Any]] | None = None
    """The tenants it serves, by id, in the platform's tenant format; ``None`` when the target cannot read
    them (the runner then asks the SUT: ``GET /health`` with ``x-tenant-id``)."""
    source: str = ""
    """Where the configuration was read (``wrangler.jsonc env dev``), for reasons."""
    reference_gateway: bool = False
    """The SUT is the reference gateway, so the scenario's ``gateway`` settings apply to it."""
    scaled_timers: bool = False
    """The SUT's own timeouts follow the run's time scale (the reference gateway's do; a Worker's do not)."""


@dataclass(slots=True)
class SystemUnderTest:
    """What a running target hands the runner for one scenario."""

    chat_url: str
    """Base URL serving ``/chat`` and ``/health``."""
    capabilities: frozenset[Capability]
    upstream: UpstreamControl | None = None
    """Scripts the upstream (``UPSTREAM_CONTROL``); also reads its requests unless ``calls`` is given."""
    calls: UpstreamCalls | None = None
    """Reads the upstream's requests (``UPSTREAM_CALLS``) where it cannot be scripted."""
    logs: GatewayLogs | None = None
    metrics: MetricsSource | None = None
    ledger: LedgerView | None = None
    clock: ClockControl | None = None
    config: SutConfig | None = None
    """The SUT's effective configuration (``SUT_CONFIG``), when the target can report it."""
    sessions: SessionView | None = None
    """Reads the SUT's stored sessions (``SESSIONS``); ``None``: the runner reads its history route."""
    description: str = ""
    """One line for the report: what was tested (``reference gateway 0.1 on the embedded fake``)."""

    def call_source(self) -> UpstreamCalls | None:
        """Where the upstream's requests are read: ``calls``, else the scripted upstream."""
        return self.calls if self.calls is not None else self.upstream


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
    "fake": "aigw_harness.scenarios.fake_target:FakeTarget",
    "url": "aigw_harness.scenarios.url_target:UrlTarget",
    "live": "aigw_harness.live.target:LiveTarget",
    "replay": "aigw_harness.proxy.replay_target:ReplayTarget",
    "worker": "aigw_harness.worker.target:WorkerTarget",
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
    check_option_keys(name, getattr(factory, "option_keys", None), options.extra)
    return cast(Callable[[TargetOptions], Target], factory)(options)


def check_option_keys(name: str, accepted: frozenset[str] | None, given: Mapping[str, str]) -> None:
    """A ``--target-option`` key the target does not read is a usage error (a typo would go unnoticed).

    Each target declares the keys it reads as ``option_keys`` beside its code; a target from elsewhere that
    declares none is given every key.
    """
    if accepted is None:
        return
    unknown = sorted(set(given) - accepted)
    if unknown:
        known = ", ".join(sorted(accepted)) or "none"
        raise ConfigError(
            f"target {name!r} has no option {', '.join(unknown)} (--target-option); it reads: {known}"
        )
