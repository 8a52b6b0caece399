"""SSE-aware fault injection: the mitmproxy addon that applies a fault plan
(``aigw_harness.proxy.fault_plan``).

A ``FaultPlan`` says what goes wrong with one response:

- ``status``: replace the status code (the body is left as the upstream sent it);
- ``cut_after``: end the stream after N events (the rest, ``[DONE]`` included, never arrives);
- ``drop``: event indices (0-based) that are removed;
- ``corrupt``: event indices whose data is cut in half, so that JSON no longer parses;
- ``delay_head_ms``: hold the response head back (adds to time to first byte);
- ``delay_events``: event index -> milliseconds to wait before that event.

``SSEEventFilter`` applies the event faults to a byte stream; it decodes with ``aigw_harness.sse`` and
re-encodes the events it passes in canonical form (LF line ends, comments dropped) — only flows that a
plan selects are touched at all.

mitmproxy's stream callable is synchronous, so the addon cannot wait between events without stalling the
proxy: ``delay_events`` is honoured by the replay server (``aigw_harness.proxy.replay``) and rejected here
with a message saying so. The head delay is an async hook and works in the proxy.

Addon options: ``aigw_fault_status`` (0 = off), ``aigw_fault_cut_after`` (-1 = off), ``aigw_fault_drop``
and ``aigw_fault_corrupt`` (comma-separated indices), ``aigw_fault_delay_head_ms``, ``aigw_fault_path``
(regular expression on the request path; empty = every flow).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from mitmproxy import ctx, exceptions, http

from aigw_harness.proxy.fault_plan import FaultPlan, SSEEventFilter, parse_indices

__all__ = ["FaultInjector", "FaultPlan", "SSEEventFilter", "parse_indices"]

OptionsError: type[Exception] = exceptions.OptionsError


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
