from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from aigw_harness.live.client import CloudflareClient
from aigw_harness.live.credentials import LiveCredentials
from aigw_harness.proxy.serve import serve_asgi
from tests.live.cloudflare_stub import StubAccount, build_app


@pytest.fixture
def account() -> StubAccount:
    """Generated secrets: no test can pass by knowing a fixed value."""
    return StubAccount(
        account_id=secrets.token_hex(16),
        api_token=secrets.token_urlsafe(32),
        gateway_id="spike-gw",
        gateway_token=secrets.token_urlsafe(32),
    )


@pytest.fixture
async def stub_url(account: StubAccount) -> AsyncIterator[str]:
    async with serve_asgi(build_app(account)) as url:
        yield url


def environment(account: StubAccount, base: str) -> dict[str, str]:
    env = {
        "CLOUDFLARE_ACCOUNT_ID": account.account_id,
        "CLOUDFLARE_API_TOKEN": account.api_token,
        "AIGW_GATEWAY_ID": account.gateway_id,
        "AIGW_LIVE_API_BASE": f"{base}/client/v4",
        "AIGW_LIVE_GATEWAY_BASE": f"{base}/v1",
    }
    if account.gateway_token:
        env["AIGW_GATEWAY_TOKEN"] = account.gateway_token
    return env


@pytest.fixture
async def client(account: StubAccount, stub_url: str) -> AsyncIterator[CloudflareClient]:
    creds = LiveCredentials.from_environment(environment(account, stub_url))
    async with httpx.AsyncClient(timeout=5) as http:
        yield CloudflareClient(creds, http)
