"""Request retries: the gateway's retry settings, the ``cf-aig-*`` headers that override them, the delays.

A gateway retries a failed request up to ``retry_max_attempts`` attempts in all (1-5), waiting
``retry_delay`` milliseconds (0-5000) shaped by ``retry_backoff``: ``constant`` waits the delay before each
retry, ``linear`` waits delay x n before the n-th retry, ``exponential`` waits delay x 2^(n-1). The request
headers ``cf-aig-max-attempts``, ``cf-aig-retry-delay`` and ``cf-aig-backoff`` override the gateway for one
request. Values out of range are clamped into it and values that do not parse are ignored (Cloudflare does
not document either case).

``run_attempts`` drives the loop with an injected ``sleep``, so tests compress time; it knows nothing of
HTTP beyond the caller's ``is_failure`` predicate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_DELAY_MS",
    "AttemptLog",
    "Backoff",
    "RetryPolicy",
    "is_retryable_status",
    "policy_from_headers",
    "run_attempts",
]

MAX_ATTEMPTS = 5
MAX_DELAY_MS = 5000


class Backoff(StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


def _backoff(raw: str | None, default: Backoff) -> Backoff:
    value = (raw or "").strip().lower()
    return Backoff(value) if value in Backoff._value2member_map_ else default


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 1
    delay_ms: int = 0
    backoff: Backoff = Backoff.CONSTANT

    @classmethod
    def from_gateway(cls, max_attempts: int | None, delay_ms: int | None, backoff: str | None) -> RetryPolicy:
        return cls(
            max_attempts=_clamp(max_attempts or 1, 1, MAX_ATTEMPTS),
            delay_ms=_clamp(delay_ms or 0, 0, MAX_DELAY_MS),
            backoff=_backoff(backoff, Backoff.CONSTANT),
        )

    def override(self, max_attempts: int | None, delay_ms: int | None, backoff: str | None) -> RetryPolicy:
        """This policy with a request's own values (``None``: not given) applied and clamped."""
        return RetryPolicy(
            max_attempts=self.max_attempts if max_attempts is None else _clamp(max_attempts, 1, MAX_ATTEMPTS),
            delay_ms=self.delay_ms if delay_ms is None else _clamp(delay_ms, 0, MAX_DELAY_MS),
            backoff=_backoff(backoff, self.backoff),
        )

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (1-based); the first attempt never waits."""
        if attempt <= 1:
            return 0.0
        retry = attempt - 1
        base = self.delay_ms / 1000
        if self.backoff is Backoff.LINEAR:
            return base * retry
        if self.backoff is Backoff.EXPONENTIAL:
            return base * float(2 ** (retry - 1))
        return base


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw.strip()))
    except ValueError:
        return None


def policy_from_headers(base: RetryPolicy, headers: Mapping[str, str]) -> RetryPolicy:
    """``base`` with any ``cf-aig-max-attempts``/``-retry-delay``/``-backoff`` in ``headers`` applied.

    ``headers`` must be case-insensitive or lower-cased.
    """
    return base.override(
        _header_int(headers, "cf-aig-max-attempts"),
        _header_int(headers, "cf-aig-retry-delay"),
        headers.get("cf-aig-backoff"),
    )


def is_retryable_status(status: int) -> bool:
    """The statuses Cloudflare's own clients retry: 408, 409, 429 and every 5xx."""
    return status in (408, 409, 429) or status >= 500


@dataclass(slots=True)
class AttemptLog[T]:
    """Every attempt's outcome in order, with the delay waited before it."""

    outcomes: list[T] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)

    @property
    def last(self) -> T:
        return self.outcomes[-1]


async def run_attempts[T](
    policy: RetryPolicy,
    attempt: Callable[[int], Awaitable[T]],
    *,
    is_failure: Callable[[T], bool],
    sleep: Callable[[float], Awaitable[None]],
) -> AttemptLog[T]:
    """Call ``attempt(n)`` until one succeeds or ``policy.max_attempts`` were made."""
    log: AttemptLog[T] = AttemptLog()
    for number in range(1, policy.max_attempts + 1):
        delay = policy.delay_before(number)
        if delay > 0:
            await sleep(delay)
        log.delays.append(delay)
        outcome = await attempt(number)
        log.outcomes.append(outcome)
        if not is_failure(outcome):
            break
    return log
