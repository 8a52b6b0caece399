"""A small HTTP/1.1 client on an asyncio protocol for the upstream call, with kept-alive connections.

Why not httpx here: relaying a stream is the gateway's hot path, and httpcore hands a chunked body over
one chunk at a time even when many are buffered (Workers AI, and the fake, send one chunk per event), so
the gateway saw one event per read and wrote one event per syscall; its pool also polls every idle socket
on each request. This client parses bytes as they arrive, with llhttp (``httptools``, the parser the
servers use too, in C), in the connection's ``data_received``: the reader takes everything parsed since its
last read, de-chunked, in one piece, so the events that arrived together are relayed together, and no
stream buffer sits between the socket and the parser.

It does only what the upstream call needs: one request per connection at a time, ``content-length``,
chunked or read-to-close bodies, TLS for ``https``. Every failure of the connection or of the framing is a
``WireError``. Time limits are the caller's (``asyncio.timeout``). Injected ``httpx`` transports (tests)
bypass it.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["WireError", "WirePool", "WireResponse"]

_READ = 65536
_MAX_HEAD = 65536


class WireError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


_PAUSE_AT = 4 * _READ  # parsed body bytes not yet taken by the reader before the socket is paused


class _Connection(asyncio.Protocol):
    """One connection: the response in progress is parsed as its bytes arrive; the reader waits on one
    future, woken by new body bytes, the end of the response, or the end of the connection. A reader that
    falls behind pauses the socket (the server then waits on TCP) instead of buffering without bound."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser: _ResponseParser | None = None  # the response being read; None between requests
        self._paused = False
        self._error: WireError | None = None  # the framing broke (the connection is then closed)
        self._lost: str | None = None  # why the connection ended: "closed", or the error's name
        self._waiter: asyncio.Future[None] | None = None
        self._awaiting_head = False
        self.idle_since = 0.0

    # asyncio's callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or parser.done or self._error is not None:
            # Bytes with no request out: whatever they are, the next response could not be told from them.
            self._lost = self._lost or "unexpected bytes between responses"
            self.close()
            return
        try:
            parser.parse(data)
        except WireError as exc:
            if parser.done:
                parser.overrun = True  # the response is whole; what came after it is not HTTP
            else:
                self._error = exc
            self.close()
        if parser.body_bytes:
            if parser.body_bytes > _PAUSE_AT and not self._paused and self._transport is not None:
                self._paused = True
                self._transport.pause_reading()
        elif not parser.done and self._error is None and not (parser.head_done and self._awaiting_head):
            return  # nothing a reader waits for yet
        self._wake()

    def eof_received(self) -> bool:
        self._lost = self._lost or "closed"
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._lost or (type(exc).__name__ if exc is not None else "closed")
        self._wake()

    # the client's side
    @property
    def usable(self) -> bool:
        """Whether a kept-alive connection may carry another request."""
        return self._lost is None and self._error is None and self._parser is None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._lost = self._lost or "closed"

    def send(self, message: bytes, parser: _ResponseParser) -> None:
        if self._transport is None or not self.usable or self._transport.is_closing():
            raise WireError("the connection closed")
        self._parser = parser
        self._transport.write(message)

    async def head(self) -> bytes:
        """Wait for the response head; the body bytes that came with it."""
        parser = self._reading()
        self._awaiting_head = True
        try:
            while not parser.head_done:
                if self._error is not None:
                    raise self._error
                if self._lost is not None:
                    reason = "the connection closed" if self._lost == "closed" else self._lost
                    raise WireError(f"no response head: {reason}")
                await self._wait()
        finally:
            self._awaiting_head = False
        return self._take(parser)

    def _take(self, parser: _ResponseParser) -> bytes:
        """The body parsed since the last take, in one piece; a paused socket reads again."""
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return parser.take_body()

    async def body(self, delimited: bool) -> bytes | None:
        """The next body bytes; ``None`` at the end of the body. ``delimited``: the body's end is marked,
        so that the connection's end before it is an error."""
        parser = self._reading()
        while True:
            if parser.body_bytes:
                return self._take(parser)
            if self._error is not None:
                raise self._error
            if parser.done:
                return None
            if self._lost is not None:
                if not delimited:
                    return None  # read to the connection's close
                if self._lost == "closed":
                    raise WireError("the body ended before its end was sent")
                raise WireError(f"the body broke: {self._lost}")
            await self._wait()

    def release(self) -> bool:
        """After a response: whether the connection may carry the next request (the response was read to
        its end, and both sides keep the connection)."""
        parser = self._parser
        if parser is None or not (parser.done and parser.keep_alive) or parser.overrun or parser.body_bytes:
            return False
        self._parser = None
        return self.usable

    def _reading(self) -> _ResponseParser:
        if self._parser is None:
            raise WireError("no request is out on this connection")
        return self._parser

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


