"""From Locust's statistics and the target's facts to checks and findings."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.load.analysis import BudgetSample, LoadFacts, LocustEntry, analyse, hist_percentile
from aigw_harness.load.profile import LoadProfile
from aigw_harness.report.stats import percentile
from aigw_harness.scenarios.targets import UpstreamCall, UsageRecord


@given(
    st.dictionaries(
        st.integers(min_value=0, max_value=5000), st.integers(min_value=1, max_value=50), min_size=1
    ),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_histogram_percentile_is_the_harness_nearest_rank(histogram: dict[int, int], fraction: float) -> None:
    values = [float(v) for v, n in histogram.items() for _ in range(n)]
    counted = {float(v): n for v, n in histogram.items()}
    assert hist_percentile(counted, fraction) == percentile(values, fraction)


def _entry(method: str, name: str, requests: int, failures: int = 0, times: dict[float, int] | None = None):
    return LocustEntry(method, name, requests, failures, times or {}, 0.0, None)


def _call(tenant: str, tokens_in: int, tokens_out: int, status: int = 200) -> UpstreamCall:
    return UpstreamCall(
        id="c",
        model="m",
        status=status,
        metadata={"tenantId": tenant},
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )


def _record(tenant: str, charged: int) -> UsageRecord:
    return UsageRecord(tenant, "m", "success", None, None, charged, None, charged=charged)


def _facts(**changes: object) -> LoadFacts:
    profile = LoadProfile.model_validate(
        {
            "tenants": [{"tenant": "t1"}, {"tenant": "t2"}],
            "goals": {"ttft_p95_ms": 100, "error_rate": 0.1, "contract_violations": 0, "lost_tokens": 0},
        }
    )
    facts = {
        "profile": profile,
        "profile_path": "profile.yaml",
        "target": "fake",
        "sut": "test",
        "users": 4,
        "spawn_rate": 4.0,
        "duration_s": 2.0,
        "wall_s": 2.0,
        "started_at": datetime(2026, 12, 7, tzinfo=UTC),
        "stats": [
            _entry("SSE", "/chat", 9, 1, {100.0: 9}),
            _entry("JSON", "/chat", 1, 0, {20.0: 1}),
            _entry("ERROR", "HTTP 429 rate_limited", 1),
            _entry("TTFT", "/chat", 9, 0, {10.0: 8, 90.0: 1}),
            _entry("CONTRACT", "/chat", 9),
        ],
        "user_counts": [],
        "samples": [BudgetSample(1.0, 5, 50, 50)],
        "upstream_calls": [
            _call("t1", 5, 5),
            _call("t1", 5, 5),
            _call("t2", 3, 4),
            _call("t2", 9, 9, status=500),
        ],
        "usage_records": [_record("t1", 10), _record("t1", 10), _record("t2", 7)],
        "ledger_used": {"t1": 20, "t2": 7},
        "daily_budgets": {},
    }
    facts.update(changes)
    return LoadFacts(**facts)  # type: ignore[arg-type]


def _statuses(facts: LoadFacts) -> dict[str, str]:
    scenario = analyse(facts).scenarios[0]
    return {c.id: c.status for c in scenario.checks}


def test_every_answer_counted_once_and_errors_by_class() -> None:
    results = analyse(_facts())
    load = results.scenarios[0].load
    assert load is not None
    assert (load.answers, load.complete) == (10, 9)
    assert load.errors_by_class == {"HTTP 429 rate_limited": 1}
    assert load.upstream_calls == 4
    assert results.ok
    assert _statuses(_facts()) == {
        "answers": "passed",
        "goal.ttft_p95_ms": "passed",
        "goal.error_rate": "passed",
        "goal.contract_violations": "passed",
        "goal.lost_tokens": "passed",
    }


def test_a_dropped_charge_is_a_lost_update_finding() -> None:
    facts = _facts(ledger_used={"t1": 10, "t2": 7})  # the SUT recorded 20 for t1, its ledger kept 10
    scenario = analyse(facts).scenarios[0]
    drift = {d.tenant: d for d in scenario.load.drift}  # type: ignore[union-attr]
    assert (drift["t1"].billed, drift["t1"].recorded, drift["t1"].charged, drift["t1"].lost) == (
        20,
        20,
        10,
        10,
    )
    assert drift["t2"].billed == 7  # the failed call is not billed
    raised = [f.id for f in scenario.findings if f.raised]
    assert raised == ["LOAD-LOST-UPDATES"]
    assert scenario.status == "failed"


def test_without_usage_records_loss_is_judged_on_billed_against_charged() -> None:
    scenario = analyse(_facts(usage_records=None, ledger_used={"t1": 15, "t2": 7})).scenarios[0]
    drift = {d.tenant: d for d in scenario.load.drift}  # type: ignore[union-attr]
    assert drift["t1"].recorded is None
    assert drift["t1"].lost == 5
    assert drift["t1"].drift == -5


def test_what_the_target_cannot_read_is_skipped_not_guessed() -> None:
    statuses = _statuses(_facts(ledger_used=None))
    assert statuses["goal.lost_tokens"] == "skipped"
    scenario = analyse(_facts(ledger_used=None)).scenarios[0]
    assert not any(f.raised for f in scenario.findings)


def test_slow_first_tokens_and_contract_breaks_raise_their_findings() -> None:
    stats = [
        _entry("SSE", "/chat", 10, 0, {100.0: 10}),
        _entry("TTFT", "/chat", 10, 0, {50.0: 5, 400.0: 5}),
        _entry("CONTRACT", "/chat", 8),
        _entry("CONTRACT", "framing", 2, 2),
    ]
    scenario = analyse(_facts(stats=stats)).scenarios[0]
    assert scenario.load is not None
    assert scenario.load.contract_violations == 2
    assert {f.id for f in scenario.findings if f.raised} == {"LOAD-TTFT", "LOAD-CONTRACT"}


def test_no_answer_at_all_fails_the_run() -> None:
    scenario = analyse(_facts(stats=[])).scenarios[0]
    assert {c.id: c.status for c in scenario.checks}["answers"] == "failed"
    assert scenario.status == "failed"
