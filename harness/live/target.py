"""The ``live`` target: the reference gateway in-process, its upstream the real Cloudflare AI Gateway.

The endpoints can be pointed at a stand-in (``--target-option api_base=URL gateway_base=URL``, or
``AIGW_LIVE_API_BASE``/``AIGW_LIVE_GATEWAY_BASE``): against ``aigw fake serve`` the whole live path runs
offline, which is how CI rehearses it. Every tenant is routed to the gateway named by ``AIGW_GATEWAY_ID``
(the account has that one gateway for the run, whatever the tenant files say). Upstream calls pass a
``GuardedTransport``: the cost caps hold for the whole run (``--target-option max_requests=N``,
``max_tokens=N``, ``max_usd=X``) and every request carries the run id. Logs are read from Cloudflare's
Logs API: the log of every request the scenario sent, each polled by its ``cf-aig-log-id`` until visible
(logs appear a while after the response; ``--target-option log_timeout=S``, default 60). The upstream
cannot be scripted (no ``upstream_control``), so scenarios that script it are skipped with the reason.

What a live run sends is kept small: each answer is bounded (``max_tokens`` at most
``--target-option max_output_tokens=N``, default 64) and sent with ``cf-aig-skip-cache: true`` (a cached
answer would stand in for the real call; ``skip_cache=false`` allows the cache).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from aigw_harness.errors import ConfigError
from aigw_harness.gateway.clock import ManualClock
from aigw_harness.gateway.server import ReferenceGateway
from aigw_harness.gateway.settings import GatewaySettings
from aigw_harness.gateway.tenants import TenantConfig, load_tenants
from aigw_harness.live.client import CloudflareClient
from aigw_harness.live.cost import CostCaps, CostGuard
from aigw_harness.live.credentials import LiveCredentials
from aigw_harness.live.guarded import LIVE_OUTPUT_TOKENS, GuardedTransport
from aigw_harness.live.logcheck import DEFAULT_SCHEDULE, PollSchedule, find_logs
from aigw_harness.live.spike import new_run_id
from aigw_harness.scenarios.control import gateway_log_record
from aigw_harness.scenarios.fake_target import ClockView, GatewayView, gateway_settings
from aigw_harness.scenarios.loader import LoadedScenario
from aigw_harness.scenarios.targets import (
    Capability,
    GatewayLogRecord,
    ScenarioSetup,
    SystemUnderTest,
    TargetOptions,
    UpstreamCall,
)

__all__ = ["LiveTarget", "RunLogs"]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def caps_from(extra: Mapping[str, str]) -> CostCaps:
    defaults = CostCaps()
    try:
        return CostCaps(
            max_requests=int(extra.get("max_requests", defaults.max_requests)),
            max_tokens=int(extra.get("max_tokens", defaults.max_tokens)),
            max_usd=float(extra.get("max_usd", defaults.max_usd)),
        )
    except ValueError as exc:
        raise ConfigError(f"--target-option max_requests/max_tokens/max_usd: {exc}") from None


class RunLogs:
    """The live Logs API, limited to the requests one scenario sent: ``GatewayLogs`` and ``UpstreamCalls``.

    The log ids come from the answers (``cf-aig-log-id``, kept by the guarded transport); each is polled
    until visible, so the Logs API's delay is waited out rather than read as a missing log. The upstream's
    calls are those logs, with what the transport knows of each request (its stream flag).
    """

    def __init__(
        self,
        client: CloudflareClient,
        run_id: str,
        transport: GuardedTransport,
        schedule: PollSchedule = DEFAULT_SCHEDULE,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.transport = transport
        self.schedule = schedule
        self.missing: list[str] = []
        """Why a sent request's log was not found (one line each), for the report."""
        self._found: dict[str, GatewayLogRecord] = {}

    async def _records(self) -> dict[str, GatewayLogRecord]:
        gateway = self.client.credentials.gateway_id
        wanted = [c.log_id for c in self.transport.calls if c.log_id and c.log_id not in self._found]
        if wanted:
            sightings = await find_logs(self.client, wanted, self.schedule)
            for s in sightings:
                if s.record is not None:
                    self._found[s.name] = gateway_log_record(s.record, gateway)
            self.missing = [f"{s.log_id}: {s.note}" for s in sightings if not s.found]
        return self._found

    async def list(self, gateway_id: str | None = None) -> list[GatewayLogRecord]:
        records = await self._records()
        return sorted(records.values(), key=lambda r: (r.created_at or "", r.id))

    async def requests(self) -> builtins.list[UpstreamCall]:
        records = await self._records()
        calls = []
        for sent in self.transport.calls:
            record = records.get(sent.log_id or "")
            if record is None:
                continue
            calls.append(
                UpstreamCall(
                    id=record.id,
                    model=record.model or sent.model,
                    status=record.status_code or sent.status,
                    log_id=record.id,
                    gateway_id=record.gateway_id,
                    metadata=record.metadata,
                    tokens_in=record.tokens_in,
                    tokens_out=record.tokens_out,
                    cost=record.cost,
                    stream=sent.stream,
                    created_at=record.created_at,
                    duration_ms=record.duration_ms,
                )
            )
        return calls

    async def get(self, gateway_id: str, log_id: str) -> GatewayLogRecord | None:
        answer = await self.client.get_log(log_id)
        if answer.status != 200 or not isinstance(answer.result, Mapping):
            return None
        return gateway_log_record(answer.result, gateway_id)