_Key = tuple[str, str, int]


@functools.lru_cache(maxsize=1024)
def _route(url: str) -> tuple[_Key, str, str]:
    """Connection key, request target and host header of ``url``; a gateway calls few distinct URLs (one
    per model), so each is split once."""
    parts = urlsplit(url)
    scheme = parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return (scheme, parts.hostname or "", port), target, parts.netloc


class WirePool:
    """Connections by scheme, host and port; idle ones are kept ``keepalive_expiry`` seconds."""

    def __init__(self, *, max_idle: int = 200, keepalive_expiry: float = 2.0) -> None:
        self._idle: dict[_Key, list[_Connection]] = {}
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._tls: ssl.SSLContext | None = None

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _take(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            if now - connection.idle_since < self._expiry and connection.usable:
                return connection
            connection.close()
        return None

    def _give_back(self, key: _Key, connection: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        idle.append(connection)

    async def _open(self, key: _Key) -> _Connection:
        scheme, host, port = key
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(loop), host, port, ssl=tls, server_hostname=host if tls else None
            )
        except OSError as exc:
            raise WireError(f"cannot connect: {type(exc).__name__}") from None
        return connection

    async def request(self, url: str, headers: Mapping[str, str], body: bytes) -> WireResponse:
        """``POST url``: the response with its head read; its body is read through the response."""
        key, target, netloc = _route(url)
        lines = [f"POST {target} HTTP/1.1", f"host: {netloc}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        connection = self._take(key)
        if connection is not None:
            try:
                return await self._exchange(key, connection, message)
            except WireError:
                # A kept-alive connection the server closed meanwhile: once more on a new one.
                connection.close()
        return await self._exchange(key, await self._open(key), message)

    async def _exchange(self, key: _Key, connection: _Connection, message: bytes) -> WireResponse:
        parser = _ResponseParser()
        try:
            connection.send(message, parser)
            received = await connection.head()
        except BaseException:
            connection.close()
            raise
        return WireResponse(self, key, connection, parser, received)


class _ResponseParser:
    """One response parsed by llhttp (``httptools``, in C): the head, then the body as it arrives, with
    chunked framing removed; every framing error is a ``WireError``."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.headers: dict[str, str] = {}
        self.head_done = False
        self.done = False
        self.keep_alive = False
        self.overrun = False
        self._interim = False
        self._body: list[bytes] = []
        self.body_bytes = 0  # parsed body not yet taken
        self._head_bytes = 0

    # llhttp's callbacks
    def on_message_begin(self) -> None:
        if self.done:
            self.overrun = True  # bytes after the response: the connection cannot be trusted any more

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").strip()
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        if 100 <= self.status < 200:
            # An interim response (103 Early Hints, a stray 100 Continue): its headers are not the answer's,
            # and the parser reads the final response after it.
            self._interim = True
            self.headers = {}
            return
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.done = True
        # Read here: llhttp resets its flags for the next message once this callback returns.
        self.keep_alive = bool(self._parser.should_keep_alive())

    @property
    def status(self) -> int:
        return int(self._parser.get_status_code())

    @property
    def delimited(self) -> bool:
        """Whether the body's end is marked (chunked or a length) rather than the connection's close."""
        return (
            "chunked" in self.headers.get("transfer-encoding", "").lower() or "content-length" in self.headers
        )

    def parse(self, data: bytes) -> None:
        """Parse ``data``, keeping the body it completed for ``take_body``; ``WireError`` when it breaks the
        framing or the head grows past its limit."""
        if not self.head_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise WireError(f"not a valid HTTP/1.1 response: {exc}") from None
        if not self.head_done and self._head_bytes > _MAX_HEAD:
            raise WireError(f"a response head larger than {_MAX_HEAD} bytes")

    def take_body(self) -> bytes:
        """The body parsed since the last take, in one piece."""
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self.body_bytes = 0
        return body


class WireResponse:
    """A response whose head has been read. Read the body with ``aiter_bytes`` or ``aread``, then
    ``aclose``: a body read to its end goes back to the pool with its connection."""

    def __init__(
        self, pool: WirePool, key: _Key, connection: _Connection, parser: _ResponseParser, received: bytes
    ) -> None:
        self._pool = pool
        self._key = key
        self._connection: _Connection | None = connection
        self._parser = parser
        self._received = received
        self.status_code = parser.status
        self.headers = parser.headers

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives: everything parsed since the last read, de-chunked, in one piece."""
        connection = self._connection
        if connection is None:
            return
        received, self._received = self._received, b""
        if received:
            yield received
        delimited = self._parser.delimited
        while (body := await connection.body(delimited)) is not None:
            yield body

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if connection.release():
            self._pool._give_back(self._key, connection)
        else:
            connection.close()
