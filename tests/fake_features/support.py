"""Constants and small helpers for the gateway-feature tests that talk to a running fake over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx

from aigw_fakes.clock import ManualClock
from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "features-test-token"
GATEWAY = "gw-plain"
NATIVE = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
SMALL = "@cf/meta/llama-3.2-3b-instruct"
START = 1_790_000_040.0  # 2026-09-21T14:14:00Z, on a minute boundary
USD_PER_NEURON = 0.011 / 1000


def make_config(clock: ManualClock) -> FakeConfig:
    account = AccountConfig(id=ACCOUNT, api_tokens=[TOKEN], gateways=[GatewayConfig(id=GATEWAY)])
    return FakeConfig(accounts=[account], time_scale=0.001, clock=clock)


def auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def gateway_api(rest: str = "") -> str:
    return f"/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways{rest}"


def logs_api(gateway: str = GATEWAY, rest: str = "") -> str:
    return gateway_api(f"/{gateway}/logs{rest}")


def settings(**changes: Any) -> dict[str, Any]:
    """A complete gateway body (the API requires these fields) with ``changes`` applied."""
    body: dict[str, Any] = {
        "cache_invalidate_on_update": False,
        "cache_ttl": 0,
        "collect_logs": True,
        "rate_limiting_interval": None,
        "rate_limiting_limit": None,
    }
    return body | changes


async def configure(client: httpx.AsyncClient, gateway: str = GATEWAY, **changes: Any) -> None:
    response = await client.put(gateway_api(f"/{gateway}"), json=settings(**changes), headers=auth())
    assert response.status_code == 200, response.text


async def set_options(client: httpx.AsyncClient, **options: Any) -> None:
    response = await client.put("/__aigw/features", json=options)
    assert response.status_code == 200, response.text


async def call(
    client: httpx.AsyncClient,
    *,
    gateway: str = GATEWAY,
    model: str = NATIVE,
    prompt: str = "hello",
    metadata: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    stream: bool = False,
) -> httpx.Response:
    sent = {**auth(), **(headers or {})}
    if metadata is not None:
        sent["cf-aig-metadata"] = json.dumps(metadata)
    body: dict[str, Any] = {"prompt": prompt}
    if stream:
        body["stream"] = True
    return await client.post(f"/v1/{ACCOUNT}/{gateway}/workers-ai/{model}", json=body, headers=sent)


def behaviour(*script: dict[str, Any], model: str = NATIVE) -> dict[str, Any]:
    return {"rules": [{"match": {"model": model}, "script": list(script)}]}
