"""The per-user sliding-window rate limiter, as the platform's rate-limiter Durable Object computes it.

Key ``{tenantId}:ratelimit:{userId | x-user-id | "anonymous"}``; window ``windowSec`` (60 s at M2);
``remaining = max(0, limit - active - 1)`` computed before counting this request; ``allowed = active <
limit``; an allowed request consumes a slot; ``resetAt`` (epoch ms) is the newest active timestamp plus the
window, or now plus the window. The platform skips its storage write when the pruned list has the same
length as before, which loses the new timestamp; here every change is kept.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from aigw_harness.gateway.clock import Clock

__all__ = ["RateLimitResult", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_at_ms: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_at_ms).encode()),
        ]


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._stamps: dict[str, list[int]] = defaultdict(list)

    def check(self, key: str, limit: int, window_sec: int) -> RateLimitResult:
        now = int(self.clock.now() * 1000)
        window_ms = window_sec * 1000
        cutoff = now - window_ms
        active = [stamp for stamp in self._stamps[key] if stamp > cutoff]
        remaining = max(0, limit - len(active) - 1)
        allowed = len(active) < limit
        reset_at = max(active) + window_ms if active else now + window_ms
        self._stamps[key] = [*active, now] if allowed else active
        return RateLimitResult(allowed, limit, remaining, reset_at)

    def reset(self) -> None:
        self._stamps.clear()
