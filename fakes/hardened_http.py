"""Server plumbing that no request can crash, hang or poison: limits, strict JSON, timeouts for incomplete
requests, and refusals from the HTTP layer in the envelope of the surface that refuses.

Shared: the fake serves with it (Cloudflare's envelopes), and so can the reference gateway (the platform's);
it imports nothing else of ``fakes``, so either side can use it without pulling in the other. The caller
hands over an ``Envelope``, a function from status and message to a JSON body, and gets:

- ``uvicorn_settings(limits, envelope)``: keyword arguments for ``uvicorn.Config`` that bound the request
  head (size and time to arrive), close idle connections, and answer what the HTTP parser refuses (today
  uvicorn's plain-text ``400 Invalid HTTP request received.``) with the envelope;
- ``check_head(scope, limits)`` and ``read_body(receive, limits, declared_length)``: the head bounded in
  size, the body in size and in time, or ``Refused``;
- ``loads_strict(data, max_depth, surrogates)``: JSON that is finite and bounded (no ``NaN``/``Infinity``,
  no number that overflows a float, no integer beyond +/-2**64, at most ``max_depth`` levels) with valid
  Unicode (a lone surrogate becomes U+FFFD or is refused), else ``JsonRefused`` (a ``ValueError``) saying
  what and where;
- ``check_finite(value, where)``, ``check_tree(value)``: the same number rules (and depth) for data parsed
  elsewhere (YAML), for validators.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

__all__ = [
    "MAX_JSON_INTEGER",
    "Disconnected",
    "Envelope",
    "JsonRefused",
    "Limits",
    "Refused",
    "check_finite",
    "check_head",
    "check_tree",
    "listening_socket",
    "loads_strict",
    "read_body",
    "refusal_bytes",
    "uvicorn_settings",
]

logger = logging.getLogger("aigw_fakes.hardened_http")

MAX_JSON_INTEGER = 2**64
"""Integers beyond +/-2**64 are refused: no client has a use for them, and JavaScript cannot hold them."""

type Envelope = Callable[[int, str], bytes]
"""``(status, message) -> JSON body`` in the refusing surface's error shape."""

