"""Fixtures for the reference gateway's tests: settings, a scripted upstream, a running gateway, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.gateway import GatewaySettings, ManualClock, ReferenceGateway
from harness.gateway.tenants import TenantConfig

from .upstream_double import ScriptedUpstream

TENANTS_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "tenants"
SESSION = "11111111-1111-1111-1111-111111111111"
LLAMA = "@cf/meta/llama-3.1-8b-instruct"
LLAMA_FAST = "@cf/meta/llama-3.1-8b-instruct-fast"


def tenant(**overrides: Any) -> TenantConfig:
    """A tenant like the platform's ``example``, with camelCase overrides."""
    data: dict[str, Any] = {
        "tenantId": "t1",
        "accountId": "acct",
        "aiGatewayId": "gw1",
        "aiModels": {"chat": LLAMA, "embeddings": "@cf/baai/bge-base-en-v1.5"},
        "vectorizeNamespace": "t1",
        "rateLimit": {"perMinute": 60, "burst": 20},
        "featureFlags": {},
        "allowedHosts": ["t1.local"],
        "apiKeys": ["t1-key"],
    }
    data.update(overrides)
    return TenantConfig.model_validate(data)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 2, 7, 12, 0, tzinfo=UTC))


@pytest.fixture
def upstream() -> ScriptedUpstream:
    return ScriptedUpstream()


GatewayFactory = Callable[..., AbstractAsyncContextManager[tuple[ReferenceGateway, httpx.AsyncClient]]]


@pytest.fixture
def start_gateway(upstream: ScriptedUpstream, clock: ManualClock) -> GatewayFactory:
    """``async with start_gateway(**settings) as (gw, client)``, in front of the scripted upstream."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[ReferenceGateway, httpx.AsyncClient]]:
        values: dict[str, Any] = {
            "tenants_dir": TENANTS_DIR,
            "clock": clock,
            "transport": upstream.transport(),
        }
        values.update(overrides)
        settings = GatewaySettings.for_upstream("http://upstream.invalid", api_token="secret-token", **values)
        async with (
            ReferenceGateway.running(settings) as gw,
            httpx.AsyncClient(base_url=gw.base_url, timeout=5) as client,
        ):
            yield gw, client

    return start
