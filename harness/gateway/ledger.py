"""The token-budget ledger: daily and monthly UTC windows per tenant, in one of two stores.

Keys are the platform's: ``{tenantId}:token-usage:daily:YYYY-MM-DD`` and
``{tenantId}:token-usage:monthly:YYYY-MM``, taken from the clock when the request starts. A request is
admitted when its estimated input plus the configured output reservation fits in every budget; it is settled
with its actual usage when it ends (partial usage for a failed or abandoned stream); a request whose
attempts all failed is released and costs nothing. Every tenant is metered, with or without a budget.

Stores:

- ``atomic``: strict, like a Durable Object. Admission and reservation happen in one step; in-flight
  reservations count against the budget, so usage exceeds a budget only by what in-flight requests use
  beyond their reservation.
- ``kv``: Cloudflare KV as it behaves. Admission reads possibly stale values; settlement is a
  read-modify-write with no compare-and-swap (last write wins); writes become visible after a propagation
  delay; a second write to a key within the write interval fails with KV's error. Nothing is hidden:
  ``charged()`` keeps what should have been recorded, so lost updates and overshoot are measurable.

A ledger failure is reported to the caller as ``LedgerError``; the gateway records it and carries on.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from aigw_harness.gateway.clock import Clock
from aigw_harness.gateway.tenants import TenantConfig

__all__ = [
    "AtomicLedger",
    "BudgetExceeded",
    "BudgetLedger",
    "KVLedger",
    "KVWriteRateLimited",
    "LedgerError",
    "LedgerView",
    "Reservation",
    "budget_keys",
    "create_ledger",
]

Window = Literal["daily", "monthly"]


def budget_keys(tenant_id: str, now: float) -> tuple[str, str]:
    """The platform's keys for the UTC day and month containing ``now`` (epoch seconds)."""
    iso = _utc_day(math.floor(round(now, 6) / _DAY_SECONDS))  # datetime keeps microseconds
    return f"{tenant_id}:token-usage:daily:{iso}", f"{tenant_id}:token-usage:monthly:{iso[:7]}"


_DAY_SECONDS = 86_400


@functools.lru_cache(maxsize=64)
def _utc_day(day: int) -> str:
    """``YYYY-MM-DD`` of a UTC day (days since the epoch); every turn asks, and the day rarely changes."""
    return datetime.fromtimestamp(day * _DAY_SECONDS, tz=UTC).strftime("%Y-%m-%d")


class BudgetExceeded(Exception):
    def __init__(self, window: Window, used: int, requested: int, limit: int) -> None:
        self.window: Window = window
        self.used = used
        self.requested = requested
        self.limit = limit
        super().__init__(f"{window.capitalize()} token budget exceeded")


class LedgerError(Exception):
    """The store failed; the answer must not be lost because of it."""


