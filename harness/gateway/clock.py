"""The gateway's notion of time: wall-clock time for UTC day/month keys, rate-limit windows, session
retention and KV propagation, behind one small interface so that tests and scenarios can move it.

Durations measured for metrics (time to first token, latency) use the event loop's monotonic clock and
are not affected by moving this clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch (UTC)."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to: ``set`` an instant or ``advance`` by some seconds."""

    def __init__(self, start: datetime | float | None = None) -> None:
        self._now = 0.0
        self.set(start if start is not None else time.time())

    def now(self) -> float:
        return self._now

    def set(self, instant: datetime | float) -> None:
        if isinstance(instant, datetime):
            if instant.tzinfo is None:
                raise ValueError("ManualClock.set needs an aware datetime (for example with tzinfo=UTC)")
            self._now = instant.timestamp()
        else:
            self._now = float(instant)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot move backwards (advance by {seconds})")
        self._now += seconds

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self._now, tz=UTC)

    def __repr__(self) -> str:
        return f"ManualClock({self.utcnow().isoformat()})"
