"""SSE-aware fault injection: the plan, the event filter, and the mitmproxy addon that applies them.

A ``FaultPlan`` says what goes wrong with one response:

- ``status``: replace the status code (the body is left as the upstream sent it);
- ``cut_after``: end the stream after N events (the rest, ``[DONE]`` included, never arrives);
- ``drop``: event indices (0-based) that are removed;
- ``corrupt``: event indices whose data is cut in half, so that JSON no longer parses;
- ``delay_head_ms``: hold the response head back (adds to time to first byte);
- ``delay_events``: event index -> milliseconds to wait before that event.

``SSEEventFilter`` applies the event faults to a byte stream; it decodes with ``harness.sse`` and
re-encodes the events it passes in canonical form (LF line ends, comments dropped) — only flows that a
plan selects are touched at all.

mitmproxy's stream callable is synchronous, so the addon cannot wait between events without stalling the
proxy: ``delay_events`` is honoured by the replay server (``harness.proxy.replay``) and rejected here with
a message saying so. The head delay is an async hook and works in the proxy.

Addon options: ``aigw_fault_status`` (0 = off), ``aigw_fault_cut_after`` (-1 = off), ``aigw_fault_drop``
and ``aigw_fault_corrupt`` (comma-separated indices), ``aigw_fault_delay_head_ms``, ``aigw_fault_path``
(regular expression on the request path; empty = every flow).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, exceptions, http

from harness.sse import ServerSentEvent, SSEDecoder, encode_event

__all__ = ["FaultInjector", "FaultPlan", "SSEEventFilter", "parse_indices"]

OptionsError: type[Exception] = exceptions.OptionsError


@dataclass(frozen=True)
class FaultPlan:
    status: int | None = None
    cut_after: int | None = None
    drop: frozenset[int] = frozenset()
    corrupt: frozenset[int] = frozenset()
    delay_head_ms: float = 0.0
    delay_events: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be between 100 and 599, not {self.status}")
        if self.cut_after is not None and self.cut_after < 0:
            raise ValueError(f"cut_after must be 0 or more, not {self.cut_after}")
        if self.delay_head_ms < 0 or any(v < 0 for v in self.delay_events.values()):
            raise ValueError("delays must not be negative")
        if any(i < 0 for i in (*self.drop, *self.corrupt, *self.delay_events)):
            raise ValueError("event indices must be 0 or more")

    @property
    def touches_events(self) -> bool:
        return self.cut_after is not None or bool(self.drop or self.corrupt)

    @property
    def is_empty(self) -> bool:
        return (
            self.status is None
            and not self.touches_events
            and not self.delay_head_ms
            and not self.delay_events
        )


def parse_indices(text: str, option: str) -> frozenset[int]:
    """``"1,3, 5"`` -> {1, 3, 5}; the message names the option and the bad item."""
    out: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not item.isdigit():
            raise ValueError(f"{option}: {item!r} is not an event index (use 0-based integers, e.g. 0,2)")
        out.add(int(item))
    return frozenset(out)


def corrupt_data(data: str) -> str:
    """Half of the data: JSON stops parsing, and a ``[DONE]`` marker stops matching."""
    return data[: max(1, len(data) // 2)] if len(data) > 1 else "\x00"


class SSEEventFilter:
    """A stream callable: bytes in, chunks out, with ``b""`` meaning the end of the stream.

    It returns a list, empty when nothing is to be sent: mitmproxy writes an empty ``bytes`` chunk as the
    chunked-encoding terminator, which would end the client's body early.
    """

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._decoder = SSEDecoder()
        self._index = 0  # events seen from upstream
        self._last_id = ""
        self.cut = False

    def __call__(self, data: bytes) -> list[bytes]:
        events = self._decoder.feed(data) if data else self._decoder.flush()
        out = b"".join(self.process(events))
        return [out] if out else []

    def process(self, events: list[ServerSentEvent]) -> list[bytes]:
        """The bytes to send for these upstream events, in order (one item per event sent)."""
        out: list[bytes] = []
        for event in events:
            index = self._index
            self._index += 1
            if self.cut or (self.plan.cut_after is not None and index >= self.plan.cut_after):
                self.cut = True
                continue
            if index in self.plan.drop:
                continue
            payload = corrupt_data(event.data) if index in self.plan.corrupt else event.data
            out.append(self._encode(event, payload))
        return out

    def index_of_next(self) -> int:
        return self._index

    def _encode(self, event: ServerSentEvent, data: str) -> bytes:
        new_id = event.id if event.id != self._last_id else None
        self._last_id = event.id
        return encode_event(
            data,
            event=None if event.event == "message" else event.event,
            id=new_id or None,
            retry=event.retry,
        )


class FaultInjector:
    def __init__(self) -> None:
        self.plan = FaultPlan()
        self._path: re.Pattern[str] | None = None
        self.applied = 0  # flows this addon changed
        self._options: Any = None

    def load(self, loader: Any) -> None:
        # This master's options, not the process-global ``ctx.options``: two proxies may run in one process.
        self._options = loader.master.options
        loader.add_option("aigw_fault_status", int, 0, "Replace the response status (0: keep it).")
        loader.add_option("aigw_fault_cut_after", int, -1, "End event streams after N events (-1: off).")
        loader.add_option("aigw_fault_drop", str, "", "Comma-separated 0-based event indices to drop.")
        loader.add_option("aigw_fault_corrupt", str, "", "Comma-separated 0-based event indices to corrupt.")
        loader.add_option("aigw_fault_delay_head_ms", int, 0, "Hold the response head back this long.")
        loader.add_option(
            "aigw_fault_delay_events", str, "", "Not supported in the proxy; see the replay server."
        )
        loader.add_option("aigw_fault_path", str, "", "Regular expression on the request path; empty: all.")

    def configure(self, updated: set[str]) -> None:
        if not any(name.startswith("aigw_fault_") for name in updated):
            return
        o = self._options if self._options is not None else ctx.options
        if o.aigw_fault_delay_events:
            raise OptionsError(
                "aigw_fault_delay_events: the proxy cannot wait between events (its stream hook is "
                "synchronous); use aigw_fault_delay_head_ms here, or the replay server's event delays"
            )
        try:
            plan = FaultPlan(
                status=o.aigw_fault_status or None,
                cut_after=None if o.aigw_fault_cut_after < 0 else o.aigw_fault_cut_after,
                drop=parse_indices(o.aigw_fault_drop, "aigw_fault_drop"),
                corrupt=parse_indices(o.aigw_fault_corrupt, "aigw_fault_corrupt"),
                delay_head_ms=float(o.aigw_fault_delay_head_ms),
            )
        except ValueError as exc:
            raise OptionsError(f"aigw fault options: {exc}") from None
        try:
            self._path = re.compile(o.aigw_fault_path) if o.aigw_fault_path else None
        except re.error as exc:
            raise OptionsError(f"aigw_fault_path: not a regular expression: {exc}") from None
        self.plan = plan

    def _selected(self, flow: http.HTTPFlow) -> bool:
        return self._path is None or bool(self._path.search(flow.request.path))

    async def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.error or not flow.live or flow.response is None:
            return
        if self.plan.is_empty or not self._selected(flow):
            return
        self.applied += 1
        if self.plan.delay_head_ms:
            await asyncio.sleep(self.plan.delay_head_ms / 1000.0)
        if self.plan.status is not None:
            flow.response.status_code = self.plan.status
        content_type = flow.response.headers.get("content-type", "")
        if self.plan.touches_events and content_type.split(";")[0].strip().lower() == "text/event-stream":
            event_filter = SSEEventFilter(self.plan)
            existing = flow.response.stream
            if callable(existing):
                flow.response.stream = _Chain(existing, event_filter)
            else:
                flow.response.stream = event_filter
            # The body length changes with the events.
            flow.response.headers.pop("content-length", None)


class _Chain:
    """Two stream callables in a row."""

    def __init__(self, first: Any, second: SSEEventFilter) -> None:
        self.first = first
        self.second = second

    def __call__(self, data: bytes) -> list[bytes]:
        produced = self.first(data)
        parts = [produced] if isinstance(produced, bytes) else list(produced)
        out = [chunk for part in parts if part for chunk in self.second(part)]
        if not data:
            out += self.second(b"")
        return out
