"""The fake's HTTP layer: parsed requests, replies, a small router and the ASGI writer.

Replies are plain data (status, headers, a body or an async iterator of writes), so pipeline stages can
inspect and wrap them before a byte is sent. The writer owns the socket side: it sends each write as its
own ``http.response.body`` message (so splits and coalesced writes reach the client as scripted), stops
when the client disconnects (no task outlives its request), and cuts the connection when a stream raises
``StreamCut`` by returning without completing the response: the server then closes the socket, which a
client sees as an incomplete chunked body.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope, Send

from aigw_fakes.hardened_http import loads_strict

__all__ = [
    "Handler",
    "IncomingRequest",
    "Reply",
    "ReplyResult",
    "RequestHeaders",
    "Route",
    "Router",
    "StreamCut",
    "deliberate_cut",
    "json_reply",
    "write_reply",
]

JSON = "application/json"
logger = logging.getLogger("aigw_fakes")

deliberate_cut: contextvars.ContextVar[bool] = contextvars.ContextVar("deliberate_cut", default=False)
"""Set in the request's task when the fake cut a response on purpose (the server log stays quiet)."""


_LOWERED: dict[str, str] = {}


class RequestHeaders(Headers):
    """starlette's ``Headers`` with constant-time lookups: every request reads a dozen of them."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope=scope)
        self._first: dict[str, str] = {}
        for key, value in reversed(self.raw):  # the first of repeated headers wins, as in Headers
            self._first[key.decode("latin-1").lower()] = value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        return self._first[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._first

    def get(self, key: str, default: Any = None) -> Any:
        lowered = _LOWERED.get(key)
        if lowered is None:
            lowered = key.lower()
            if len(_LOWERED) < 4096:  # header names come from the code: a few dozen
                _LOWERED[key] = lowered
        return self._first.get(lowered, default)


class StreamCut(Exception):
    """Raised by a reply's stream to close the connection abruptly after what was written so far."""


@dataclass(slots=True)
class IncomingRequest:
    method: str
    path: str
    query: QueryParams
    headers: Headers
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    client: str = ""
    max_json_depth: int = 512

    def json(self) -> Any:
        """The body parsed as strict JSON (``aigw_fakes.hardened_http.loads_strict``: finite, bounded numbers,
        at most ``max_json_depth`` levels, lone surrogates replaced); ``ValueError`` when it is not."""
        return loads_strict(self.body, self.max_json_depth)


@dataclass(slots=True)
class ReplyResult:
    """How sending a reply ended, for whoever records it."""

    sent: bytes
    first_byte_at: float | None  # loop time of the first body byte
    ended_at: float
    cut: bool = False
    disconnected: bool = False


@dataclass(slots=True)
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)  # lowercase names
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    chunks: list[bytes] | None = None
    """The body as writes made at once, one after the other (a stream with no pause and no fault): sent
    without a generator or a disconnect watcher, and captured in one join."""
    stream_waits: bool = True
    """The stream may pause between writes; while it does, a client disconnect must stop it. A stream that
    never pauses skips the disconnect watcher (writes to a gone client are dropped)."""
    cut_after_bytes: int | None = None
    """Cut a non-streamed body after this many bytes."""
    reset: bool = False
    """Reset the connection instead of answering: the client gets no byte of a response."""
    head_stall: float = 0.0
    """Seconds to wait between sending the status and headers and the first byte of the body."""
    on_close: list[Callable[[ReplyResult], None]] = field(default_factory=list)
    capture: bool = False
    """Keep the bytes written in ``ReplyResult.sent`` (for the request store)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Facts for pipeline stages (usage, error code, cache status); never sent."""

    def header(self, name: str) -> str | None:
        """A header's value; names in ``headers`` are lowercase, as ASGI sends them."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        self.set_headers({name: value})

    def set_headers(self, values: dict[str, str]) -> None:
        """Set several headers at once, replacing earlier values of the same names."""
        values = {name.lower(): value for name, value in values.items()}
        self.headers = [(k, v) for k, v in self.headers if k not in values]
        self.headers.extend(values.items())


def json_reply(status: int, document: Any, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    # allow_nan=False: a non-finite number must fail here, not reach a client as invalid JSON.
    body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    return Reply(status, [("content-type", JSON), *headers], body)


type Handler = Callable[[IncomingRequest], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    name: str
    max_body_bytes: int | None = None  # None: the server's limit


class Router:
    """Routes by method and a full-match regular expression on the path; named groups become params."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        methods: Iterable[str],
        pattern: str,
        handler: Handler,
        name: str = "",
        max_body_bytes: int | None = None,
    ) -> None:
        route = Route(
            frozenset(m.upper() for m in methods),
            re.compile(pattern),
            handler,
            name or pattern,
            max_body_bytes,
        )
        self.routes.append(route)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route and params; the flag says the path exists for another method."""
        other_method = False
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                return route, {k: v for k, v in found.groupdict().items() if v is not None}, False
            other_method = True
        return None, {}, other_method


def _reset_connection(send: Send) -> bool:
    """Reset the client's connection before a response starts. ASGI has no message for that; uvicorn's
    ``send`` is a method of its request cycle, which holds the transport. SO_LINGER 0 makes the close a
    TCP reset rather than an orderly end of stream."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


