"""Shared constants and helpers for the fake's tests (imported by the test modules and conftest)."""

from __future__ import annotations

from fakes.config import AccountConfig, FakeConfig, GatewayConfig

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token-1"
GATEWAY = "gw-test"
AUTH_GATEWAY = "gw-auth"
NATIVE = "@cf/meta/llama-3.1-8b-instruct"
SMALL = "@cf/meta/llama-3.2-3b-instruct"
CHAT = "@cf/google/gemma-4-26b-a4b-it"


def make_config(**updates: object) -> FakeConfig:
    account = AccountConfig(
        id=ACCOUNT,
        api_tokens=[TOKEN],
        gateways=[GatewayConfig(id=GATEWAY), GatewayConfig(id=AUTH_GATEWAY, authentication=True)],
    )
    return FakeConfig(accounts=[account], time_scale=0.001, **updates)  # type: ignore[arg-type]


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def gateway_path(rest: str, gateway: str = GATEWAY) -> str:
    return f"/v1/{ACCOUNT}/{gateway}/{rest}"


def api_path(rest: str) -> str:
    return f"/client/v4/accounts/{ACCOUNT}/ai/{rest}"
