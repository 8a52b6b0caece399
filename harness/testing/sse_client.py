"""A client for asserting on ``/chat`` streams: every event recorded with its arrival time.

```python
async with SSEClient() as client:
    async with client.stream(f"{base_url}/chat", json=body, headers={"x-tenant-id": "alpha"}) as stream:
        await stream.read()
    stream.assert_contract()
    assert stream.content == "Hello"
```

``stream()`` sends the request and hands over a ``ChatStream`` once the response headers are in. Reading is
up to the caller: ``await stream.read()`` to the end, or ``async for event in stream`` to react to events as
they arrive (leaving the block early closes the connection, which is how a test models a client that goes
away). Events are decoded by ``aigw_harness.sse``; a connection that fails mid-stream is recorded, not raised,
so that the assertions can say what the client saw.

Does not judge anything itself: the rules live in ``aigw_harness.testing.stream_contract``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Self

import httpx

from aigw_harness.sse import ServerSentEvent, SSEDecoder
from aigw_harness.testing import stream_contract
from aigw_harness.testing.stream_contract import Violation

__all__ = ["ChatStream", "SSEClient", "StreamContractError", "TimedEvent"]


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """One event and when it arrived, in milliseconds since the request was sent."""

    sse: ServerSentEvent
    t_ms: float

    @property
    def event(self) -> str:
        return self.sse.event

    @property
    def data(self) -> str:
        return self.sse.data

    def json(self) -> Any:
        """The data as JSON; an event whose data is not JSON raises ``AssertionError`` saying so."""
        try:
            return json.loads(self.sse.data)
        except ValueError:
            message = f"AIGW: the {self.event} event's data is not JSON: {self.sse.data!r}"
            raise AssertionError(message) from None


class StreamContractError(AssertionError):
    """A stream broke the ``/chat`` contract; ``violations`` lists every broken rule."""

    def __init__(self, summary: str, violations: list[Violation], stream: ChatStream) -> None:
        self.violations = violations
        self.stream = stream
        lines = [f"AIGW: {summary}"]
        lines += [f"  - {violation}" for violation in violations]
        lines.append(stream.describe())
        super().__init__("\n".join(lines))


class _State(Enum):
    OPEN = "open"
    FINISHED = "finished"
    CLOSED = "closed"


class ChatStream:
    """One streamed response as received: status, headers, raw bytes and timed events."""

    def __init__(self, method: str, url: str, response: httpx.Response, started: float) -> None:
        self.method = method
        self.url = url
        self._response = response
        self._started = started
        self._decoder = SSEDecoder()
        self._body = response.aiter_bytes()
        self._events: list[TimedEvent] = []
        self._yielded = 0  # how many events an iteration has handed out
        self._chunks: list[tuple[float, bytes]] = []
        self._state = _State.OPEN
        self.transport_error: str | None = None
        """Why the connection failed mid-stream (``None`` when it ended normally or was closed by us)."""
        self.closed_early = False
        """The client closed the connection before the server ended the stream."""

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    @property
    def events(self) -> list[TimedEvent]:
        """The events received so far, in order."""
        return list(self._events)

    @property
    def sse_events(self) -> list[ServerSentEvent]:
        return [event.sse for event in self._events]

    @property
    def chunks(self) -> list[tuple[float, bytes]]:
        """The body as it arrived: ``(t_ms, bytes)`` per read."""
        return list(self._chunks)

    @property
    def raw(self) -> bytes:
        return b"".join(chunk for _, chunk in self._chunks)

    @property
    def finished(self) -> bool:
        """The server ended the stream (or the connection failed) and everything was read."""
        return self._state is _State.FINISHED

    @property
    def truncated(self) -> bool:
        """The stream ended in the middle of an event."""
        return self._decoder.truncated

    def __aiter__(self) -> AsyncIterator[TimedEvent]:
        """Yield events as they arrive, until the stream ends; a later loop resumes where one stopped."""
        if self._state is _State.CLOSED:
            raise RuntimeError("The stream was closed; iterate over it inside its 'async with' block.")
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TimedEvent]:
        while True:
            while self._yielded < len(self._events):
                self._yielded += 1
                yield self._events[self._yielded - 1]
            if self._state is not _State.OPEN:
                return
            await self._receive()

    async def read(self) -> list[TimedEvent]:
        """Read to the end of the stream and return every event."""
        if self._state is _State.CLOSED:
            raise RuntimeError("The stream was closed; read it inside its 'async with' block.")
        while self._state is _State.OPEN:
            await self._receive()
        self._yielded = len(self._events)
        return self.events

    async def _receive(self) -> None:
        """Take the next chunk off the connection, or finish the stream when there is none."""
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            self._finish()
            return
        except httpx.TransportError as exc:
            self.transport_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._finish()
            return
        t_ms = self._elapsed_ms()
        self._chunks.append((t_ms, chunk))
        self._events += [TimedEvent(sse, t_ms) for sse in self._decoder.feed(chunk)]

    def _finish(self) -> None:
        t_ms = self._elapsed_ms()
        self._events += [TimedEvent(sse, t_ms) for sse in self._decoder.flush()]
        self._state = _State.FINISHED

    async def _close(self) -> None:
        if self._state is _State.OPEN:
            self.closed_early = True
            self._state = _State.CLOSED
        # httpx hands out an async generator; closing it first keeps its cleanup out of the GC.
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None:
            await aclose()
        await self._response.aclose()

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000.0

    # What was received.

    @property
    def data_events(self) -> list[TimedEvent]:
        """The token events (SSE ``message`` events)."""
        return [event for event in self._events if event.event == stream_contract.MESSAGE]

    @property
    def content(self) -> str:
        """The concatenated ``content`` of the token events."""
        parts: list[str] = []
        for event in self.data_events:
            body = stream_contract.payload(event.data)
            if isinstance(body, dict) and isinstance(body.get("content"), str):
                parts.append(body["content"])
        return "".join(parts)

    @property
    def done(self) -> Any:
        """The first ``done`` event's payload, or ``None``."""
        return self._first_payload(stream_contract.DONE)

    @property
    def error(self) -> Any:
        """The first ``error`` event's payload, or ``None``."""
        return self._first_payload(stream_contract.ERROR)

    @property
    def ttft_ms(self) -> float | None:
        """Milliseconds from sending the request to the first token event."""
        tokens = self.data_events
        return tokens[0].t_ms if tokens else None

    @property
    def gaps_ms(self) -> list[float]:
        """Milliseconds between consecutive token events."""
        times = [event.t_ms for event in self.data_events]
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def _first_payload(self, name: str) -> Any:
        for event in self._events:
            if event.event == name:
                return stream_contract.payload(event.data)
        return None

    # Assertions: each raises StreamContractError listing what is wrong and the events received.

    def assert_contract(self) -> None:
        """Every rule of the platform's streaming ``/chat`` contract holds."""
        self._assert(
            "the stream breaks the /chat contract",
            self._transport_violations() + stream_contract.check_contract(self),
        )

    def assert_one_terminal_done(self) -> None:
        """Exactly one ``done`` event, and it is the last one."""
        violations = stream_contract.check_one_terminal_done(self)
        self._assert("the stream does not end with exactly one done", violations)

    def assert_nothing_after_done(self) -> None:
        self._assert("events follow done", stream_contract.check_nothing_after_done(self))

    def assert_error_event(self, *, code: str | None = None, message: str | None = None) -> None:
        """One well-formed ``error`` event, directly before ``done``; ``code``/``message`` when given."""
        violations = stream_contract.check_error_event(self) + stream_contract.check_order(self)
        error = self.error
        if error is None:
            violations.insert(0, Violation("error-event", "no error event"))
        elif isinstance(error, dict):
            for key, expected in (("code", code), ("message", message)):
                if expected is not None and error.get(key) != expected:
                    violations.append(
                        Violation("error-event", f"{key} is {error.get(key)!r}, expected {expected!r}")
                    )
        self._assert("the stream has no error event of the expected shape", violations)

    def assert_no_error_event(self) -> None:
        error_at = [i for i, e in enumerate(self._events, 1) if e.event == stream_contract.ERROR]
        violations = [Violation("error-event", f"error event #{i}") for i in error_at]
        self._assert("the stream carries an error event", self._transport_violations() + violations)

    def assert_progressive(self, *, min_data_events: int = 2) -> None:
        """Tokens arrived as several events over time, not all in one read."""
        tokens = self.data_events
        violations: list[Violation] = []
        if len(tokens) < min_data_events:
            violations.append(
                Violation("progressive", f"{len(tokens)} token event(s); expected at least {min_data_events}")
            )
        elif tokens[0].t_ms == tokens[-1].t_ms:
            violations.append(Violation("progressive", f"all {len(tokens)} token events arrived in one read"))
        self._assert("the stream is not progressive", violations)

    def _transport_violations(self) -> list[Violation]:
        if self.transport_error is None:
            return []
        return [Violation("connection", f"the connection failed mid-stream ({self.transport_error})")]

    def _assert(self, summary: str, violations: list[Violation]) -> None:
        if self._state is _State.OPEN:
            raise RuntimeError(
                "The stream has not been read to its end; call 'await stream.read()' before asserting on it."
            )
        if violations:
            raise StreamContractError(summary, violations, self)

    def describe(self, *, limit: int = 40) -> str:
        """The exchange as a reader wants it in a failure: request line, status, headers, timed events."""
        content_type = self.headers.get("content-type", "no content-type")
        state = "closed early by the client" if self.closed_early else self._state.value
        lines = [
            f"{self.method} {self.url} -> {self.status_code} {content_type}; "
            f"{len(self._events)} event(s), {len(self.raw)} bytes, {state}"
        ]
        shown = self._events if len(self._events) <= limit else self._events[: limit - 1]
        lines += [_event_line(index, event) for index, event in enumerate(shown, start=1)]
        if len(shown) < len(self._events):
            lines.append(f"  ... {len(self._events) - len(shown) - 1} more")
            lines.append(_event_line(len(self._events), self._events[-1]))
        if not self._events and self.raw:
            lines.append(f"  body: {_clip(self.raw.decode('utf-8', errors='replace'), 300)}")
        return "\n".join(lines)


class SSEClient:
    """Sends ``/chat`` requests and records the streamed answers; an async context manager."""

    def __init__(
        self,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        trust_env: bool = False,
    ) -> None:
        # Proxy variables are ignored unless asked for: a proxy in between would be part of what is tested.
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            transport=transport,
            trust_env=trust_env,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def stream(
        self,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        content: bytes | str | None = None,
    ) -> AsyncIterator[ChatStream]:
        """Send one request; the ``ChatStream`` is open inside the block and closed after it."""
        request = self._client.build_request(method, url, json=json, content=content, headers=headers)
        started = time.perf_counter()
        response = await self._client.send(request, stream=True)
        chat = ChatStream(method, str(request.url), response, started)
        try:
            yield chat
        finally:
            await chat._close()


def _event_line(index: int, event: TimedEvent) -> str:
    return f"  #{index:<3} +{event.t_ms:8.1f} ms  {event.event:<8} {_clip(event.data)}"


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
