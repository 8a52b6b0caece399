"""The ``fake`` target (the default): the fake AI Gateway and the reference gateway, in-process on loopback.

Each scenario gets a fresh pair: a ``FakeGateway`` and a ``ReferenceGateway`` configured with the
scenario's tenants, environment, budget store, gateway options and a manual clock. The runner sees every
capability: the upstream is scripted through the fake's ``/__aigw/`` control API, logs come from the fake's
Logs API, usage records and the ledger from the reference gateway, and the clock is the gateway's.

Time compression: the scenario's gateway timeouts are multiplied by the time scale here; the fake scales the
delays of behaviour documents itself (its ``time_scale`` setting).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from aigw_harness.gateway.clock import ManualClock
from aigw_harness.gateway.ledger import budget_keys
from aigw_harness.gateway.metrics import UsageRecord as GatewayUsageRecord
from aigw_harness.gateway.server import ReferenceGateway
from aigw_harness.gateway.settings import GatewaySettings, KVOptions, Timeouts
from aigw_harness.gateway.tenants import TenantConfig, load_tenants
from aigw_harness.scenarios.control import fake_sources
from aigw_harness.scenarios.targets import (
    Capability,
    ScenarioSetup,
    StoredSession,
    SutConfig,
    SystemUnderTest,
    TargetOptions,
    UsageRecord,
)

__all__ = ["ClockView", "FakeTarget", "GatewayView", "ShiftedClock", "usage_record"]


class ShiftedClock:
    """The fake's clock in a scenario: real time moved to the scenario's instant, running on as real time
    does (rate windows, log delays and spend days keep flowing), and moved again by the scenario's clock
    steps. So the fake judges what depends on the date (which models exist, which day a spend counts in)
    by the scenario's time, as Cloudflare would have then."""

    def __init__(self, start: datetime | None) -> None:
        self._offset = start.timestamp() - time.time() if start is not None else 0.0

    def time(self) -> float:
        return time.time() + self._offset

    def shift(self, seconds: float) -> None:
        self._offset += seconds


class ClockView:
    """``ClockControl`` over the reference gateway's manual clock (and the fake's, moved along with it)."""

    def __init__(self, clock: ManualClock, upstream: ShiftedClock | None = None) -> None:
        self._clock = clock
        self._upstream = upstream

    def now(self) -> datetime:
        return self._clock.utcnow()

    async def set(self, instant: datetime) -> None:
        if self._upstream is not None:
            self._upstream.shift((instant - self._clock.utcnow()).total_seconds())
        self._clock.set(instant)

    async def advance(self, seconds: float) -> None:
        if self._upstream is not None:
            self._upstream.shift(seconds)
        self._clock.advance(seconds)


class GatewayView:
    """The reference gateway's metrics, ledger and sessions, as the runner reads them (``MetricsSource``,
    ``LedgerView`` and ``SessionView``); every target that runs the reference gateway in-process uses it."""

    def __init__(self, gateway: ReferenceGateway) -> None:
        self._gateway = gateway

    async def records(self) -> list[UsageRecord]:
        return [usage_record(r) for r in self._gateway.metrics.records]

    async def used(self, tenant_id: str, period: Literal["daily", "monthly"], at: datetime) -> int:
        daily, monthly = budget_keys(tenant_id, at.timestamp())
        return self._gateway.ledger.usage().get(daily if period == "daily" else monthly, 0)

    async def session(self, tenant_id: str, session_id: str) -> StoredSession:
        store = self._gateway.app.sessions
        key = store.key(tenant_id, session_id)
        messages = [m.as_json() for m in store.stored(key)]
        return StoredSession(messages=messages, source=f"the reference gateway's session store {key!r}")


def usage_record(record: GatewayUsageRecord) -> UsageRecord:
    return UsageRecord(
        tenant_id=record.tenant_id,
        model_id=record.model_served or (record.models_tried[-1] if record.models_tried else None),
        status=record.status,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
        total_tokens=record.tokens_total,
        latency_ms=record.latency_ms,
        trace_id=record.trace_id,
        cost=record.cost_usd,
        log_id=record.log_ids[-1] if record.log_ids else None,
        stream=record.stream,
        started_at=record.started_at,
        charged=record.ledger_charged,
    )


def _scaled(value: Any, scale: float) -> float | None:
    return float(value) * scale if isinstance(value, (int, float)) else None


