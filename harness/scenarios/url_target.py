"""The ``url`` target: any deployment that speaks the platform's ``/chat`` contract, given by ``--sut-url``.

On its own it can only send requests and read responses, so scenarios that script the upstream, move the
clock or apply their own tenants are skipped with the reason, and checks that read the upstream or the
ledger are skipped alone. When that deployment's upstream is our fake (``aigw fake serve``), pass the
fake's address as ``--target-option upstream_url=URL``: the upstream can then be scripted and its requests
and logs read, and those scenarios run too.

A state probe reads what the deployment charged: ``--target-option ledger_url=URL`` with the placeholders
of ``aigw_harness.scenarios.state.ledger_key`` (``http://127.0.0.1:8787/__usage/{tenant}/{period}/{date}``)
answers with the tenant's usage for the period (a number, or JSON with ``used``); 404 reads as 0.
Another reads what it stored in a chat session: ``--target-option sessions_url=URL`` with ``{tenant}`` and
``{session}`` (``http://127.0.0.1:8787/__sessions/{tenant}/{session}``) answers with the session's messages
in any shape ``aigw_harness.scenarios.sessions.messages_of`` reads; 404 is no session. Without it,
sessions are read through the deployment's history route.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

import httpx

from aigw_harness.errors import ConfigError, TargetUnavailable
from aigw_harness.scenarios.control import ControlApiUpstream, LogsApiReader
from aigw_harness.scenarios.sessions import ProbeSessions, check_session_pattern
from aigw_harness.scenarios.state import check_pattern, ledger_key, parse_usage
from aigw_harness.scenarios.targets import Capability, ScenarioSetup, SystemUnderTest, TargetOptions

__all__ = ["ProbeLedger", "UrlTarget"]


def _checked_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{what} must be an http(s) URL such as http://127.0.0.1:8787, not {value!r}")
    return value.rstrip("/")


async def _reachable(url: str, what: str) -> None:
    """Something must accept a connection there; nothing at all is a configuration error, not a failed
    scenario. Only a TCP connection is opened (no request), so that the deployment sees nothing extra."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(_REACH_TIMEOUT_S):
            _, writer = await asyncio.open_connection(parts.hostname, port)
    except (OSError, TimeoutError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise TargetUnavailable(f"cannot reach {what} {url}: {reason}") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


_REACH_TIMEOUT_S = 10.0


class ProbeLedger:
    """``LedgerView`` over a deployment's state probe: one GET per reading."""

    def __init__(self, client: httpx.AsyncClient, pattern: str) -> None:
        self._client = client
        self._pattern = pattern

    async def used(self, tenant_id: str, period: Literal["daily", "monthly"], at: datetime) -> int:
        response = await self._client.get(ledger_key(self._pattern, tenant_id, period, at))
        if response.status_code == 404:
            return 0
        if response.status_code >= 400:
            raise RuntimeError(f"the state probe answered {response.status_code}: {response.text[:200]}")
        return parse_usage(response.text)


class UrlTarget:
    option_keys = frozenset({"upstream_url", "account_id", "api_token", "ledger_url", "sessions_url"})
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
        probe = options.extra.get("ledger_url")
        self.ledger_url = check_pattern(_checked_url(probe, "ledger_url"), "ledger_url") if probe else None
        sessions = options.extra.get("sessions_url")
        self.sessions_url = None
        if sessions:
            self.sessions_url = check_session_pattern(_checked_url(sessions, "sessions_url"), "sessions_url")
        # Sessions are read through the state probe when given, else through the history route.
        caps: set[Capability] = {Capability.SESSIONS}
        if self.ledger_url:
            caps.add(Capability.LEDGER)
        if self.upstream_url:
            caps |= {Capability.UPSTREAM_CALLS, Capability.UPSTREAM_CONTROL}
            if self.account_id and self.api_token:
                caps.add(Capability.GATEWAY_LOGS)
        self.capabilities = frozenset(caps)
        self.description = f"the deployment at {self.chat_url}" + (
            f", upstream: the fake at {self.upstream_url}" if self.upstream_url else ""
        )

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
            await _reachable(self.chat_url, "--sut-url")
            if self.upstream_url:
                await _reachable(self.upstream_url, "upstream_url")
            sut = SystemUnderTest(
                chat_url=self.chat_url,
                capabilities=self.capabilities,
                description=self.description,
                ledger=ProbeLedger(client, self.ledger_url) if self.ledger_url else None,
                sessions=ProbeSessions(client, self.sessions_url) if self.sessions_url else None,
            )
            if self.upstream_url:
                sut.upstream = ControlApiUpstream(client, self.upstream_url)
                if self.account_id and self.api_token:
                    sut.logs = LogsApiReader(client, self.upstream_url, self.account_id, self.api_token)
            yield sut