class LiveTarget:
    option_keys = frozenset(
        {
            "api_base",
            "gateway_base",
            "log_timeout",
            "max_output_tokens",
            "max_requests",
            "max_tokens",
            "max_usd",
            "run_id",
            "skip_cache",
        }
    )
    """The ``--target-option`` keys this target reads; any other is a usage error."""
    name = "live"
    capabilities = frozenset(
        {
            Capability.UPSTREAM_CALLS,
            Capability.GATEWAY_LOGS,
            Capability.METRICS,
            Capability.LEDGER,
            Capability.CLOCK,
            Capability.TENANT_CONFIG,
            Capability.SESSIONS,
        }
    )
    description = "the reference gateway against the real Cloudflare AI Gateway"

    def __init__(self, options: TargetOptions, environ: Mapping[str, str] | None = None) -> None:
        self.options = options
        extra = options.extra
        self.credentials = LiveCredentials.from_environment(
            os.environ if environ is None else environ,
            api_base=extra.get("api_base"),
            gateway_base=extra.get("gateway_base"),
        )
        if self.credentials.stand_in:
            # A rehearsal: say so wherever the run is described, so that no finding reads as Cloudflare's.
            self.description = (
                f"the reference gateway against a stand-in for Cloudflare at {self.credentials.gateway_base}"
            )
        self.output_tokens = output_tokens_from(extra)
        self.skip_cache = extra.get("skip_cache", "true").lower() not in ("false", "0", "no")
        self.schedule = PollSchedule(timeout_s=_seconds(extra.get("log_timeout", "60"), "log_timeout"))
        self.guard = CostGuard(caps_from(options.extra))
        self.run_id = options.extra.get("run_id") or new_run_id()
        self.transports: list[GuardedTransport] = []

    def before_run(self, loaded: Sequence[LoadedScenario]) -> None:
        """Refuse the run (``CostCapExceeded``, naming the cap) when its worst case is over the caps."""
        from aigw_harness.live.scenario_cost import plan_scenarios

        plans = plan_scenarios(
            loaded, self.options.tenants_dir, self.guard, self.capabilities, self.output_tokens
        )
        self.guard.check_plan([r for plan in plans for r in plan.requests])

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        creds = self.credentials
        clock = ManualClock(setup.clock_start or datetime.now(UTC))
        documents = [TenantConfig.model_validate(doc) for doc in setup.tenants] or load_tenants(
            self.options.tenants_dir
        )
        tenants = [t.model_copy(update={"ai_gateway_id": creds.gateway_id}) for t in documents]
        base = gateway_settings(
            setup,
            _origin(creds.gateway_base),
            creds.account_id.reveal(),
            creds.api_token.reveal(),
            clock,
            tenants,
        )
        transport = GuardedTransport(
            httpx.AsyncHTTPTransport(),
            self.guard,
            self.run_id,
            output_tokens=self.output_tokens,
            skip_cache=self.skip_cache,
        )
        self.transports.append(transport)
        upstream = base.upstream.model_copy(update={"gateway_token": _secret(creds)})
        settings: GatewaySettings = base.model_copy(update={"upstream": upstream, "transport": transport})
        async with (
            ReferenceGateway.running(settings) as gateway,
            httpx.AsyncClient(timeout=30.0, trust_env=False) as http,
        ):
            view = GatewayView(gateway)
            logs = RunLogs(CloudflareClient(creds, http), self.run_id, transport, self.schedule)
            yield SystemUnderTest(
                chat_url=gateway.base_url,
                capabilities=self.capabilities,
                calls=logs,
                logs=logs,
                metrics=view,
                ledger=view,
                sessions=view,
                clock=ClockView(clock),
                description=f"{self.description} (gateway {creds.gateway_id}, run {self.run_id})",
            )


def output_tokens_from(extra: Mapping[str, str]) -> int:
    """``--target-option max_output_tokens=N``: each answer's bound (default ``LIVE_OUTPUT_TOKENS``)."""
    text = extra.get("max_output_tokens", str(LIVE_OUTPUT_TOKENS))
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--target-option max_output_tokens: expected a whole number above 0, got {text!r}")
    return int(text)


def _seconds(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"--target-option {name}: expected a number of seconds above 0, got {text!r}")
    return value


def _secret(creds: LiveCredentials) -> SecretStr | None:
    return SecretStr(creds.gateway_token.reveal()) if creds.gateway_token is not None else None
