"""Scenario files as pytest items, through pytester: collection, outcomes, failure output, skips, errors,
JUnit XML, the report, and the same verdicts as ``aigw run``."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aigw_harness.report.results import load_results
from aigw_harness.testing.fixtures import DEFAULT_TENANT
from aigw_harness.testing.verdicts import PytestVerdicts, compare

PASSING = """
id: demo.passing
title: A short stream keeps the contract
area: streaming
description: Three tokens, streamed.
tags: [smoke]
requires: [upstream_control]
upstream:
  default: {tokens: 3, token_delay_ms: 1}
steps:
  - name: stream
    request: {tenant: example}
    expect:
      status: 200
      sse: {terminal_done: true, data_events: {min: 3}}
checks:
  - id: one-call
    description: the upstream was called once
    upstream_calls: {count: 1}
"""

FAILING = """
id: demo.failing
title: Asks for more tokens than the upstream sends
area: streaming
description: The upstream sends three tokens; the expectation wants fifty.
requires: [upstream_control]
upstream:
  default: {tokens: 3, token_delay_ms: 1}
steps:
  - name: stream
    request: {tenant: example}
    expect:
      status: 200
      sse: {data_events: {min: 50}}
findings:
  - id: DEMO-SHORT
    title: The answer is short
    severity: low
    evidence: [stream]
    recommendation: Ask for more tokens.
"""

NEEDS_CLOCK = """
id: demo.clock
title: Needs the clock
area: budget
description: Moves the clock, which a plain URL target cannot.
steps:
  - clock: {advance_s: 60}
  - name: stream
    request: {tenant: example}
    expect: {status: 200}
"""

BROKEN_TENANT = """
id: demo.broken
title: Measures a budget the tenant does not have
area: budget
description: The tenant has no daily token budget, so the overshoot cannot be measured and the run stops.
tenants: [example]
steps:
  - name: stream
    request: {tenant: example}
    expect: {status: 200}
    measure_overshoot: {tenant: example}
"""

NO_EXPECTATIONS = """
id: demo.plain
title: Only measures
area: spike
description: No expectations, only a measurement.
steps:
  - name: stream
    request: {tenant: example}
