"""The fake, served in-process by uvicorn on a loopback port, for tests and the harness::

    async with FakeGateway.running() as fake:
        fake.base_url      # "http://127.0.0.1:PORT"
        fake.account_id    # the default account; fake.api_token its API token
        fake.behaviour     # BehaviourController: load(document), reset()
        fake.store         # RequestStore
        fake.reset()       # everything back to the start

``aigw fake serve`` runs the same server in the foreground (``serve_forever``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import uvicorn

from aigw_fakes.app import FakeApp
from aigw_fakes.behaviour import BehaviourController
from aigw_fakes.config import FakeConfig
from aigw_fakes.hardened_http import listening_socket, uvicorn_settings
from aigw_fakes.state.fake import FakeState
from aigw_fakes.state.store import RequestStore
from aigw_fakes.wire.errors import http_refusal
from aigw_fakes.wire.http import deliberate_cut

__all__ = ["FakeGateway", "serve_forever"]


class _QuietDeliberateCuts(logging.Filter):
    """uvicorn reports a response the app left incomplete; for a scripted cut that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        if deliberate_cut.get():
            return False
        # A request still waiting (a scripted first-byte delay the client gave up on) is cancelled when the
        # fake stops: the end of the server's life, not an error of the answer.
        return not (record.exc_info is not None and isinstance(record.exc_info[1], asyncio.CancelledError))


class _QuietWritesAfterClose(logging.Filter):
    """A stream that never pauses is written without watching for the client leaving (that watch costs
    more than the stream); when a client leaves mid-stream, asyncio warns once per write that followed,
    until the connection's loss is processed a moment later. That is the client's choice, not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "socket.send() raised exception."


_cut_filter = _QuietDeliberateCuts()
_write_filter = _QuietWritesAfterClose()


def _install_log_filter() -> None:
    log = logging.getLogger("uvicorn.error")
    if _cut_filter not in log.filters:
        log.addFilter(_cut_filter)
    asyncio_log = logging.getLogger("asyncio")
    if _write_filter not in asyncio_log.filters:
        asyncio_log.addFilter(_write_filter)


def _uvicorn_config(app: FakeApp, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=1,
        # Heads bounded in size and time, idle connections closed, parser refusals in Cloudflare's shapes.
        **uvicorn_settings(app.limits, http_refusal),
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn for embedding: leaves signals to the host program (a test run, the harness), and stops as
    soon as asked instead of on its 100 ms ticks, so that starting and stopping a fake per test is cheap."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = asyncio.Event()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit_requested.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # Tick 0 refreshes the Date header; one tick a second, as uvicorn does.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._exit_requested.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or 0)
        state = self.server_state
        while (state.connections or state.tasks) and loop.time() < deadline:  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.002)
        for task in state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()


class FakeGateway:
    def __init__(self, state: FakeState, server: uvicorn.Server, base_url: str) -> None:
        self.state = state
        self._server = server
        self.base_url = base_url

    @property
    def account_id(self) -> str:
        return self.state.config.default_account.id

    @property
    def api_token(self) -> str:
        return self.state.config.default_account.api_tokens[0]

    @property
    def behaviour(self) -> BehaviourController:
        return self.state.behaviour

    @property
    def store(self) -> RequestStore:
        return self.state.store

    @property
    def config(self) -> FakeConfig:
        return self.state.config

    def gateway_url(self, gateway_id: str = "default", account_id: str | None = None) -> str:
        """``{base_url}/v1/{account}/{gateway}``, the stand-in for ``https://gateway.ai.cloudflare.com/v1/...``."""
        return f"{self.base_url}/v1/{account_id or self.account_id}/{gateway_id}"

    @property
    def api_base_url(self) -> str:
        """The stand-in for ``https://api.cloudflare.com/client/v4``."""
        return f"{self.base_url}/client/v4"

    def reset(self) -> None:
        self.state.reset()

    @classmethod
    @asynccontextmanager
    async def running(
        cls, config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> AsyncIterator[FakeGateway]:
        _install_log_filter()
        state = FakeState(config)
        app = FakeApp(state)
        sock = listening_socket(host, port)
        bound_port = sock.getsockname()[1]
        server = _EmbeddedServer(_uvicorn_config(app, host, bound_port, "warning"))
        url_host = f"[{host}]" if ":" in host else host
        fake = cls(state, server, f"http://{url_host}:{bound_port}")
        body_error: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                serving = group.create_task(server.serve(sockets=[sock]))
                while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
                    await asyncio.sleep(0.005)
                if not server.started:
                    raise RuntimeError("the fake gateway's server stopped before it started serving")
                try:
                    yield fake
                except BaseException as exc:
                    # Re-raised below as itself: inside the task group it would come out as an ExceptionGroup.
                    body_error = exc
                finally:
                    server.request_exit()
        finally:
            sock.close()
        if body_error is not None:
            raise body_error


def serve_forever(
    config: FakeConfig,
    host: str,
    port: int,
    log_level: str = "info",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until interrupted (``aigw fake serve``); ``announce`` gets the base URL once
    the port is bound (useful with port 0)."""
    _install_log_filter()
    app = FakeApp(FakeState(config))
    sock = listening_socket(host, port)
    try:
        url_host = f"[{host}]" if ":" in host else host
        if announce is not None:
            announce(f"http://{url_host}:{sock.getsockname()[1]}")
        uvicorn.Server(_uvicorn_config(app, host, sock.getsockname()[1], log_level)).run(sockets=[sock])
    finally:
        sock.close()
