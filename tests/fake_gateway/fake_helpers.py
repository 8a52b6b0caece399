"""Shared constants and helpers for the fake's tests (imported by the test modules and conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_harness.sse import ServerSentEvent, SSEDecoder

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token-1"
GATEWAY = "gw-test"
AUTH_GATEWAY = "gw-auth"
NATIVE = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
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


@dataclass
class StreamRead:
    """A streamed response read incrementally over the socket."""

    status: int
    headers: httpx.Headers
    chunks: list[tuple[float, bytes]]  # (seconds since the request was sent, bytes) as they arrived
    events: list[ServerSentEvent]
    comments: int
    truncated: bool
    error: Exception | None  # a transport error that ended the read (a cut connection)

    @property
    def body(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)

    def data(self) -> list[str]:
        return [event.data for event in self.events]

    def json_events(self) -> list[Any]:
        return [json.loads(event.data) for event in self.events if not event.is_done_marker()]


async def read_stream(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> StreamRead:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    chunks: list[tuple[float, bytes]] = []
    error: Exception | None = None
    start = time.perf_counter()
    async with client.stream("POST", path, json=body, headers={**auth(), **(headers or {})}) as response:
        try:
            async for chunk in response.aiter_raw():
                chunks.append((time.perf_counter() - start, chunk))
                events.extend(decoder.feed(chunk))
        except httpx.TransportError as exc:
            error = exc
        events.extend(decoder.flush())
        return StreamRead(
            response.status_code, response.headers, chunks, events, decoder.comments, decoder.truncated, error
        )


@contextlib.asynccontextmanager
async def serving(config: FakeConfig) -> AsyncIterator[tuple[FakeGateway, httpx.AsyncClient]]:
    """A fake with ``config`` and a client for it, both closed on exit."""
    async with (
        FakeGateway.running(config) as fake,
        httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http,
    ):
        yield fake, http


@contextlib.contextmanager
def fake_in_thread(config: FakeConfig) -> Iterator[FakeGateway]:
    """A fake served from its own thread and event loop, for synchronous tests (hypothesis)."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        async with FakeGateway.running(config) as fake:
            holder.update(fake=fake, loop=asyncio.get_running_loop(), stop=stop)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="fake-gateway")
    thread.start()
    try:
        if not ready.wait(10):
            raise RuntimeError("the fake did not start within 10 s")
        yield holder["fake"]
    finally:
        if "loop" in holder:
            holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