def gateway_settings(
    setup: ScenarioSetup,
    upstream: str,
    account_id: str,
    api_token: str,
    clock: ManualClock,
    tenants: list[TenantConfig],
) -> GatewaySettings:
    """The reference gateway's settings for one scenario on the embedded fake.

    Timeouts the scenario sets are scaled like every delay; the gateway's own defaults (30 s) are not, so
    that a loaded machine does not turn into spurious timeouts."""
    scale = setup.time_scale
    g: Mapping[str, Any] = setup.gateway
    timeouts = Timeouts()
    timeouts = Timeouts(
        first_byte=_scaled(g.get("first_byte_timeout_s"), scale) or timeouts.first_byte,
        between_events=_scaled(g.get("between_events_timeout_s"), scale) or timeouts.between_events,
        total=_scaled(g.get("total_timeout_s"), scale) or timeouts.total,
    )
    # KV timings are measured on the gateway's clock, which only moves with the scenario's clock steps:
    # they are not scaled.
    kv = KVOptions(
        propagation_delay=float(g.get("kv_propagation_delay_s", 0.0)),
        write_interval=float(g.get("kv_write_interval_s", 0.0)),
        settle_from_snapshot=bool(g.get("kv_settle_from_snapshot", False)),
    )
    return GatewaySettings.for_upstream(
        upstream,
        account_id=account_id,
        api_token=api_token,
        tenants=tenants,
        env={k: v for k, v in setup.effective_environment().items() if v is not None},
        budget_store=setup.budget_store,
        kv=kv,
        output_reservation=int(g.get("output_reservation", 0)),
        timeouts=timeouts,
        trace_ids=g.get("trace_ids", "platform"),
        clock=clock,
    )


class FakeTarget:
    option_keys: frozenset[str] = frozenset()
    """The ``--target-option`` keys this target reads; any other is a usage error."""
    name = "fake"
    capabilities = frozenset(Capability)
    description = "the reference gateway on the embedded fake AI Gateway"

    def __init__(self, options: TargetOptions) -> None:
        self.options = options

    def adjust(self, settings: GatewaySettings) -> GatewaySettings:
        """The reference gateway's settings for a scenario, as a variant of this target wants them (the
        mutation analysis switches one of the platform's departures on); unchanged here."""
        return settings

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        from aigw_fakes.server import FakeGateway  # the fake loads only when this target is chosen

        clock = ManualClock(setup.clock_start or datetime.now(UTC))
        upstream_clock = ShiftedClock(setup.clock_start)
        tenants = [TenantConfig.model_validate(doc) for doc in setup.tenants]
        if not tenants:
            tenants = load_tenants(self.options.tenants_dir)
        async with FakeGateway.running(config=_fake_config(setup, tenants, upstream_clock)) as fake:
            settings = self.adjust(
                gateway_settings(setup, fake.base_url, fake.account_id, fake.api_token, clock, tenants)
            )
            async with (
                ReferenceGateway.running(settings) as gateway,
                httpx.AsyncClient(timeout=30.0, trust_env=False) as client,
            ):
                sources = await fake_sources(
                    client, fake.base_url, fake.account_id, fake.api_token, self.capabilities
                )
                yield SystemUnderTest(
                    chat_url=gateway.base_url,
                    capabilities=sources.capabilities,
                    upstream=sources.upstream,
                    logs=sources.logs,
                    metrics=GatewayView(gateway),
                    ledger=GatewayView(gateway),
                    sessions=GatewayView(gateway),
                    clock=ClockView(clock, upstream_clock),
                    config=SutConfig(
                        vars={k: v for k, v in setup.effective_environment().items() if v is not None},
                        source="the scenario (applied)",
                        reference_gateway=True,
                        scaled_timers=True,
                    ),
                    description=self.description,
                )


def _fake_config(setup: ScenarioSetup, tenants: list[TenantConfig], clock: ShiftedClock) -> Any:
    """The fake's configuration for this scenario: seeded, time-compressed, and with the gateways the
    tenants name (an unknown gateway is Cloudflare's error 2001, as a mistyped slug would be)."""
    from aigw_fakes.config import (
        DEFAULT_ACCOUNT_ID,
        DEFAULT_API_TOKEN,
        AccountConfig,
        FakeConfig,
        GatewayConfig,
    )

    gateway_ids = sorted({t.ai_gateway_id for t in tenants} - set(setup.absent_gateways))
    account = AccountConfig(
        id=DEFAULT_ACCOUNT_ID,
        api_tokens=[DEFAULT_API_TOKEN],
        gateways=[GatewayConfig(id=g) for g in gateway_ids],
    )
    return FakeConfig(accounts=[account], seed=setup.seed, time_scale=setup.time_scale, clock=clock)
