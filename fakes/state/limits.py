"""Gateway rate limiting: ``fixed`` windows aligned to the clock and ``sliding`` windows.

A gateway with ``rate_limiting_limit`` requests per ``rate_limiting_interval`` seconds refuses the request
that would exceed it with HTTP 429 and code 2003. ``fixed`` counts requests in windows aligned to the clock
(an interval of 600 s gives 12:00-12:10, 12:10-12:20, ...); ``sliding`` admits a request only if fewer
than ``limit`` requests were admitted in the ``interval`` seconds before it. Refused requests are not
counted, since Cloudflare does not process them.

Pure logic: every method takes the current time (seconds since the epoch) from the caller's injectable
clock, and nothing here reads wall time or knows about HTTP.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = [
    "FixedWindow",
    "RateDecision",
    "RateLimitTechnique",
    "RateLimiter",
    "SlidingWindow",
    "Window",
]


class RateLimitTechnique(StrEnum):
    FIXED = "fixed"
    SLIDING = "sliding"


@dataclass(frozen=True, slots=True)
class RateDecision:
    admitted: bool
    retry_after: float  # seconds until a request could next be admitted; 0 when admitted


class Window(Protocol):
    limit: int
    interval: float

    def admit(self, now: float) -> RateDecision: ...


def _check_shape(limit: int, interval: float) -> None:
    if limit < 0:
        raise ValueError(f"rate limit must be 0 or more requests, got {limit}")
    if not interval > 0:
        raise ValueError(f"rate limit interval must be more than 0 seconds, got {interval}")


class FixedWindow:
    """At most ``limit`` admissions in each window ``[k*interval, (k+1)*interval)`` of the clock."""

    def __init__(self, limit: int, interval: float) -> None:
        _check_shape(limit, interval)
        self.limit = limit
        self.interval = interval
        self._window_index: int | None = None
        self._count = 0

    def admit(self, now: float) -> RateDecision:
        index = math.floor(now / self.interval)
        if index != self._window_index:
            self._window_index = index
            self._count = 0
        if self._count >= self.limit:
            return RateDecision(False, (index + 1) * self.interval - now)
        self._count += 1
        return RateDecision(True, 0.0)


class SlidingWindow:
    """At most ``limit`` admissions in any half-open interval ``(t - interval, t]``."""

    def __init__(self, limit: int, interval: float) -> None:
        _check_shape(limit, interval)
        self.limit = limit
        self.interval = interval
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> RateDecision:
        horizon = now - self.interval
        while self._admitted and self._admitted[0] <= horizon:
            self._admitted.popleft()
        if len(self._admitted) >= self.limit:
            oldest = self._admitted[0] if self._admitted else now
            return RateDecision(False, max(0.0, oldest + self.interval - now))
        self._admitted.append(now)
        return RateDecision(True, 0.0)


def _make_window(technique: RateLimitTechnique, limit: int, interval: float) -> Window:
    if technique is RateLimitTechnique.SLIDING:
        return SlidingWindow(limit, interval)
    return FixedWindow(limit, interval)


class RateLimiter:
    """One window per gateway; a changed setting starts a fresh window, an unchanged one keeps counting."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[tuple[RateLimitTechnique, int, float], Window]] = {}

    def check(
        self,
        gateway_key: str,
        *,
        limit: int | None,
        interval: float | None,
        technique: RateLimitTechnique | None,
        now: float,
    ) -> RateDecision:
        """Admit (and count) one request through ``gateway_key``; no limit configured admits everything."""
        if limit is None or interval is None or interval <= 0:
            self._windows.pop(gateway_key, None)
            return RateDecision(True, 0.0)
        shape = (technique or RateLimitTechnique.FIXED, limit, float(interval))
        known = self._windows.get(gateway_key)
        if known is None or known[0] != shape:
            known = (shape, _make_window(*shape))
            self._windows[gateway_key] = known
        return known[1].admit(now)

    def forget(self, gateway_key: str) -> None:
        self._windows.pop(gateway_key, None)

    def reset(self) -> None:
        self._windows.clear()