measure: [ttft_ms]
"""


@pytest.fixture
def catalogue(pytester: pytest.Pytester) -> Path:
    root = pytester.path / "scenarios"
    (root / "tenants").mkdir(parents=True)
    (root / "tenants" / "example.json").write_text(json.dumps(DEFAULT_TENANT))
    for name, text in {
        "passing": PASSING,
        "failing": FAILING,
        "clock": NEEDS_CLOCK,
        "broken": BROKEN_TENANT,
        "plain": NO_EXPECTATIONS,
    }.items():
        (root / f"{name}.yaml").write_text(text)
    return root


def outcomes_by_item(result: pytest.RunResult) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in result.outlines:
        word, _, nodeid = line.partition(" ")
        if word in ("PASSED", "FAILED", "SKIPPED", "ERROR") and "::" in nodeid:
            found[nodeid.split(" - ")[0]] = word
    return found


def test_collection_tree_and_markers(pytester: pytest.Pytester, catalogue: Path) -> None:
    pytester.makepyfile("def test_own(): pass")
    result = pytester.runpytest("--aigw-scenarios", "scenarios", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert [line for line in result.outlines if "::" in line] == [
        "scenarios/broken.yaml::demo.broken::stream.status",
        "scenarios/clock.yaml::demo.clock::stream.status",
        "scenarios/failing.yaml::demo.failing::stream.status",
        "scenarios/failing.yaml::demo.failing::stream.sse.data_events",
        "scenarios/passing.yaml::demo.passing::stream.status",
        "scenarios/passing.yaml::demo.passing::stream.sse.data_events",
        "scenarios/passing.yaml::demo.passing::stream.sse.terminal_done",
        "scenarios/passing.yaml::demo.passing::one-call",
        "scenarios/plain.yaml::demo.plain::run",
    ]
    # Without test paths only the scenarios run; with them, the scenarios join them.
    own = "test_collection_tree_and_markers.py"
    joined = pytester.runpytest(own, "--aigw-scenarios", "scenarios", "--co", "-q")
    assert "test_collection_tree_and_markers.py::test_own" in joined.outlines
    assert "scenarios/plain.yaml::demo.plain::run" in joined.outlines
    selected = pytester.runpytest(
        "--aigw-scenarios", "scenarios", "--co", "-q", "-m", "aigw_scenario", "-k", "smoke"
    )
    assert [line for line in selected.outlines if "::" in line] == [
        "scenarios/passing.yaml::demo.passing::stream.status",
        "scenarios/passing.yaml::demo.passing::stream.sse.data_events",
        "scenarios/passing.yaml::demo.passing::stream.sse.terminal_done",
        "scenarios/passing.yaml::demo.passing::one-call",
    ]


def test_a_run_without_the_option_collects_no_scenarios(pytester: pytest.Pytester, catalogue: Path) -> None:
    pytester.makepyfile("def test_own(): pass")
    result = pytester.runpytest("--co", "-q", ".")
    collected = [line for line in result.outlines if "::" in line]
    assert collected == ["test_a_run_without_the_option_collects_no_scenarios.py::test_own"]


def test_outcomes_failure_output_junit_report_and_the_same_verdicts_as_aigw_run(
    pytester: pytest.Pytester, catalogue: Path
) -> None:
    result = pytester.runpytest(
        "--aigw-scenarios", "scenarios", "-rA", "--junitxml=junit.xml", "--aigw-report-dir", "out"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert outcomes_by_item(result) == {
        "scenarios/broken.yaml::demo.broken::stream.status": "ERROR",
        "scenarios/clock.yaml::demo.clock::stream.status": "PASSED",
        "scenarios/failing.yaml::demo.failing::stream.status": "PASSED",
        "scenarios/failing.yaml::demo.failing::stream.sse.data_events": "FAILED",
        "scenarios/passing.yaml::demo.passing::stream.status": "PASSED",
        "scenarios/passing.yaml::demo.passing::stream.sse.terminal_done": "PASSED",
        "scenarios/passing.yaml::demo.passing::stream.sse.data_events": "PASSED",
        "scenarios/passing.yaml::demo.passing::one-call": "PASSED",
        "scenarios/plain.yaml::demo.plain::run": "PASSED",
    }
    result.stdout.fnmatch_lines(
        [
            "*_ demo.failing: stream.sse.data_events (data events >= 50) _*",
            "AIGW: stream.sse.data_events did not hold",
            "  scenario:  demo.failing (scenarios/failing.yaml): Asks for more tokens than the upstream "
            "sends",
            "  expected:  data events >= 50",
            "  observed:  3",
            "  why:       1 of 1 responses: r0001 expected >= 50, got 3",
            "  requests:  r0001",
            "  log ids:   *",
            "  finding:   DEMO-SHORT [[]low[]] The answer is short",
            "  evidence:  request r0001 (trace r0001-*): POST /chat, tenant example, -> 200, "
            "text/event-stream, first token * ms, took * ms",
            "             upstream asked for @cf/meta/llama-3.1-8b-instruct-fp8-fast",
            '             #1   +* ms  message  {"sessionId":*',
            '             #4   +* ms  done     {"done":true,*',
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of demo.broken: stream.status (status == 200) _*",
            "AIGW: scenario demo.broken (scenarios/broken.yaml) could not run: RuntimeError: "
            "tenant 'example' has no tokenBudget.daily in the scenario's tenants",
        ]
    )

    result.stdout.fnmatch_lines(
        ["aigw: report */out/report.html", "      results.json, report.md and verdicts.json next to it"]
    )

    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    junit = {(case.get("classname"), case.get("name")): [child.tag for child in case] for case in cases}
    assert junit[("scenarios.failing.yaml.demo.failing", "stream.sse.data_events")] == ["failure"]
    assert junit[("scenarios.passing.yaml.demo.passing", "one-call")] == []
    assert junit[("scenarios.broken.yaml.demo.broken", "stream.status")] == ["error"]
    assert len(junit) == 9

    out = pytester.path / "out"
    written = sorted(p.name for p in out.iterdir())
    assert written == ["report.html", "report.md", "results.json", "verdicts.json"]
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert verdicts["scenarios"] == {
        "demo.broken": "error",
        "demo.clock": "passed",
        "demo.failing": "failed",
        "demo.passing": "passed",
        "demo.plain": "passed",
    }
    failing = {"stream.status": "passed", "stream.sse.data_events": "failed"}
    assert verdicts["items"]["demo.failing"] == failing
    assert verdicts["items"]["demo.broken"] == {"stream.status": "error"}
    through_pytest = load_results(out / "results.json")
    assert [s.id for s in through_pytest.scenarios] == list(verdicts["scenarios"])

    aigw = Path(sys.executable).with_name("aigw")
    run = subprocess.run(
        [str(aigw), "run", "scenarios", "--tenants", "scenarios/tenants", "--out", "aigw-out", "-q"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    through_aigw_run = load_results(pytester.path / "aigw-out" / "results.json")
    comparison = compare(PytestVerdicts.model_validate(verdicts), through_aigw_run)
    assert comparison.differences == comparison.timing_notes == []


def test_missing_capabilities_and_live_targets_skip_with_the_reason(
    pytester: pytest.Pytester, catalogue: Path
) -> None:
    on_url = pytester.runpytest(
        "--aigw-scenarios",
        "scenarios/clock.yaml",
        "--aigw-sut-url",
        "http://127.0.0.1:9",
        "-rs",
        "--aigw-report-dir",
        "out",
    )
    on_url.assert_outcomes(skipped=1)
    verdicts = json.loads((pytester.path / "out" / "verdicts.json").read_text())
    assert verdicts["scenarios"] == {"demo.clock": "skipped"}
    assert [s.status for s in load_results(pytester.path / "out" / "results.json").scenarios] == ["skipped"]
    on_url.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] scenarios/clock.yaml:2: target 'url' cannot give clock "
            "(moving the system's clock)",
        ]
    )
    live = pytester.runpytest(
        "--aigw-scenarios", "scenarios", "--aigw-target", "live", "-rs", "--aigw-report-dir", "live-out"
    )
    live.assert_outcomes(skipped=9)
    live.stdout.fnmatch_lines(["aigw: no scenario ran, so no report was written to */live-out"])
    assert not (pytester.path / "live-out").exists()
    live.stdout.fnmatch_lines(
        [
            "SKIPPED [[]2[]] scenarios/failing.yaml:2: target 'live' calls a real Cloudflare account and "
            "may spend money; pass --aigw-live to run it"
        ]
    )


def test_a_mistake_in_a_scenario_file_names_file_line_and_field(pytester: pytest.Pytester) -> None:
    root = pytester.path / "scenarios"
    root.mkdir()
    (root / "typo.yaml").write_text(PASSING.replace("  - name: stream\n", "  - name: stream\n    repet: 2\n"))
    result = pytester.runpytest("--aigw-scenarios", "scenarios")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting scenarios/typo.yaml*",
            "AIGW: scenarios/typo.yaml: 1 problem",
            "  scenarios/typo.yaml:12: steps[[]0[]].repet: Extra inputs are not permitted",
        ]
    )


def test_an_unknown_target_is_a_usage_error(pytester: pytest.Pytester, catalogue: Path) -> None:
    result = pytester.runpytest("--aigw-scenarios", "scenarios", "--aigw-target", "fakes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --aigw-target 'fakes' is not a target: choose one of fake, url, live, replay, worker "
            "or give module:factory"
        ]
    )


def test_a_user_test_runs_a_scenario(pytester: pytest.Pytester, catalogue: Path) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_passing(aigw_run_scenario):
            result = await aigw_run_scenario("scenarios/passing.yaml")
            assert result.status == "passed"

        @pytest.mark.asyncio
        async def test_failing(aigw_run_scenario):
            await aigw_run_scenario("scenarios/failing.yaml")

        @pytest.mark.asyncio
        async def test_failing_unchecked(aigw_run_scenario):
            result = await aigw_run_scenario("scenarios/failing.yaml", check=False)
            assert [c.id for c in result.checks if c.status == "failed"] == ["stream.sse.data_events"]
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "AIGW: scenario demo.failing failed: 1 of 6 expectations",  # 2 of its own, 4 conformance
            "AIGW: stream.sse.data_events did not hold",
            "  expected:  data events >= 50",
        ]
    )
