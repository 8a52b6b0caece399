"""Rate-limit windows: fixed windows aligned to the clock, sliding windows over any interval."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from aigw_fakes.state.limits import FixedWindow, RateLimiter, RateLimitTechnique, SlidingWindow

times = st.lists(st.floats(min_value=0, max_value=10_000, allow_nan=False), min_size=1, max_size=200).map(
    sorted
)
limits = st.integers(min_value=0, max_value=8)
intervals = st.sampled_from([1.0, 7.5, 60.0, 600.0])


@given(times, limits, intervals)
def test_fixed_window_never_admits_more_than_its_limit_in_a_clock_window(
    arrivals: list[float], limit: int, interval: float
) -> None:
    window = FixedWindow(limit, interval)
    admitted = [t for t in arrivals if window.admit(t).admitted]
    per_window: dict[int, int] = {}
    for t in admitted:
        per_window[math.floor(t / interval)] = per_window.get(math.floor(t / interval), 0) + 1
    assert all(count <= limit for count in per_window.values())
    # and it refuses nothing it could admit: each clock window admits min(limit, arrivals in it)
    arrivals_per_window: dict[int, int] = {}
    for t in arrivals:
        arrivals_per_window[math.floor(t / interval)] = (
            arrivals_per_window.get(math.floor(t / interval), 0) + 1
        )
    for index, count in arrivals_per_window.items():
        assert per_window.get(index, 0) == min(limit, count)


@given(times, limits, intervals)
def test_sliding_window_never_admits_more_than_its_limit_in_any_interval_of_its_length(
    arrivals: list[float], limit: int, interval: float
) -> None:
    window = SlidingWindow(limit, interval)
    decisions = [(t, window.admit(t).admitted) for t in arrivals]
    admitted = [t for t, ok in decisions if ok]
    for end in admitted:
        assert sum(1 for t in admitted if end - interval < t <= end) <= limit
    for t, ok in decisions:
        if not ok:  # a refusal is justified by `limit` admissions in the interval before it
            assert sum(1 for a in admitted if t - interval < a <= t) >= limit


def test_the_documented_example_passes_fixed_windows_and_fails_sliding_ones() -> None:
    # 10 requests per 10 minutes: 10 at 12:09, 10 at 12:11.
    nine, eleven = 12 * 3600 + 9 * 60, 12 * 3600 + 11 * 60
    fixed, sliding = FixedWindow(10, 600), SlidingWindow(10, 600)
    fixed_results = [fixed.admit(t).admitted for t in [nine] * 10 + [eleven] * 10]
    sliding_results = [sliding.admit(t).admitted for t in [nine] * 10 + [eleven] * 10]
    assert all(fixed_results)
    assert sliding_results == [True] * 10 + [False] * 10


def test_a_refusal_says_when_the_next_request_could_pass() -> None:
    fixed = FixedWindow(1, 60)
    assert fixed.admit(120.0).admitted
    refused = fixed.admit(130.0)
    assert not refused.admitted
    assert refused.retry_after == 50.0
    sliding = SlidingWindow(1, 60)
    sliding.admit(130.0)
    assert sliding.admit(150.0).retry_after == 40.0


def test_the_limiter_keeps_counting_until_the_settings_change() -> None:
    limiter = RateLimiter()
    settings = {"limit": 2, "interval": 60.0, "technique": RateLimitTechnique.FIXED}
    results = [limiter.check("a/gw", now=1.0, **settings).admitted for _ in range(3)]
    assert results == [True, True, False]
    assert limiter.check("b/gw", now=1.0, **settings).admitted  # another gateway, another window
    changed = {**settings, "limit": 3}
    assert limiter.check("a/gw", now=2.0, **changed).admitted  # new settings start a fresh window
    assert limiter.check("a/gw", now=2.0, limit=None, interval=None, technique=None).admitted
