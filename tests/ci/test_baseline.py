"""Baselines: what a run compared with a recorded baseline calls new, fixed, unchanged or a note."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigw_fakes.datafiles import DataFileError
from aigw_harness.ci.baseline import baseline_of, compare, load_baseline, summary_lines, write_baseline
from aigw_harness.report.results import BaselineComparison, Results

from .results_factory import check, finding, results, scenario


def contract_run(*, status: str = "failed", framing: str = "failed", ttft: str = "passed",
                 severity: str = "high", raised: bool = True, extra: str = "passed") -> Results:  # fmt: skip
    checks = [
        check("stream.status", "passed"),
        check("stream.sse.framing", framing),
        check("stream.ttft_ms", ttft),
        check("history.status", extra),
    ]
    findings = [
        finding("SSE-BROKEN", severity, raised, ("stream.sse.framing", "check", framing)),
        finding("SLOW", "medium", ttft == "failed", ("stream.ttft_ms", "check", ttft)),
    ]
    return results(scenario("streaming.contract", status, checks, findings))


def buckets(comparison: BaselineComparison) -> dict[str, list[tuple[str, str | None, str | None]]]:
    return {
        name: [(c.ref, c.before, c.after) for c in getattr(comparison, name)]
        for name in ("new", "fixed", "unchanged", "notes")
    }


def test_a_baseline_round_trips_and_a_run_equal_to_it_has_nothing_new(tmp_path: Path) -> None:
    run = contract_run()
    path = tmp_path / "baseline.json"
    written = write_baseline(run, path)
    assert load_baseline(path) == written
    text = path.read_text()
    assert '"stream.sse.framing": "failed"' in text
    assert '"SSE-BROKEN": "high"' in text
    assert "duration" not in text
    assert "started" not in text
    comparison = compare(load_baseline(path), run, file=str(path))
    assert buckets(comparison) == {
        "new": [],
        "fixed": [],
        "unchanged": [("stream.sse.framing", "failed", "failed"), ("SSE-BROKEN", "high", "high")],
        "notes": [],
    }
    assert not comparison.regressed


def test_a_newly_failing_check_a_new_finding_and_a_grown_severity_are_regressions() -> None:
    baseline = baseline_of(contract_run())
    newly_failing = compare(baseline, contract_run(extra="failed"))
    assert buckets(newly_failing)["new"] == [("history.status", "passed", "failed")]
    assert newly_failing.regressed
    grown = compare(baseline, contract_run(severity="critical"))
    assert buckets(grown)["new"] == [("SSE-BROKEN", "high", "critical")]
    clean = baseline_of(contract_run(status="passed", framing="passed", raised=False))
    raised = compare(clean, contract_run())
    assert buckets(raised)["new"] == [
        ("stream.sse.framing", "passed", "failed"),
        ("SSE-BROKEN", None, "high"),
    ]


def test_a_fixed_finding_is_reported_and_fails_only_when_strict() -> None:
    baseline = baseline_of(contract_run())
    fixed_run = contract_run(status="passed", framing="passed", raised=False)
    lenient = compare(baseline, fixed_run, file="b.json")
    assert buckets(lenient)["fixed"] == [
        ("stream.sse.framing", "failed", "passed"),
        ("SSE-BROKEN", "high", None),
    ]
    assert not lenient.regressed
    strict = compare(baseline, fixed_run, file="b.json", strict=True)
    assert strict.regressed
    lines = summary_lines(strict)
    assert lines[0] == "baseline b.json: 0 new, 2 fixed, 0 known finding(s) unchanged, 0 note(s)"
    assert "  FIXED  streaming.contract finding SSE-BROKEN: high -> absent" in lines
    assert any("update the baseline" in line for line in lines)


def test_timing_checks_and_findings_decided_by_them_are_notes() -> None:
    baseline = baseline_of(contract_run())
    slow = compare(baseline, contract_run(ttft="failed"))
    assert buckets(slow)["new"] == []
    assert buckets(slow)["notes"] == [("stream.ttft_ms", "passed", "failed"), ("SLOW", None, "medium")]


def test_any_status_string_is_carried_and_an_unjudged_scenario_is_a_note() -> None:
    run = results(scenario("fallback.x", "not_applicable", [check("a.status", "not_exercised")], []))
    baseline = baseline_of(run)
    assert baseline.scenarios["fallback.x"].status == "not_applicable"
    assert baseline.scenarios["fallback.x"].checks == {"a.status": "not_exercised"}
    later = baseline_of(contract_run())
    comparison = compare(later, results(scenario("streaming.contract", "not_applicable", [], [])))
    assert buckets(comparison)["notes"] == [("streaming.contract", "failed", "not_applicable")]
    assert not comparison.regressed


def test_a_scenario_that_could_not_run_is_new_and_a_new_failing_scenario_too() -> None:
    baseline = baseline_of(contract_run())
    errored = compare(baseline, results(scenario("streaming.contract", "error", [], [])))
    assert buckets(errored)["new"] == [("streaming.contract", "failed", "error")]
    unknown = compare(baseline, results(scenario("other", "failed", [check("x.status", "failed")], [])))
    assert ("other", None, "failed") in buckets(unknown)["new"]
    assert ("x.status", None, "failed") in buckets(unknown)["new"]


def test_a_bad_baseline_file_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"aigw_baseline": 1, "scenarios": {"s": {"status": 3}}}')
    with pytest.raises(DataFileError) as caught:
        load_baseline(path)
    assert str(path) in str(caught.value)
    assert "status" in str(caught.value)


def test_a_finding_citing_a_step_that_failed_on_timing_only_is_a_note() -> None:
    checks = [check("stream.status", "passed"), check("stream.ttft_ms", "failed")]
    buffered = finding("BUFFERED", "critical", True, ("stream", "step", "failed"))
    later = results(scenario("spike.streaming", "failed", checks, [buffered]))
    calm = results(scenario("spike.streaming", "passed", [check("stream.status", "passed"),
                                                         check("stream.ttft_ms", "passed")], []))  # fmt: skip
    comparison = compare(baseline_of(calm), later)
    assert buckets(comparison)["new"] == []
    assert ("BUFFERED", None, "critical") in buckets(comparison)["notes"]
    # The same step failing on its status is not timing: the finding is new.
    checks[0] = check("stream.status", "failed")
    broken = compare(baseline_of(calm), results(scenario("spike.streaming", "failed", checks, [buffered])))
    assert ("BUFFERED", None, "critical") in buckets(broken)["new"]
