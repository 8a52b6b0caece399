"""The ``url`` target: any deployment that speaks the platform's ``/chat`` contract, given by ``--sut-url``.

On its own it can only send requests and read responses, so scenarios that script the upstream, move the
clock, apply their own tenants or read the ledger are skipped with the reason. When that deployment's
upstream is our fake (``aigw fake serve``), pass the fake's address as ``--target-option upstream_url=URL``:
the upstream can then be scripted and its requests and logs read, and those scenarios run too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx

from harness.errors import ConfigError, TargetUnavailable
from harness.scenarios.control import ControlApiUpstream, LogsApiReader
from harness.scenarios.targets import Capability, ScenarioSetup, SystemUnderTest, TargetOptions

__all__ = ["UrlTarget"]


def _checked_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{what} must be an http(s) URL such as http://127.0.0.1:8787, not {value!r}")
    return value.rstrip("/")


async def _reachable(client: httpx.AsyncClient, url: str, what: str) -> None:
    """Any HTTP answer will do; no answer at all is a configuration error, not a failed scenario."""
    try:
        await client.get(f"{url}/health", timeout=_REACH_TIMEOUT_S)
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise TargetUnavailable(f"cannot reach {what} {url}: {reason}") from None


_REACH_TIMEOUT_S = 10.0


class UrlTarget:
    option_keys = frozenset({"upstream_url", "account_id", "api_token"})
    """The ``--target-option`` keys this target reads; any other is a usage error."""
    name = "url"

    def __init__(self, options: TargetOptions) -> None:
        if not options.sut_url:
            raise ConfigError("the url target needs --sut-url URL (the deployment serving /chat)")
        self.chat_url = _checked_url(options.sut_url, "--sut-url")
        upstream = options.extra.get("upstream_url")
        self.upstream_url = _checked_url(upstream, "upstream_url") if upstream else None
        self.account_id = options.extra.get("account_id")
        self.api_token = options.extra.get("api_token")
        caps: set[Capability] = set()
        if self.upstream_url:
            caps.add(Capability.UPSTREAM_CONTROL)
            if self.account_id and self.api_token:
                caps.add(Capability.GATEWAY_LOGS)
        self.capabilities = frozenset(caps)
        self.description = f"the deployment at {self.chat_url}" + (
            f", upstream: the fake at {self.upstream_url}" if self.upstream_url else ""
        )

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
            await _reachable(client, self.chat_url, "--sut-url")
            if self.upstream_url:
                await _reachable(client, self.upstream_url, "upstream_url")
            sut = SystemUnderTest(
                chat_url=self.chat_url, capabilities=self.capabilities, description=self.description
            )
            if self.upstream_url:
                sut.upstream = ControlApiUpstream(client, self.upstream_url)
                if self.account_id and self.api_token:
                    sut.logs = LogsApiReader(client, self.upstream_url, self.account_id, self.api_token)
            yield sut
