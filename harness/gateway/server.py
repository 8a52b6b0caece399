"""Running the reference gateway: ``create_app(settings)`` (ASGI) and ``ReferenceGateway.running(settings)``.

``running`` starts uvicorn in the current event loop on a loopback port and yields a handle with the base
URL, the usage records (``metrics``), the budget ledger (``ledger``) and the clock; leaving the context
stops the server and closes the upstream client, so nothing outlives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from aigw_fakes.hardened_http import Limits, uvicorn_settings
from aigw_harness.gateway.chat import ChatApp
from aigw_harness.gateway.clock import Clock
from aigw_harness.gateway.envelope import http_refusal
from aigw_harness.gateway.ledger import BudgetLedger, create_ledger
from aigw_harness.gateway.metrics import InMemoryMetrics, JsonLinesMetrics, MetricsObserver
from aigw_harness.gateway.settings import GatewaySettings
from aigw_harness.gateway.tenants import EnvOverrides, TenantRegistry, load_tenants
from aigw_harness.gateway.upstream import UpstreamClient

__all__ = ["GatewaySettings", "ReferenceGateway", "create_app", "server_config"]


def server_config(app: ChatApp, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for the gateway: request heads bounded in size and time, idle connections
    closed, and what the HTTP parser refuses answered in the platform's envelope
    (``aigw_fakes.hardened_http``, the shared leaf the fake serves with too)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        **uvicorn_settings(app.limits, http_refusal),
        **options,
    )


MAX_BODY_BYTES = 1024 * 1024
"""A request body the gateway reads at most (chunked bodies too: the platform's own 413 needs a
``content-length``); a /chat message of 10,000 UTF-16 units is at most 40 kB of JSON."""


def create_app(settings: GatewaySettings) -> ChatApp:
    """Build the ASGI app and everything it needs from validated settings."""
    tenants = list(settings.tenants)
    if settings.tenants_dir is not None:
        tenants += load_tenants(settings.tenants_dir)
    upstream = settings.upstream
    observers: list[MetricsObserver] = list(settings.observers)
    if settings.metrics_jsonl is not None:
        observers.append(JsonLinesMetrics(settings.metrics_jsonl))
    ledger = create_ledger(
        settings.budget_store,
        settings.clock,
        output_reservation=settings.output_reservation,
        propagation_delay=settings.kv.propagation_delay,
        write_interval=settings.kv.write_interval,
        settle_from_snapshot=settings.kv.settle_from_snapshot,
    )
    return ChatApp(
        tenants=TenantRegistry(tenants),
        env=EnvOverrides(settings.env),
        upstream=UpstreamClient(
            upstream.base_url,
            account_id=upstream.account_id,
            api_token=upstream.api_token.get_secret_value() if upstream.api_token else None,
            gateway_token=upstream.gateway_token.get_secret_value() if upstream.gateway_token else None,
            connect_timeout=settings.timeouts.first_byte,
            malformed=settings.malformed_frames,
            transport=settings.transport,
        ),
        ledger=ledger,
        metrics=InMemoryMetrics(),
        observers=observers,
        clock=settings.clock,
        fallback=settings.fallback,
        timeouts=settings.timeouts,
        trace_ids=settings.trace_ids,
        quirks=settings.quirks,
        limits=Limits(
            max_body_bytes=MAX_BODY_BYTES,
            head_timeout_s=settings.timeouts.request_head,
            body_timeout_s=settings.timeouts.request_body or 86_400,
        ),
    )


@dataclass
class ReferenceGateway:
    """A running gateway: where it listens and what it has recorded."""

    base_url: str
    app: ChatApp
    settings: GatewaySettings

    @property
    def metrics(self) -> InMemoryMetrics:
        return self.app.metrics

    @property
    def ledger(self) -> BudgetLedger:
        return self.app.ledger

    @property
    def clock(self) -> Clock:
        return self.app.clock

    @classmethod
    @asynccontextmanager
    async def running(
        cls, settings: GatewaySettings, *, host: str = "127.0.0.1", port: int = 0
    ) -> AsyncIterator[ReferenceGateway]:
        app = create_app(settings)
        config = server_config(app, host, port, lifespan="off", log_level="warning")
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            # startup/stop instead of serve(): serve() polls for exit every 0.1 s and its shutdown sleeps
            # 0.1 s more, which a scenario run that starts a gateway per scenario pays every time.
            await server.startup()
            if not server.servers:
                raise RuntimeError(f"the reference gateway could not listen on {host}:{port}")
            bound = server.servers[0].sockets[0].getsockname()
            try:
                yield cls(base_url=f"http://{host}:{bound[1]}", app=app, settings=settings)
            finally:
                await _stop(server)
        finally:
            await app.aclose()


async def _stop(server: uvicorn.Server, grace: float = 5.0) -> None:
    """Stop listening, close idle connections, let running requests finish (then cancel them)."""
    for listener in server.servers:
        listener.close()
    for connection in list(server.server_state.connections):
        connection.shutdown()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while (server.server_state.connections or server.server_state.tasks) and loop.time() < deadline:  # noqa: ASYNC110 - uvicorn offers nothing to wait on
        await asyncio.sleep(0.002)
    for task in list(server.server_state.tasks):
        task.cancel()
    for listener in server.servers:
        await listener.wait_closed()
