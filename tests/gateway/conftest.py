"""Fixtures for the reference gateway's tests.

``start_gateway(**settings)`` starts a reference gateway in front of the fake AI Gateway (one fake for the
whole run, reset before each test, served in the session's event loop) or, when a test passes
``transport=`` (an ``httpx.MockTransport``), in front of that. Every server a test starts, the test stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_harness.gateway import GatewaySettings, ManualClock, ReferenceGateway
from aigw_harness.gateway.tenants import TenantConfig

TENANTS_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "tenants"
SESSION = "11111111-1111-1111-1111-111111111111"
LLAMA = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
LLAMA_FAST = "@cf/meta/llama-3.1-8b-instruct-fast"
FAKE_ACCOUNT = "0123456789abcdef0123456789abcdef"
FAKE_TOKEN = "fake-api-token-for-tests"
AUTH_GATEWAY = "auth-gateway"
GATEWAY_TOKEN = "gateway-token-for-tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this directory's async tests in the session loop, where the shared fake is served."""
    here = Path(__file__).parent
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if pytest_asyncio.is_async_test(item) and here in Path(str(item.path)).parents:
            item.add_marker(marker, append=False)


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


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def fake_server() -> AsyncIterator[FakeGateway]:
    gateways = [GatewayConfig(id=g) for g in ("alpha-gateway", "example-gateway", "gw1")]
    gateways.append(GatewayConfig(id=AUTH_GATEWAY, authentication=True))
    account = AccountConfig(id=FAKE_ACCOUNT, api_tokens=[FAKE_TOKEN, GATEWAY_TOKEN], gateways=gateways)
    async with FakeGateway.running(FakeConfig(accounts=[account], time_scale=0.01)) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeGateway) -> FakeGateway:
    fake_server.reset()
    return fake_server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 2, 7, 12, 0, tzinfo=UTC))


GatewayFactory = Callable[..., AbstractAsyncContextManager[tuple[ReferenceGateway, httpx.AsyncClient]]]


@pytest.fixture
def start_gateway(fake: FakeGateway, clock: ManualClock) -> GatewayFactory:
    """``async with start_gateway(**settings) as (gw, client)``: a gateway and a client for it."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[ReferenceGateway, httpx.AsyncClient]]:
        values: dict[str, Any] = {"tenants_dir": TENANTS_DIR, "clock": clock}
        values.update(overrides)
        if values.get("transport") is not None:
            base_url, upstream = "http://upstream.invalid", {"api_token": "secret-token"}
        else:
            base_url, upstream = fake.base_url, {"api_token": FAKE_TOKEN, "account_id": FAKE_ACCOUNT}
        for key in ("api_token", "account_id", "gateway_token"):
            if key in values:
                upstream[key] = values.pop(key)
        settings = GatewaySettings.for_upstream(base_url, **upstream, **values)
        async with (
            ReferenceGateway.running(settings) as gw,
            httpx.AsyncClient(base_url=gw.base_url, timeout=5) as client,
        ):
            yield gw, client

    return start
