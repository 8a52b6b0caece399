"""The budget ledger: keys, both stores, and invariants under generated interleavings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.gateway.clock import ManualClock
from aigw_harness.gateway.ledger import (
    AtomicLedger,
    BudgetExceeded,
    KVLedger,
    KVWriteRateLimited,
    Reservation,
    budget_keys,
)

from .conftest import tenant

LIMIT = 100
BUDGETED = tenant(tokenBudget={"daily": LIMIT})
DAY = "t1:token-usage:daily:2026-02-07"
MONTH = "t1:token-usage:monthly:2026-02"


def clock_at(*args: int) -> ManualClock:
    return ManualClock(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


def test_keys_are_utc_day_and_month() -> None:
    instant = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    assert budget_keys("alpha", instant) == (
        "alpha:token-usage:daily:2026-12-31",
        "alpha:token-usage:monthly:2026-12",
    )
    assert budget_keys("alpha", instant + 1) == (
        "alpha:token-usage:daily:2027-01-01",
        "alpha:token-usage:monthly:2027-01",
    )


async def test_atomic_reserve_settle_release() -> None:
    ledger = AtomicLedger(clock_at(2026, 2, 7), output_reservation=10)
    first = await ledger.admit(BUDGETED, 40)
    assert ledger.in_flight() == {DAY: 50, MONTH: 50}
    second = await ledger.admit(BUDGETED, 40)
    with pytest.raises(BudgetExceeded) as refused:
        await ledger.admit(BUDGETED, 1)  # 100 reserved already
    assert str(refused.value) == "Daily token budget exceeded"
    await ledger.release(second)  # a request whose attempts all failed costs nothing
    await ledger.settle(first, 30)
    assert ledger.usage() == {DAY: 30, MONTH: 30}
    assert ledger.in_flight() == {}
    assert ledger.used("t1", "daily", datetime(2026, 2, 7, 23, tzinfo=UTC)) == 30
    assert ledger.used("t1", "daily", datetime(2026, 2, 8, tzinfo=UTC)) == 0


async def test_unbudgeted_tenants_are_metered() -> None:
    ledger = AtomicLedger(clock_at(2026, 2, 7))
    reservation = await ledger.admit(tenant(), 10**9)
    await ledger.settle(reservation, 5)
    assert ledger.usage() == {DAY: 5, MONTH: 5}


async def test_settlement_goes_to_the_keys_of_the_request_start() -> None:
    clock = clock_at(2026, 2, 7, 23, 59, 59)
    ledger = AtomicLedger(clock)
    reservation = await ledger.admit(BUDGETED, 1)
    clock.advance(2)
    await ledger.settle(reservation, 9)
    assert ledger.usage() == {DAY: 9, MONTH: 9}
    assert (await ledger.admit(BUDGETED, 100)).daily_key == "t1:token-usage:daily:2026-02-08"


async def test_kv_one_write_per_second_per_key_fails_like_kv() -> None:
    clock = clock_at(2026, 2, 7)
    ledger = KVLedger(clock)
    first, second = await ledger.admit(BUDGETED, 1), await ledger.admit(BUDGETED, 1)
    await ledger.settle(first, 10)
    with pytest.raises(KVWriteRateLimited, match=r"^KV PUT failed: 429 Too Many Requests$"):
        await ledger.settle(second, 20)
    view = ledger.view()
    assert view.usage == {DAY: 10, MONTH: 10}
    assert view.charged == {DAY: 30, MONTH: 30}
    assert view.lost() == {DAY: 20, MONTH: 20}
    assert view.write_failures == 2
    clock.advance(1)
    third = await ledger.admit(BUDGETED, 1)
    await ledger.settle(third, 5)
    assert ledger.usage()[DAY] == 15


async def test_kv_reads_are_stale_until_propagated() -> None:
    clock = clock_at(2026, 2, 7)
    ledger = KVLedger(clock, propagation_delay=60, write_interval=0)
    await ledger.settle(await ledger.admit(BUDGETED, 1), 90)
    # Within the propagation delay the pre-check still reads 0 and admits what atomic would refuse.
    stale = await ledger.admit(BUDGETED, 50)
    assert stale.snapshot[DAY] == 0
    clock.advance(60)
    with pytest.raises(BudgetExceeded):
        await ledger.admit(BUDGETED, 50)


async def test_kv_last_write_wins_and_snapshot_mode() -> None:
    for from_snapshot, stored in ((False, 30), (True, 20)):
        clock = clock_at(2026, 2, 7)
        ledger = KVLedger(clock, write_interval=0, settle_from_snapshot=from_snapshot)
        a, b = await ledger.admit(BUDGETED, 1), await ledger.admit(BUDGETED, 1)
        await ledger.settle(a, 10)
        await ledger.settle(b, 20)
        assert ledger.usage()[DAY] == stored, from_snapshot
        assert ledger.charged()[DAY] == 30


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.integers(0, 60), st.integers(0, 100)),
        st.tuples(st.just("settle"), st.integers(0, 30), st.integers(0, 100)),
        st.tuples(st.just("release"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("tick"), st.integers(0, 3), st.just(0)),
    ),
    max_size=60,
)


async def _run(
    ledger: AtomicLedger | KVLedger, clock: ManualClock, ops: list[tuple[str, int, int]]
) -> list[str]:
    """Apply ``ops``; settle charges a percentage of the reservation (above 100 % overshoots it)."""
    open_: list[Reservation] = []
    excess = 0
    log: list[str] = []
    for op, a, b in ops:
        if op == "admit":
            try:
                open_.append(await ledger.admit(BUDGETED, a))
            except BudgetExceeded:
                log.append("refused")
        elif op in ("settle", "release") and open_:
            reservation = open_.pop(a % len(open_))
            if op == "release":
                await ledger.release(reservation)
            else:
                tokens = reservation.reserved * b // 50  # 0 % .. 200 % of the reservation
                excess += max(0, tokens - reservation.reserved)
                try:
                    await ledger.settle(reservation, tokens)
                except KVWriteRateLimited:
                    log.append("write failed")
        elif op == "tick":
            clock.advance(a)
        if isinstance(ledger, AtomicLedger):
            used = ledger.usage().get(DAY, 0)
            # Never above the budget by more than in-flight requests used beyond their reservation.
            assert used + ledger.in_flight().get(DAY, 0) <= LIMIT + excess
    return log


@given(OPS)
async def test_atomic_never_exceeds_budget_beyond_reservation_overruns(
    ops: list[tuple[str, int, int]],
) -> None:
    clock = clock_at(2026, 2, 7)
    await _run(AtomicLedger(clock), clock, ops)


@given(OPS)
async def test_atomic_with_exact_usage_never_exceeds_budget(ops: list[tuple[str, int, int]]) -> None:
    clock = clock_at(2026, 2, 7)
    ledger = AtomicLedger(clock)
    exact = [(op, a, 50 if op == "settle" else b) for op, a, b in ops]  # settle exactly what was reserved
    await _run(ledger, clock, exact)
    assert ledger.usage().get(DAY, 0) <= LIMIT


@given(OPS, st.floats(0, 5), st.sampled_from([0.0, 1.0]))
async def test_kv_overshoot_and_losses_are_measured(
    ops: list[tuple[str, int, int]], delay: float, interval: float
) -> None:
    clock = clock_at(2026, 2, 7)
    ledger = KVLedger(clock, propagation_delay=delay, write_interval=interval)
    await _run(ledger, clock, ops)
    view = ledger.view()
    charged = view.charged.get(DAY, 0)
    stored = view.usage.get(DAY, 0)
    # What should have been recorded is kept, whatever the store lost; the store never invents usage.
    assert stored <= charged
    assert view.lost().get(DAY, 0) == charged - stored
    assert ledger.in_flight() == {} or all(v > 0 for v in ledger.in_flight().values())
