"""The ``replay`` target: the reference gateway in-process against a replay server of recorded cassettes.

Options (``--target-option KEY=VALUE``): ``cassettes=DIR`` (required), ``time_scale=X`` (default: the run's
time scale; 0 serves without delays), ``gateway_id=ID`` (default: the one gateway the cassettes were
recorded against, when there is exactly one), and faults applied on top of the recording:
``fault_status=S``, ``fault_cut_after=N``, ``fault_drop=I,J``, ``fault_corrupt=I,J``,
``fault_delay_events=I:MS,J:MS``.

Requests carry stand-in credentials under the names the recording redacted, so that they match the
recorded (redacted) paths. The upstream cannot be scripted and there are no gateway logs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from aigw_harness.errors import ConfigError
from aigw_harness.gateway.clock import ManualClock
from aigw_harness.gateway.server import ReferenceGateway
from aigw_harness.gateway.tenants import TenantConfig, load_tenants
from aigw_harness.proxy.cassette import Cassette
from aigw_harness.proxy.fault_plan import FaultPlan, parse_indices
from aigw_harness.proxy.redaction import Redactor, marker
from aigw_harness.proxy.replay import CassetteLibrary, running_replay
from aigw_harness.scenarios.fake_target import ClockView, GatewayView, gateway_settings
from aigw_harness.scenarios.targets import Capability, ScenarioSetup, SystemUnderTest, TargetOptions

__all__ = ["ReplayTarget", "recorded_gateways"]

ACCOUNT_NAME = "CLOUDFLARE_ACCOUNT_ID"
STAND_IN_ACCOUNT = "aigw-replay-account"
STAND_IN_TOKEN = "aigw-replay-api-token"


def recorded_gateways(cassettes: list[Cassette]) -> set[str]:
    pattern = re.compile(rf"^/v1/{re.escape(marker(ACCOUNT_NAME))}/([^/]+)/")
    return {m.group(1) for c in cassettes if (m := pattern.match(c.request.path))}


def fault_plan(extra: Mapping[str, str]) -> FaultPlan:
    delays: dict[int, float] = {}
    for item in filter(None, (p.strip() for p in extra.get("fault_delay_events", "").split(","))):
        index, _, ms = item.partition(":")
        try:
            delays[int(index)] = float(ms)
        except ValueError:
            raise ConfigError(f"fault_delay_events: {item!r} is not INDEX:MS") from None
    try:
        return FaultPlan(
            status=int(extra["fault_status"]) if "fault_status" in extra else None,
            cut_after=int(extra["fault_cut_after"]) if "fault_cut_after" in extra else None,
            drop=parse_indices(extra.get("fault_drop", ""), "fault_drop"),
            corrupt=parse_indices(extra.get("fault_corrupt", ""), "fault_corrupt"),
            delay_events=delays,
        )
    except ValueError as exc:
        raise ConfigError(f"replay target options: {exc}") from None


class ReplayTarget:
    option_keys = frozenset(
        {
            "cassettes",
            "time_scale",
            "gateway_id",
            "fault_delay_events",
            "fault_status",
            "fault_cut_after",
            "fault_drop",
            "fault_corrupt",
        }
    )
    """The ``--target-option`` keys this target reads; any other is a usage error."""
    name = "replay"
    capabilities = frozenset(
        {
            Capability.METRICS,
            Capability.LEDGER,
            Capability.CLOCK,
            Capability.TENANT_CONFIG,
            Capability.SESSIONS,
        }
    )
    description = "the reference gateway against recorded cassettes"

    def __init__(self, options: TargetOptions) -> None:
        extra = options.extra
        if "cassettes" not in extra:
            raise ConfigError(
                "the replay target needs --target-option cassettes=DIR (recorded with aigw record)"
            )
        self.options = options
        self.directory = Path(extra["cassettes"])
        self.redactor = Redactor({ACCOUNT_NAME: STAND_IN_ACCOUNT, "CLOUDFLARE_API_TOKEN": STAND_IN_TOKEN})
        self.cassettes = CassetteLibrary.from_directory(self.directory, self.redactor).cassettes
        try:
            self.time_scale = float(extra.get("time_scale", options.time_scale))
        except ValueError:
            raise ConfigError(f"time_scale: {extra['time_scale']!r} is not a number") from None
        self.faults = fault_plan(extra)
        gateways = recorded_gateways(list(self.cassettes))
        self.gateway_id = extra.get("gateway_id") or (gateways.pop() if len(gateways) == 1 else None)

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        clock = ManualClock(setup.clock_start or datetime.now(UTC))
        tenants = [TenantConfig.model_validate(doc) for doc in setup.tenants] or load_tenants(
            self.options.tenants_dir
        )
        if self.gateway_id is not None:
            tenants = [t.model_copy(update={"ai_gateway_id": self.gateway_id}) for t in tenants]
        library = CassetteLibrary(self.cassettes, self.redactor)  # a fresh play order per scenario
        async with running_replay(library, time_scale=self.time_scale, faults=self.faults) as url:
            settings = gateway_settings(setup, url, STAND_IN_ACCOUNT, STAND_IN_TOKEN, clock, tenants)
            async with ReferenceGateway.running(settings) as gateway:
                view = GatewayView(gateway)
                yield SystemUnderTest(
                    chat_url=gateway.base_url,
                    capabilities=self.capabilities,
                    metrics=view,
                    ledger=view,
                    sessions=view,
                    clock=ClockView(clock),
                    description=f"{self.description} ({self.directory})",
                )