async def write_reply(reply: Reply, receive: Receive, send: Send) -> None:
    loop = asyncio.get_running_loop()
    sent = bytearray() if reply.capture else None
    first_byte_at: float | None = None
    cut = disconnected = False
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    if reply.reset:
        deliberate_cut.set(True)
        if _reset_connection(send):
            await asyncio.sleep(0)  # let the server see the connection lost before the app returns
        else:
            logger.warning("fake gateway: this server cannot reset a connection; answering 502 instead")
            await send({"type": "http.response.start", "status": 502, "headers": []})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        result = ReplyResult(b"", None, loop.time(), cut=True)
        for callback in reply.on_close:
            callback(result)
        return
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if reply.head_stall > 0:
            try:
                await _until_disconnect(asyncio.sleep(reply.head_stall), receive)
            except _Disconnected:
                disconnected = True
                return
        if reply.stream is None and reply.chunks is None:
            body = reply.body
            if reply.cut_after_bytes is not None and reply.cut_after_bytes < len(body):
                body, cut = body[: reply.cut_after_bytes], True
            if body:
                first_byte_at = loop.time()
            if sent is not None:
                sent += body
            await send({"type": "http.response.body", "body": body, "more_body": cut})
        elif reply.chunks is not None:
            written = 0
            try:
                for chunk in reply.chunks:
                    if first_byte_at is None and chunk:
                        first_byte_at = loop.time()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    written += 1
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:
                logger.exception("fake gateway: writing a response failed; the connection is cut")
                cut = True
            if sent is not None:
                sent += b"".join(reply.chunks[:written])
        else:
            stream = reply.stream
            if stream is None:  # pragma: no cover - the branches above cover a reply without a stream
                raise RuntimeError("a reply needs a body, chunks or a stream")

            async def pump() -> None:
                nonlocal first_byte_at
                chunks = aiter(stream)
                async for chunk in chunks:  # until the first byte, which is timed
                    if chunk:
                        first_byte_at = loop.time()
                    if sent is not None:
                        sent.extend(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    if chunk:
                        break
                if sent is None:
                    async for chunk in chunks:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                else:
                    async for chunk in chunks:
                        sent.extend(chunk)
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})

            try:
                if reply.stream_waits:
                    await _until_disconnect(pump(), receive)
                else:
                    await pump()
            except _Disconnected:
                disconnected = True
            except StreamCut:
                cut = True
            except Exception:
                logger.exception("fake gateway: a response stream failed; the connection is cut")
                cut = True
    finally:
        if cut:
            deliberate_cut.set(True)
        result = ReplyResult(bytes(sent or b""), first_byte_at, loop.time(), cut, disconnected)
        for callback in reply.on_close:
            callback(result)


class _Disconnected(Exception):
    pass


async def _until_disconnect(work: Awaitable[None], receive: Receive) -> None:
    """Run ``work``; if the client goes away first, cancel it and raise ``_Disconnected``."""

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected

    try:
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(watch())
            try:
                await work
            finally:
                watcher.cancel()
    except* _Disconnected:
        raise _Disconnected from None
    except* StreamCut:
        raise StreamCut from None