_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may take. Times are seconds of real time."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_head_bytes: int = 64 * 1024
    """Request line and headers together."""
    head_timeout_s: float = 10.0
    """From the connection (or the first byte of a kept-alive connection's next request) to a whole head."""
    body_timeout_s: float = 30.0
    """To read a whole request body."""
    idle_timeout_s: float = 5.0
    """A kept-alive connection with no request."""
    max_json_depth: int = 128

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_head_bytes", "max_json_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 < value <= MAX_JSON_INTEGER:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("head_timeout_s", "body_timeout_s", "idle_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or not 0 < value <= 86_400:
                raise ValueError(f"{name}: expected seconds in (0, 86400], got {value!r}")


class Refused(Exception):
    """A request refused before it reached a handler: answer ``status`` with ``message`` in the envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class JsonRefused(ValueError):
    """JSON that is not acceptable; the message names what and where (``$.a[2]``)."""


# --- strict JSON ------------------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    if len(text) > 21:  # 2**64 has 20 digits; a longer literal is out of range before converting it
        raise JsonRefused(f"integer {text[:24]}... is beyond +/-2**64")
    value = int(text)
    if abs(value) > MAX_JSON_INTEGER:
        raise JsonRefused(f"integer {text} is beyond +/-2**64")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused(f"number {text[:24]} is too large for a float")
    return value


def _path(parts: tuple[str | int, ...]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean_text(text: str, where: tuple[str | int, ...], surrogates: Literal["replace", "refuse"]) -> str:
    # json.loads joins escaped surrogate pairs, so any surrogate left is a lone one: not valid Unicode.
    if text.isascii():
        return text
    found = _SURROGATE.search(text)
    if found is None:
        return text
    if surrogates == "refuse":
        raise JsonRefused(
            f"{_path(where)}: a lone surrogate (not valid Unicode) at character {found.start()}"
        )
    return _SURROGATE.sub("\ufffd", text)


def _walk(value: Any, max_depth: int, surrogates: Literal["replace", "refuse"], numbers: bool) -> Any:
    """Check depth, numbers and strings without recursion (a deep document must not exhaust the stack)."""
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, tuple[str | int, ...]]] = [(root, 0, ())]
    while stack:
        parent, key, where = stack.pop()
        item = parent[key]
        if len(where) > max_depth:
            raise JsonRefused(f"{_path(where[:8])}...: nested deeper than {max_depth} levels")
        if isinstance(item, str):
            cleaned = _clean_text(item, where, surrogates)
            if cleaned is not item:
                parent[key] = cleaned
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            if numbers:
                check_finite(item, _path(where))
        elif isinstance(item, dict):
            if not all(isinstance(name, str) and name.isascii() for name in item):
                fixed = {
                    _clean_text(name, (*where, name), surrogates) if isinstance(name, str) else name: child
                    for name, child in item.items()
                }
                item.clear()
                item.update(fixed)
            stack.extend((item, name, (*where, str(name))) for name in item)
        elif isinstance(item, list):
            stack.extend((item, index, (*where, index)) for index in range(len(item)))
    return root[0]


_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_finite_float
)


def loads_strict(
    data: bytes | str, max_depth: int = 128, surrogates: Literal["replace", "refuse"] = "replace"
) -> Any:
    """Parse JSON under the rules in the module docstring; ``JsonRefused`` (a ``ValueError``) otherwise.

    Invalid UTF-8 and syntax errors come out as ``ValueError`` too (``UnicodeDecodeError``,
    ``json.JSONDecodeError``), so one ``except ValueError`` handles every refusal.
    """
    if isinstance(data, bytes | bytearray):
        text = bytes(data).decode(json.detect_encoding(data), "surrogatepass")
    else:
        text = data
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise JsonRefused(f"nested deeper than {max_depth} levels") from None
    if isinstance(value, dict | list):
        if text.isascii() and "\\u" not in text and text.count("[") + text.count("{") <= max_depth:
            return value  # no surrogate can hide in it, and it cannot nest deeper than it has brackets
        return _walk(value, max_depth, surrogates, numbers=False)
    if isinstance(value, str):
        return _clean_text(value, (), surrogates)
    return value


def check_finite(value: Any, where: str = "$") -> None:
    """Refuse a non-finite float or an integer beyond +/-2**64 (``ValueError``), for data parsed elsewhere."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise JsonRefused(f"{where}: {value} is not a finite number")
    if isinstance(value, int) and abs(value) > MAX_JSON_INTEGER:
        raise JsonRefused(f"{where}: integer beyond +/-2**64")


def check_tree(value: Any, max_depth: int = 128) -> None:
    """The rules of ``loads_strict`` for a tree parsed elsewhere (YAML): every number finite and within
    +/-2**64, every string valid Unicode, at most ``max_depth`` levels; ``JsonRefused`` (a ``ValueError``)
    names the first offence. The tree is not changed."""
    if isinstance(value, dict | list):
        _walk(value, max_depth, "refuse", numbers=True)
    elif isinstance(value, str):
        _clean_text(value, (), "refuse")
    else:
        check_finite(value)


# --- request heads and bodies -----------------------------------------------------------------------------


def check_head(scope: Mapping[str, Any], limits: Limits) -> None:
    """``Refused`` (431) when the request line and headers exceed ``max_head_bytes``. The HTTP parser bounds
    a head that arrives in pieces; one that arrives whole is measured here."""
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 16
    for name, value in scope.get("headers", ()):
        size += len(name) + len(value) + 4
    if size > limits.max_head_bytes:
        raise Refused(431, f"request head larger than {limits.max_head_bytes} bytes")


type Receive = Callable[[], Awaitable[Mapping[str, Any]]]


class Disconnected(Exception):
    """The client went away before its request body was complete."""


async def read_body(
    receive: Receive, limits: Limits, declared_length: str | None = None, max_bytes: int | None = None
) -> bytes:
    """The request body; ``Refused`` (413, 408) when it is larger than ``max_bytes`` (default:
    ``limits.max_body_bytes``) or does not arrive within ``body_timeout_s``; ``Disconnected`` when the
    client leaves."""
    limit = limits.max_body_bytes if max_bytes is None else max_bytes
    if (
        declared_length is not None
        and declared_length.isdigit()
        and (len(declared_length) > 18 or int(declared_length) > limit)
    ):
        raise Refused(413, f"request body larger than {limit} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Disconnected
                body += message.get("body", b"")
                if len(body) > limit:
                    raise Refused(413, f"request body larger than {limit} bytes")
                if not message.get("more_body", False):
                    return bytes(body)
    except TimeoutError:
        raise Refused(408, f"request body incomplete after {limits.body_timeout_s:g} s") from None


# --- the HTTP layer ---------------------------------------------------------------------------------------


def refusal_bytes(status: int, body: bytes) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, for refusals written past the ASGI app."""
    reason = _REASONS.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


@dataclass(frozen=True, slots=True)
class _Guard:
    limits: Limits
    envelope: Envelope


class _HeadTooLarge(Exception):
    """Raised in a parser callback: the request line and headers passed ``max_head_bytes``."""


class _NoHost(Exception):
    """Raised in a parser callback: an HTTP/1.1 request without ``host`` (RFC 9112 asks for a 400)."""


class _HeadWithFirstBody:
    """A request cycle's view of the connection that holds the response head until the cycle writes again
    in the same event-loop round, so that the head and the first part of the body leave in one write (one
    system call, one wake-up of the client). A head whose body is not ready in that round leaves at the end
    of the round, so no head waits longer than the round it was written in."""

    __slots__ = ("_held", "_loop", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._waiting = True  # nothing written yet: the next write is the head (or a 100 Continue)

    def write(self, data: bytes) -> None:
        if self._waiting:
            self._waiting = False
            self._held = data
            self._loop.call_soon(self._flush)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's protocol on httptools (llhttp, in C) with the request head bounded in size and time, a
    ``host`` required of HTTP/1.1, a bounded wait for a refused request's unread body, refusals in the
    caller's envelope, and each response's head written with its first body part."""

    guard: ClassVar[_Guard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._reading_head = True  # between messages or inside a head: bytes count toward the head limit
        self._head_bytes = 0
        self._message_open = False  # a request whose body has not been read to its end
        self._parsed_head = 0  # request line and header fields of the message being parsed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_drain_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._reading_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no upgrade is served: the request goes on as plain HTTP, as uvicorn's own protocol does
        except httptools.HttpParserError as exc:
            limit = self.guard.limits.max_head_bytes
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(431, f"request head larger than {limit} bytes")
            elif isinstance(exc.__context__, _NoHost):
                self._refuse(400, "an HTTP/1.1 request needs a host header")
            else:
                self._refuse(400, "the request is not valid HTTP/1.1")
            return
        if self._reading_head and self._head_bytes > self.guard.limits.max_head_bytes:
            self._refuse(431, f"request head larger than {self.guard.limits.max_head_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._message_open = True
        self._parsed_head = 0
        self._arm_head_timer()  # called at a request's first byte: its head is timed from there

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        if self.parser.get_http_version() == "1.1" and not any(name == b"host" for name, _ in self.headers):
            raise _NoHost
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._message_open = False
        self._reading_head = True
        self._head_bytes = 0
        self._cancel_drain_timer()

    def _count_head(self, size: int) -> None:
        # The parser hands over whole fields, so a head that arrived in one read is measured here.
        self._parsed_head += size
        if self._parsed_head > self.guard.limits.max_head_bytes:
            raise _HeadTooLarge

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        cycle.transport = _HeadWithFirstBody(self.transport, self.loop)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._message_open and self._drain_timer is None and not self.transport.is_closing():
            # Answered before the body was read (a refusal): the rest is discarded, for a bounded time.
            self._drain_timer = self.loop.call_later(self.guard.limits.body_timeout_s, self._drain_timed_out)

    def _drain_timed_out(self) -> None:
        self._drain_timer = None
        if self._message_open and not self.transport.is_closing():
            self.transport.close()

    def _cancel_drain_timer(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.guard.limits.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._reading_head:
            return
        if self._message_open:  # a request has begun and its head is not complete
            self._refuse(408, f"request head incomplete after {self.guard.limits.head_timeout_s:g} s")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer in the envelope and close; a response already under way is only cut."""
        self._cancel_head_timer()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            if cycle.response_started:
                self.transport.close()
                return
        if not self.transport.is_closing():
            self.transport.write(refusal_bytes(status, self.guard.envelope(status, message)))
            self.transport.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, for ``uvicorn.Server.serve(sockets=[...])``.

    It names its protocol (IPPROTO_TCP, not the default 0): asyncio's own event loop sets TCP_NODELAY on
    accepted connections only then, and without it each event on a kept-alive connection can wait ~40 ms
    for Nagle's algorithm and delayed ACKs. It listens before it is returned: a client that connects as
    soon as the address is announced waits in the backlog instead of being refused."""
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_settings(limits: Limits, envelope: Envelope) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``: the guarded protocol and the idle timeout."""
    protocol = type("GuardedProtocol", (_GuardedProtocol,), {"guard": _Guard(limits, envelope)})
    # No proxy stands in front of a local test server: X-Forwarded-* headers are the client's, not facts.
    return {
        "http": protocol,
        "timeout_keep_alive": limits.idle_timeout_s,
        "ws": "none",
        "proxy_headers": False,
    }
