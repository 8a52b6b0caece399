"""A ``module:factory`` target for mutation analysis: the embedded fake target with one of the reference
gateway's departures from the contract switched on, so that each switch is a mutant of the reference gateway.

    python -m harness run --target benchmarks.mutation.quirk_target:quirk_target \\
        --target-option quirk=truncation_is_success scenarios/taxonomy-stream-faults.yaml

``quirk`` names a ``PlatformQuirks`` field, or ``fallback_on_every_class`` (the platform falls back on any
exception, input and credential errors included). This module only configures the reference gateway; it
does not change how scenarios run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx

from harness.errors import ConfigError
from harness.gateway.clock import ManualClock
from harness.gateway.server import ReferenceGateway
from harness.gateway.settings import FallbackPolicy, GatewaySettings, PlatformQuirks
from harness.gateway.tenants import TenantConfig, load_tenants
from harness.gateway.upstream import ErrorClass
from harness.scenarios.control import fake_sources
from harness.scenarios.fake_target import ClockView, FakeTarget, GatewayView, gateway_settings
from harness.scenarios.targets import ScenarioSetup, SystemUnderTest, TargetOptions

__all__ = ["QUIRKS", "quirk_target"]

FALLBACK_ON_EVERY_CLASS = "fallback_on_every_class"
QUIRKS = (*PlatformQuirks.model_fields, FALLBACK_ON_EVERY_CLASS)


def _with_quirk(settings: GatewaySettings, quirk: str) -> GatewaySettings:
    if quirk == FALLBACK_ON_EVERY_CLASS:
        return settings.model_copy(update={"fallback": FallbackPolicy(on=frozenset(ErrorClass))})
    return settings.model_copy(update={"quirks": PlatformQuirks(**{quirk: True})})


class QuirkTarget(FakeTarget):
    def __init__(self, options: TargetOptions) -> None:
        super().__init__(options)
        quirk = options.extra.get("quirk", "")
        if quirk not in QUIRKS:
            raise ConfigError(f"quirk={quirk!r}: expected one of {', '.join(QUIRKS)}")
        self.quirk = quirk
        self.description = f"the reference gateway with {quirk} on, on the embedded fake AI Gateway"

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        from fakes.server import FakeGateway
        from harness.scenarios.fake_target import _fake_config

        clock = ManualClock(setup.clock_start or datetime.now(UTC))
        tenants = [TenantConfig.model_validate(doc) for doc in setup.tenants]
        if not tenants:
            tenants = load_tenants(self.options.tenants_dir)
        async with FakeGateway.running(config=_fake_config(setup, tenants)) as fake:
            settings = gateway_settings(setup, fake.base_url, fake.account_id, fake.api_token, clock, tenants)
            async with (
                ReferenceGateway.running(_with_quirk(settings, self.quirk)) as gateway,
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
                    clock=ClockView(clock),
                    description=self.description,
                )


def quirk_target(options: TargetOptions) -> QuirkTarget:
    return QuirkTarget(options)