class KVWriteRateLimited(LedgerError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__("KV PUT failed: 429 Too Many Requests")


@dataclass
class Reservation:
    tenant_id: str
    daily_key: str
    monthly_key: str
    reserved: int
    budgeted: bool
    snapshot: dict[str, int] = field(default_factory=dict)
    open: bool = True


@dataclass(frozen=True, slots=True)
class LedgerView:
    """What a scenario can read: stored usage, what should have been stored, and what is in flight."""

    store: str
    usage: dict[str, int]
    charged: dict[str, int]
    in_flight: dict[str, int]
    write_failures: int

    def lost(self) -> dict[str, int]:
        """Tokens charged but missing from the store (lost updates and failed writes)."""
        return {k: v - self.usage.get(k, 0) for k, v in self.charged.items() if v != self.usage.get(k, 0)}


class BudgetLedger:
    store_name = ""

    def __init__(self, clock: Clock, *, output_reservation: int = 0) -> None:
        if output_reservation < 0:
            raise ValueError("output_reservation cannot be negative")
        self.clock = clock
        self.output_reservation = output_reservation
        self._charged: dict[str, int] = defaultdict(int)
        self._in_flight: dict[str, int] = defaultdict(int)
        self.write_failures = 0

    async def admit(self, tenant: TenantConfig, estimated_input: int) -> Reservation:
        """Check the budgets (daily first, then monthly) and reserve; raise ``BudgetExceeded``."""
        raise NotImplementedError

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        """Charge ``tokens`` to the reservation's keys and release it; may raise ``LedgerError``."""
        raise NotImplementedError

    async def release(self, reservation: Reservation) -> None:
        """Give the reservation back without charging anything."""
        if reservation.open:
            reservation.open = False
            self._unreserve(reservation)

    def usage(self) -> dict[str, int]:
        """Stored usage by key, as fully propagated."""
        raise NotImplementedError

    def used(self, tenant_id: str, period: Window, at: datetime | float) -> int:
        """Stored usage of the tenant's UTC day or month containing ``at``."""
        instant = at.timestamp() if isinstance(at, datetime) else at
        daily, monthly = budget_keys(tenant_id, instant)
        return self.usage().get(daily if period == "daily" else monthly, 0)

    def charged(self) -> dict[str, int]:
        return {k: v for k, v in self._charged.items() if v}

    def in_flight(self) -> dict[str, int]:
        return {k: v for k, v in self._in_flight.items() if v}

    def view(self) -> LedgerView:
        return LedgerView(
            self.store_name, self.usage(), self.charged(), self.in_flight(), self.write_failures
        )

    def _reserve(self, reservation: Reservation) -> None:
        for key in (reservation.daily_key, reservation.monthly_key):
            self._in_flight[key] += reservation.reserved

    def _unreserve(self, reservation: Reservation) -> None:
        for key in (reservation.daily_key, reservation.monthly_key):
            self._in_flight[key] -= reservation.reserved

    def _check(self, tenant: TenantConfig, daily_used: int, monthly_used: int, requested: int) -> None:
        budget = tenant.token_budget
        if budget is None:
            return
        # Strictly greater: reaching the limit exactly is allowed, as on the platform.
        if budget.daily is not None and daily_used + requested > budget.daily:
            raise BudgetExceeded("daily", daily_used, requested, budget.daily)
        if budget.monthly is not None and monthly_used + requested > budget.monthly:
            raise BudgetExceeded("monthly", monthly_used, requested, budget.monthly)


class AtomicLedger(BudgetLedger):
    store_name = "atomic"

    def __init__(self, clock: Clock, *, output_reservation: int = 0) -> None:
        super().__init__(clock, output_reservation=output_reservation)
        self._values: dict[str, int] = defaultdict(int)

    async def admit(self, tenant: TenantConfig, estimated_input: int) -> Reservation:
        # No await between the check and the reservation: the pair is atomic on the event loop.
        daily_key, monthly_key = budget_keys(tenant.tenant_id, self.clock.now())
        requested = estimated_input + self.output_reservation
        self._check(
            tenant,
            self._values[daily_key] + self._in_flight[daily_key],
            self._values[monthly_key] + self._in_flight[monthly_key],
            requested,
        )
        budgeted = tenant.token_budget is not None and tenant.token_budget.enforced
        reservation = Reservation(tenant.tenant_id, daily_key, monthly_key, requested, budgeted)
        self._reserve(reservation)
        return reservation

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        if not reservation.open:
            return
        reservation.open = False
        self._unreserve(reservation)
        for key in (reservation.daily_key, reservation.monthly_key):
            self._values[key] += tokens
            self._charged[key] += tokens

    def usage(self) -> dict[str, int]:
        return {k: v for k, v in self._values.items() if v}


@dataclass
class _KVEntry:
    writes: list[tuple[float, int]] = field(default_factory=list)  # (time written, value)


class KVLedger(BudgetLedger):
    store_name = "kv"

    def __init__(
        self,
        clock: Clock,
        *,
        output_reservation: int = 0,
        propagation_delay: float = 0.0,
        write_interval: float = 1.0,
        settle_from_snapshot: bool = False,
    ) -> None:
        super().__init__(clock, output_reservation=output_reservation)
        if propagation_delay < 0 or write_interval < 0:
            raise ValueError("propagation_delay and write_interval cannot be negative")
        self.propagation_delay = propagation_delay
        self.write_interval = write_interval
        self.settle_from_snapshot = settle_from_snapshot
        self._entries: dict[str, _KVEntry] = defaultdict(_KVEntry)

    def get(self, key: str) -> int:
        """A read as KV serves it: the newest write that has propagated, else 0."""
        horizon = self.clock.now() - self.propagation_delay
        value = 0
        for written_at, written in self._entries[key].writes:
            if written_at <= horizon:
                value = written
        return value

    def put(self, key: str, value: int) -> None:
        now = self.clock.now()
        writes = self._entries[key].writes
        if writes and now - writes[-1][0] < self.write_interval:
            self.write_failures += 1
            raise KVWriteRateLimited(key)
        writes.append((now, max(0, int(value))))

    async def admit(self, tenant: TenantConfig, estimated_input: int) -> Reservation:
        daily_key, monthly_key = budget_keys(tenant.tenant_id, self.clock.now())
        snapshot = {daily_key: self.get(daily_key), monthly_key: self.get(monthly_key)}
        requested = estimated_input + self.output_reservation
        self._check(tenant, snapshot[daily_key], snapshot[monthly_key], requested)
        budgeted = tenant.token_budget is not None and tenant.token_budget.enforced
        reservation = Reservation(tenant.tenant_id, daily_key, monthly_key, requested, budgeted, snapshot)
        self._reserve(reservation)
        return reservation

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        if not reservation.open:
            return
        reservation.open = False
        self._unreserve(reservation)
        failure: LedgerError | None = None
        for key in (reservation.daily_key, reservation.monthly_key):
            self._charged[key] += tokens
            base = reservation.snapshot[key] if self.settle_from_snapshot else self.get(key)
            try:
                self.put(key, base + tokens)
            except LedgerError as exc:
                failure = exc
        if failure is not None:
            raise failure

    def usage(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for key, entry in self._entries.items():
            if entry.writes and entry.writes[-1][1]:
                out[key] = entry.writes[-1][1]
        return out


def create_ledger(
    store: Literal["atomic", "kv"],
    clock: Clock,
    *,
    output_reservation: int = 0,
    propagation_delay: float = 0.0,
    write_interval: float = 1.0,
    settle_from_snapshot: bool = False,
) -> BudgetLedger:
    if store == "atomic":
        return AtomicLedger(clock, output_reservation=output_reservation)
    return KVLedger(
        clock,
        output_reservation=output_reservation,
        propagation_delay=propagation_delay,
        write_interval=write_interval,
        settle_from_snapshot=settle_from_snapshot,
    )
