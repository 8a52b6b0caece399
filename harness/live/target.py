"""The ``live`` target: the reference gateway in-process, its upstream the real Cloudflare AI Gateway.

Every tenant is routed to the gateway named by ``AIGW_GATEWAY_ID`` (the account has that one gateway for
the run, whatever the tenant files say). Upstream calls pass a ``GuardedTransport``: the cost caps hold
for the whole run (``--target-option max_requests=N``, ``max_tokens=N``, ``max_usd=X``) and every
request carries the run id. Logs are read from Cloudflare's Logs API, limited to this run's requests.
The upstream cannot be scripted (no ``upstream_control``), so scenarios that script it are skipped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from harness.errors import ConfigError
from harness.gateway.clock import ManualClock
from harness.gateway.server import ReferenceGateway
from harness.gateway.settings import GatewaySettings
from harness.gateway.tenants import TenantConfig, load_tenants
from harness.live.client import CloudflareClient
from harness.live.cost import CostCaps, CostGuard
from harness.live.credentials import LiveCredentials
from harness.live.guarded import GuardedTransport
from harness.live.spike import new_run_id
from harness.scenarios.control import gateway_log_record
from harness.scenarios.fake_target import ClockView, GatewayView, gateway_settings
from harness.scenarios.targets import (
    Capability,
    GatewayLogRecord,
    ScenarioSetup,
    SystemUnderTest,
    TargetOptions,
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
    """``GatewayLogs`` over the live Logs API, limited to the requests of one run (by ``metadata.runId``)."""

    def __init__(self, client: CloudflareClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    async def list(self, gateway_id: str | None = None) -> list[GatewayLogRecord]:
        answer = await self.client.list_logs(self.run_id)
        items = answer.result if answer.status == 200 and isinstance(answer.result, list) else []
        gateway = gateway_id or self.client.credentials.gateway_id
        records = [gateway_log_record(i, gateway) for i in items if isinstance(i, Mapping)]
        return sorted(records, key=lambda r: (r.created_at or "", r.id))

    async def get(self, gateway_id: str, log_id: str) -> GatewayLogRecord | None:
        answer = await self.client.get_log(log_id)
        if answer.status != 200 or not isinstance(answer.result, Mapping):
            return None
        return gateway_log_record(answer.result, gateway_id)


class LiveTarget:
    option_keys = frozenset({"max_requests", "max_tokens", "max_usd", "run_id"})
    """The ``--target-option`` keys this target reads; any other is a usage error."""
    name = "live"
    capabilities = frozenset(
        {
            Capability.GATEWAY_LOGS,
            Capability.METRICS,
            Capability.LEDGER,
            Capability.CLOCK,
            Capability.TENANT_CONFIG,
        }
    )
    description = "the reference gateway against the real Cloudflare AI Gateway"

    def __init__(self, options: TargetOptions, environ: Mapping[str, str] | None = None) -> None:
        self.options = options
        self.credentials = LiveCredentials.from_environment(os.environ if environ is None else environ)
        self.guard = CostGuard(caps_from(options.extra))
        self.run_id = options.extra.get("run_id") or new_run_id()
        self.transports: list[GuardedTransport] = []

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
        transport = GuardedTransport(httpx.AsyncHTTPTransport(), self.guard, self.run_id)
        self.transports.append(transport)
        upstream = base.upstream.model_copy(update={"gateway_token": _secret(creds)})
        settings: GatewaySettings = base.model_copy(update={"upstream": upstream, "transport": transport})
        async with (
            ReferenceGateway.running(settings) as gateway,
            httpx.AsyncClient(timeout=30.0, trust_env=False) as http,
        ):
            view = GatewayView(gateway)
            yield SystemUnderTest(
                chat_url=gateway.base_url,
                capabilities=self.capabilities,
                logs=RunLogs(CloudflareClient(creds, http), self.run_id),
                metrics=view,
                ledger=view,
                clock=ClockView(clock),
                description=f"{self.description} (gateway {creds.gateway_id}, run {self.run_id})",
            )


def _secret(creds: LiveCredentials) -> SecretStr | None:
    return SecretStr(creds.gateway_token.reveal()) if creds.gateway_token is not None else None
