"""The fake's sense of wall-clock time, injectable so that tests can cross UTC day and window boundaries.

Only timestamps (``created_at``, the time part of log ids, rate and spend windows) read the clock. Delays
(time to first byte, token pacing, stalls) are real ``asyncio.sleep`` calls scaled by the time-scale factor:
moving a ``ManualClock`` never makes a stream go faster.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "iso_timestamp"]


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the Unix epoch (UTC)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that stands still until moved; ``advance`` and ``set`` move it."""

    def __init__(self, start: float | datetime = 1_790_000_000.0) -> None:
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)

    def time(self) -> float:
        return self._now

    def set(self, when: float | datetime) -> None:
        self._now = when.timestamp() if isinstance(when, datetime) else float(when)

    def advance(self, seconds: float) -> None:
        self._now += seconds


def iso_timestamp(epoch_seconds: float) -> str:
    """``2026-10-02T12:00:00.123Z``: the form Cloudflare's APIs use."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
