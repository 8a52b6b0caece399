"""Comparing pytest's verdicts with an ``aigw run``'s results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigw_harness.report.results import (
    CheckResult,
    CheckStatus,
    Results,
    RunInfo,
    ScenarioResult,
    ScenarioStatus,
)
from aigw_harness.testing.verdicts import PytestVerdicts, compare, main


def results(failed_checks: dict[str, list[str]] | None = None, **statuses: str) -> Results:
    failed_checks = failed_checks or {}
    scenarios = [
        ScenarioResult(
            id=scenario_id,
            title=scenario_id,
            area="streaming",
            description="",
            path=f"scenarios/{scenario_id}.yaml",
            status=ScenarioStatus(status),
            budget_store="atomic",
            started_at="2026-02-07T00:00:00Z",
            duration_s=0.1,
            checks=[
                CheckResult(id=check, kind="expect", status=CheckStatus.FAILED, expected="")
                for check in failed_checks.get(scenario_id, [])
            ],
        )
        for scenario_id, status in statuses.items()
    ]
    run = RunInfo(
        id="run",
        started_at="2026-02-07T00:00:00Z",
        finished_at="2026-02-07T00:00:01Z",
        duration_s=1.0,
        target="fake",
        sut="the reference gateway on the embedded fake AI Gateway",
        seed=0,
        time_scale=0.05,
        aigw_version="0.1.0",
    )
    return Results(run=run, summary=Results.summarise(scenarios), scenarios=scenarios)


def pytest_side(scenarios: dict[str, str], items: dict[str, dict[str, str]] | None = None) -> PytestVerdicts:
    return PytestVerdicts.model_validate({"source": "pytest", "scenarios": scenarios, "items": items or {}})


def test_agreement_and_every_kind_of_difference() -> None:
    run = results(a="passed", b="failed", c="skipped", d="error", failed_checks={"b": ["s.status"]})
    same = compare(pytest_side({"a": "passed", "b": "failed", "c": "skipped", "d": "error"}), run)
    assert same.agree
    assert same.differences == same.timing_notes == []
    apart = compare(
        pytest_side(
            {"a": "failed", "b": "passed", "d": "error", "e": "passed"},
            {"a": {"s.status": "failed"}, "b": {"s.status": "passed"}},
        ),
        run,
    )
    assert apart.differences == [
        "a: passed in aigw run, failed through pytest (s.status)",
        "b: failed in aigw run, passed through pytest (s.status)",
        "c: skipped in aigw run, not run through pytest",
        "e: passed through pytest, not in aigw run",
    ]


def test_a_difference_only_in_timing_checks_is_a_note() -> None:
    failed = {"a": ["ttft-p95"], "b": ["s.duration_ms", "s.status"]}
    run = results(a="failed", b="failed", failed_checks=failed)
    side = pytest_side(
        {"a": "passed", "b": "passed"},
        {"a": {"ttft-p95": "passed"}, "b": {"s.duration_ms": "passed", "s.status": "passed"}},
    )
    comparison = compare(side, run)
    assert comparison.timing_notes == [
        "a: failed in aigw run, passed through pytest, by timing checks only (ttft-p95)"
    ]
    assert comparison.differences == [
        "b: failed in aigw run, passed through pytest (s.duration_ms, s.status)"
    ]


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results.json").write_text(results(a="passed", b="failed").to_json())
    for name, verdicts in {
        "same": {"a": "passed", "b": "failed"},
        "other": {"a": "passed", "b": "passed"},
        "bad": {"a": "green"},
    }.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({"source": "pytest", "scenarios": verdicts}))

    assert main([str(tmp_path / "same.json"), str(tmp_path / "results.json")]) == 0
    assert capsys.readouterr().out == "verdicts: pytest and aigw run agree on all 2 scenarios\n"
    assert main([str(tmp_path / "other.json"), str(tmp_path / "results.json")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "verdicts: b: failed in aigw run, passed through pytest",
        "verdicts: 1 difference(s) over 2 scenarios",
    ]
    assert main([str(tmp_path / "bad.json"), str(tmp_path / "results.json")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"verdicts: error: {tmp_path / 'bad.json'}: 1 problem")
    assert "scenarios.a:" in error
    assert main([]) == 2
