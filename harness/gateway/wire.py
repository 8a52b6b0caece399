"""A small HTTP/1.1 client on asyncio streams for the upstream call, with kept-alive connections.

Why not httpx here: relaying a stream is the gateway's hot path, and httpcore hands a chunked body over
one chunk at a time even when many are buffered (Workers AI, and the fake, send one chunk per event), so
the gateway saw one event per read and wrote one event per syscall; its pool also polls every idle socket
on each request. This client reads whatever the socket has and de-chunks all of it at once, so the events
that arrived together are relayed together.

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

__all__ = ["WireError", "WirePool", "WireResponse"]

_READ = 65536
_MAX_HEAD = 65536


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

    async def request(self, url: str, headers: Mapping[str, str], body: bytes) -> WireResponse:
        """``POST url``: the response with its head read; its body is read through the response."""
        parts = urlsplit(url)
        scheme = parts.scheme
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, host, port)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"host: {parts.netloc}", f"content-length: {len(body)}"]
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
        try:
            connection.writer.write(message)
            head = await connection.reader.readuntil(b"\r\n\r\n")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            connection.close()
            raise WireError(f"no response head: {type(exc).__name__}") from None
        except BaseException:
            connection.close()
            raise
        try:
            status, headers = _parse_head(head)
        except ValueError as exc:
            connection.close()
            raise WireError(str(exc)) from None
        return WireResponse(self, key, connection, status, headers)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP/1.1 status line: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"not a header line: {line[:60]!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(rest[:3]), headers


class WireResponse:
    """A response whose head has been read. Read the body with ``aiter_bytes`` or ``aread``, then
    ``aclose``: a body read to its end goes back to the pool with its connection."""

    def __init__(
        self, pool: WirePool, key: _Key, connection: _Connection, status: int, headers: dict[str, str]
    ) -> None:
        self._pool = pool
        self._key = key
        self._connection: _Connection | None = connection
        self.status_code = status
        self.headers = headers
        self._complete = False
        self._reusable = headers.get("connection", "").lower() != "close"

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives: everything one read brought, de-chunked, in one piece."""
        connection = self._connection
        if connection is None:
            return
        reader = connection.reader
        encoding = self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        try:
            if "chunked" in encoding:
                decoder = _Chunks()
                while not decoder.done:
                    data = await reader.read(_READ)
                    if not data:
                        raise WireError("the chunked body ended early")
                    out = decoder.feed(data)
                    if out:
                        yield out
            elif length is not None and length.isdigit():
                remaining = int(length)
                while remaining > 0:
                    data = await reader.read(min(remaining, _READ))
                    if not data:
                        raise WireError("the body ended before its content-length")
                    remaining -= len(data)
                    yield data
            else:
                self._reusable = False
                while data := await reader.read(_READ):
                    yield data
        except OSError as exc:
            raise WireError(f"the body broke: {type(exc).__name__}") from None
        self._complete = True

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._complete and self._reusable:
            self._pool._give_back(self._key, connection)
        else:
            connection.close()


class _Chunks:
    """Incremental de-chunking of a ``transfer-encoding: chunked`` body."""

    def __init__(self) -> None:
        self._buffer = b""
        self._remaining = 0  # data bytes left in the current chunk
        self._crlf = False  # the CRLF after a chunk's data is due
        self._trailers = False  # the last chunk was read; trailers until a blank line
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buffer = self._buffer + data
        out: list[bytes] = []
        position = 0
        while not self.done:
            if self._remaining:
                take = buffer[position : position + self._remaining]
                out.append(take)
                self._remaining -= len(take)
                position += len(take)
                if self._remaining:
                    break
                self._crlf = True
                continue
            end = buffer.find(b"\r\n", position)
            if end < 0:
                break
            line = buffer[position:end]
            position = end + 2
            if self._crlf:
                if line:
                    raise WireError("a chunk did not end with CRLF")
                self._crlf = False
                continue
            if self._trailers:
                if not line:
                    self.done = True
                continue
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16 or size_text.strip(b"0123456789abcdefABCDEF"):
                raise WireError(f"not a chunk size: {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                self._trailers = True
            else:
                self._remaining = size
        self._buffer = buffer[position:]
        return b"".join(out)
