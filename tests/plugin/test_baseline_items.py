"""The pytest plugin reads the same baseline as ``aigw run --baseline``: known failures are strict
expected failures, a fixed one fails the run until the baseline is updated, a new failure fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigw_harness.testing.fixtures import DEFAULT_TENANT

from .test_scenario_items import FAILING, PASSING


@pytest.fixture
def scenarios(pytester: pytest.Pytester) -> Path:
    root = pytester.path / "scenarios"
    (root / "tenants").mkdir(parents=True)
    (root / "tenants" / "example.json").write_text(json.dumps(DEFAULT_TENANT))
    (root / "passing.yaml").write_text(PASSING)
    (root / "failing.yaml").write_text(FAILING)
    return root


def baseline(path: Path, failing: dict[str, str]) -> Path:
    document = {
        "aigw_baseline": 1,
        "scenarios": {
            "demo.failing": {"status": "failed", "checks": failing, "findings": {"DEMO-SHORT": "low"}},
            "demo.passing": {"status": "passed", "checks": {"stream.status": "passed"}},
        },
    }
    path.write_text(json.dumps(document))
    return path


def test_known_failures_are_expected_failures(pytester: pytest.Pytester, scenarios: Path) -> None:
    known = baseline(
        pytester.path / "b.json", {"stream.status": "passed", "stream.sse.data_events": "failed"}
    )
    result = pytester.runpytest("--aigw-scenarios", "scenarios", "--aigw-baseline", str(known), "-rxX",
                                "--aigw-report-dir", "out")  # fmt: skip
    result.assert_outcomes(passed=5, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "XFAIL scenarios/failing.yaml::demo.failing::stream.sse.data_events"
            f" - known failure in the baseline {known}"
        ]
    )
    report = (pytester.path / "out" / "report.md").read_text()
    assert "## Against the baseline" in report
    verdicts = json.loads((pytester.path / "out" / "verdicts.json").read_text())
    assert verdicts["scenarios"] == {"demo.failing": "failed", "demo.passing": "passed"}


def test_a_fixed_failure_fails_strictly_and_a_new_one_fails(
    pytester: pytest.Pytester, scenarios: Path
) -> None:
    stale = baseline(
        pytester.path / "b.json", {"stream.status": "failed", "stream.sse.data_events": "passed"}
    )
    result = pytester.runpytest("--aigw-scenarios", "scenarios", "--aigw-baseline", str(stale), "-rfX")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED scenarios/failing.yaml::demo.failing::stream.status - [[]XPASS(strict)[]]*",
            "FAILED scenarios/failing.yaml::demo.failing::stream.sse.data_events*",
        ]
    )


def test_a_bad_baseline_is_a_usage_error(pytester: pytest.Pytester, scenarios: Path) -> None:
    bad = pytester.path / "b.json"
    bad.write_text('{"aigw_baseline": 2, "scenarios": {}}')
    result = pytester.runpytest("--aigw-scenarios", "scenarios", "--aigw-baseline", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == f"ERROR: AIGW: --aigw-baseline: {bad}: 1 problem"
    assert result.stderr.lines[1] == f"  {bad}:1: aigw_baseline: Input should be 1"


SLOW = """
id: demo.slow
title: A time-to-first-token bound no stream can meet
area: streaming
description: Fails on timing alone.
requires: [upstream_control]
upstream:
  default: {tokens: 3, token_delay_ms: 1}
steps:
  - name: stream
    request: {tenant: example}
    expect:
      status: 200
      ttft_ms: {max: 0}
"""


def test_with_a_baseline_a_timing_failure_is_not_gated(pytester: pytest.Pytester, scenarios: Path) -> None:
    (scenarios / "slow.yaml").write_text(SLOW)
    known = baseline(
        pytester.path / "b.json", {"stream.status": "passed", "stream.sse.data_events": "failed"}
    )
    result = pytester.runpytest(
        "--aigw-scenarios", "scenarios/slow.yaml", "--aigw-baseline", str(known), "-rx"
    )
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(["XFAIL *demo.slow::stream.ttft_ms - timing-dependent: reported, not gated*"])
    without = pytester.runpytest("--aigw-scenarios", "scenarios/slow.yaml")
    without.assert_outcomes(passed=1, failed=1)
