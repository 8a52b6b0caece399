"""What a fault plan does to a stream: pure data and a byte filter, with no mitmproxy in sight.

``FaultPlan`` says which events to cut, drop, corrupt or delay and which status to answer;
``SSEEventFilter`` applies it to a stream of bytes. The mitmproxy addon (``aigw_harness.proxy.faults``) and
the replay server (``aigw_harness.proxy.replay``) both use them, so replaying cassettes needs no mitmproxy
install.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aigw_harness.sse import ServerSentEvent, SSEDecoder, encode_event

__all__ = ["FaultPlan", "SSEEventFilter", "corrupt_data", "parse_indices"]


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

    def _encode(self, event: ServerSentEvent, data: str) -> bytes:
        new_id = event.id if event.id != self._last_id else None
        self._last_id = event.id
        return encode_event(
            data,
            event=None if event.event == "message" else event.event,
            id=new_id or None,
            retry=event.retry,
        )
