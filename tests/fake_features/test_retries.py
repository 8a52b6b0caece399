"""Retry schedules from gateway settings and the headers that override them."""

from __future__ import annotations

import pytest

from aigw_fakes.gateway.retries import Backoff, RetryPolicy, policy_from_headers, run_attempts


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        (Backoff.CONSTANT, [0.0, 0.5, 0.5, 0.5, 0.5]),
        (Backoff.LINEAR, [0.0, 0.5, 1.0, 1.5, 2.0]),
        (Backoff.EXPONENTIAL, [0.0, 0.5, 1.0, 2.0, 4.0]),
    ],
)
def test_delays_before_each_attempt(backoff: Backoff, expected: list[float]) -> None:
    policy = RetryPolicy(max_attempts=5, delay_ms=500, backoff=backoff)
    assert [policy.delay_before(n) for n in range(1, 6)] == expected


def test_gateway_values_are_clamped_to_the_documented_ranges() -> None:
    assert RetryPolicy.from_gateway(9, 9000, "linear") == RetryPolicy(5, 5000, Backoff.LINEAR)
    assert RetryPolicy.from_gateway(None, None, None) == RetryPolicy(1, 0, Backoff.CONSTANT)
    assert RetryPolicy.from_gateway(0, -1, "sideways") == RetryPolicy(1, 0, Backoff.CONSTANT)


def test_headers_override_the_gateway_and_bad_values_are_ignored() -> None:
    gateway = RetryPolicy(2, 100, Backoff.CONSTANT)
    headers = {"cf-aig-max-attempts": "4", "cf-aig-retry-delay": "250", "cf-aig-backoff": "Exponential"}
    assert policy_from_headers(gateway, headers) == RetryPolicy(4, 250, Backoff.EXPONENTIAL)
    assert policy_from_headers(gateway, {"cf-aig-max-attempts": "7"}).max_attempts == 5
    assert policy_from_headers(gateway, {"cf-aig-retry-delay": "60000"}).delay_ms == 5000
    assert policy_from_headers(gateway, {"cf-aig-max-attempts": "many", "cf-aig-backoff": "?"}) == gateway


async def test_attempts_stop_at_the_first_success_and_sleep_the_schedule() -> None:
    slept: list[float] = []
    statuses = iter([503, 429, 200, 200])

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def attempt(number: int) -> int:
        return next(statuses)

    log = await run_attempts(
        RetryPolicy(5, 1000, Backoff.LINEAR), attempt, is_failure=lambda s: s >= 400, sleep=sleep
    )
    assert log.outcomes == [503, 429, 200]
    assert slept == [1.0, 2.0]
    assert log.last == 200


async def test_attempts_end_after_max_attempts_with_the_last_failure() -> None:
    async def sleep(seconds: float) -> None:
        return None

    async def attempt(number: int) -> int:
        return 500 + number

    log = await run_attempts(RetryPolicy(3, 0), attempt, is_failure=lambda s: s >= 500, sleep=sleep)
    assert log.outcomes == [501, 502, 503]
