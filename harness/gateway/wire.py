"""A small HTTP/1.1 client on asyncio streams for the upstream call, with kept-alive connections.

Why not httpx here: relaying a stream is the gateway's hot path, and httpcore hands a chunked body over
one chunk at a time even when many are buffered (Workers AI, and the fake, send one chunk per event), so
the gateway saw one event per read and wrote one event per syscall; its pool also polls every idle socket
on each request. This client reads whatever the socket has and de-chunks all of it at once, so the events
that arrived together are relayed together. Responses are parsed by llhttp (``httptools``, the parser the
servers use too), in C.

It does only what the upstream call needs: one request per connection at a time, ``content-length``,
chunked or read-to-close bodies, TLS for ``https``. Every failure of the connection or of the framing is a
``WireError``. Time limits are the caller's (``asyncio.timeout``). Injected ``httpx`` transports (tests)
bypass it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

__all__ = ["WireError", "WirePool", "WireResponse"]

_READ = 65536
_MAX_HEAD = 65536
_MAX_ROUTES = 1024


class WireError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0
    reused: bool = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


_Key = tuple[str, str, int]


class WirePool:
    """Connections by scheme, host and port; idle ones are kept ``keepalive_expiry`` seconds."""

    def __init__(self, *, max_idle: int = 200, keepalive_expiry: float = 2.0) -> None:
        self._idle: dict[_Key, list[_Connection]] = {}
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._tls: ssl.SSLContext | None = None
        self._routes: dict[str, tuple[_Key, str, str]] = {}

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
            if now - connection.idle_since < self._expiry and not connection.reader.at_eof():
                connection.reused = True
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
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=_MAX_HEAD)
        except OSError as exc:
            raise WireError(f"cannot connect: {type(exc).__name__}") from None
        return _Connection(reader, writer)

    def _route(self, url: str) -> tuple[_Key, str, str]:
        """Connection key, request target and host header of ``url``; a gateway calls few distinct URLs
        (one per model), so each is split once."""
        route = self._routes.get(url)
        if route is None:
            parts = urlsplit(url)
            scheme = parts.scheme
            port = parts.port or (443 if scheme == "https" else 80)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            route = ((scheme, parts.hostname or "", port), target, parts.netloc)
            if len(self._routes) >= _MAX_ROUTES:
                self._routes.clear()
            self._routes[url] = route
        return route

    async def request(self, url: str, headers: Mapping[str, str], body: bytes) -> WireResponse:
        """``POST url``: the response with its head read; its body is read through the response."""
        key, target, netloc = self._route(url)
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
        received = b""  # body bytes that came with the head
        try:
            connection.writer.write(message)
            while not parser.head_done:
                data = await connection.reader.read(_READ)
                if not data:
                    raise WireError("no response head: the connection closed")
                received += parser.feed(data)
        except OSError as exc:
            connection.close()
            raise WireError(f"no response head: {type(exc).__name__}") from None
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
        self._interim = False
        self._body: list[bytes] = []
        self._head_bytes = 0

    # llhttp's callbacks
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

    def feed(self, data: bytes) -> bytes:
        """Parse ``data``; the body bytes it completed, in one piece."""
        if not self.head_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise WireError(f"not a valid HTTP/1.1 response: {exc}") from None
        if not self.head_done and self._head_bytes > _MAX_HEAD:
            raise WireError(f"a response head larger than {_MAX_HEAD} bytes")
        body = b"".join(self._body)
        self._body.clear()
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
        """The body as it arrives: everything one read brought, de-chunked, in one piece."""
        connection = self._connection
        if connection is None:
            return
        parser = self._parser
        received, self._received = self._received, b""
        if received:
            yield received
        try:
            while not parser.done:
                data = await connection.reader.read(_READ)
                if not data:
                    if parser.delimited:
                        raise WireError("the body ended before its end was sent")
                    return  # read to the connection's close: ``aclose`` does not keep it
                body = parser.feed(data)
                if body:
                    yield body
        except OSError as exc:
            raise WireError(f"the body broke: {type(exc).__name__}") from None

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._parser.done and self._parser.keep_alive:
            self._pool._give_back(self._key, connection)
        else:
            connection.close()
