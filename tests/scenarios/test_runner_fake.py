"""The runner against the embedded fake target: passes, failures with evidence, skips and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from aigw_fakes.datafiles import parse_model
from aigw_fakes.server import FakeGateway
from aigw_harness.errors import TargetUnavailable
from aigw_harness.report.results import CheckStatus, ScenarioStatus
from aigw_harness.scenarios.model import Scenario
from aigw_harness.scenarios.runner import RunOptions, run_scenario, run_scenarios
from aigw_harness.scenarios.targets import Capability, ScenarioSetup, SystemUnderTest, TargetOptions
from aigw_harness.scenarios.url_target import UrlTarget

TENANTS = Path(__file__).parents[2] / "scenarios" / "tenants"
OPTIONS = RunOptions(time_scale=0.02, tenants_dir=TENANTS)


def scenario(text: str) -> Scenario:
    return parse_model(text, Scenario, "<test>")


STREAM = scenario(
    """
id: t.stream
title: stream
area: streaming
description: d
requires: [upstream_control]
tenants: [example]
upstream: {default: {tokens: 6, token_delay_ms: 100, ttfb_ms: 100}}
steps:
  - name: s
    request: {tenant: example, new_session: true}
    concurrency: 2
    expect:
      status: 200
      sse: {data_events: 6, terminal_done: true, framing: true, events_json: true, progressive: true}
      ttft_ms: {min: 90}
  - name: wrong
    request: {tenant: example, stream: false}
    expect: {status: 201, headers: {x-model-id: "@cf/meta/llama-3.1-8b-instruct-fp8-fast"}}
checks:
  - id: calls
    upstream_calls: {count: 3, gateway_id: example-gateway, metadata: {tenantId: example}}
  - id: agree
    agreement: {sources: [response, metrics, upstream], fields: [model, tokens_out]}
measure: [ttft_ms, inter_token_gap_ms]
findings:
  - {id: BAD-STATUS, title: t, severity: high, evidence: [wrong], recommendation: r}
  - {id: GOOD, title: t, severity: info, when: passed, evidence: [calls, agree], recommendation: r}
  - {id: NEVER, title: t, severity: low, evidence: [s], recommendation: r}
"""
)


async def test_expectations_checks_measurements_and_findings() -> None:
    result = await run_scenario(STREAM, OPTIONS)
    assert result.status is ScenarioStatus.FAILED
    checks = {c.id: c for c in result.checks}
    assert checks["s.sse.progressive"].status is CheckStatus.PASSED
    assert checks["s.sse.framing"].status is CheckStatus.PASSED
    assert checks["s.ttft_ms"].status is CheckStatus.PASSED
    assert checks["wrong.status"].status is CheckStatus.FAILED
    assert checks["wrong.status"].reason == "1 of 1 responses: r0003 expected 201, got 200"
    assert checks["wrong.headers.x-model-id"].status is CheckStatus.PASSED
    assert checks["calls"].status is CheckStatus.PASSED, checks["calls"].reason
    assert checks["agree"].status is CheckStatus.PASSED, checks["agree"].reason
    exchanges = {e.id: e for e in result.exchanges}
    assert [exchanges[r].concurrency for r in ("r0001", "r0002")] == [2, 2]
    assert all(e.log_ids for e in result.exchanges), "every exchange is tied to its cf-aig-log-id"
    assert exchanges["r0001"].upstream_models == ["@cf/meta/llama-3.1-8b-instruct-fp8-fast"]
    ttft = next(m for m in result.measurements if m.name == "ttft_ms")
    assert ttft.count == 2
    assert ttft.p50 is not None
    assert ttft.p50 >= 90
    findings = {f.id: f for f in result.findings}
    assert findings["BAD-STATUS"].raised
    assert findings["BAD-STATUS"].evidence[0].exchanges == ["r0003"]
    assert findings["BAD-STATUS"].evidence[0].log_ids == exchanges["r0003"].log_ids
    assert findings["GOOD"].raised
    assert not findings["NEVER"].raised


async def test_budget_clock_ledger_and_overshoot() -> None:
    budget = scenario(
        """
id: t.budget
title: budget
area: budget
description: d
requires: [upstream_control]
tenants:
  - {extends: example, tenantId: b, tokenBudget: {daily: 100}, rateLimit: {perMinute: 1000, burst: 1000}}
clock: 2026-02-07T23:59:59Z
upstream: {default: {tokens: 40, prompt_tokens: 10}}
steps:
  - {name: fill, request: {tenant: b, new_session: true, stream: false}, repeat: 4,
     measure_overshoot: {tenant: b}}
  - clock: {advance_s: 2}
  - {name: next-day, request: {tenant: b, new_session: true, stream: false}, expect: {status: 200}}
checks:
  - {id: today, ledger: {tenant: b, used: 50, agrees_with_metrics: true}}
"""
    )
    result = await run_scenario(budget, OPTIONS)
    assert result.status is ScenarioStatus.PASSED, [c.reason for c in result.checks if c.status != "passed"]
    (point,) = result.overshoot
    assert (point.limit, point.admitted, point.consumed, point.overshoot_tokens) == (100, 2, 100, 0)
    assert [e.status for e in result.exchanges] == [200, 200, 429, 429, 200]


async def test_missing_capability_skips_with_the_reason() -> None:
    target = UrlTarget(TargetOptions(sut_url="http://127.0.0.1:9"))
    result = await run_scenario(STREAM, RunOptions(target=target))
    assert result.status is ScenarioStatus.SKIPPED
    assert result.reason == (
        "target 'url' cannot give upstream_control "
        "(scripting the upstream's behaviour (its upstream is not our fake))"
    )
    # Tenants and environment are assumptions: a deployment that cannot be read or asked makes the
    # scenario not applicable, with the assumption named (never a finding).
    inline = STREAM.model_copy(
        update={
            "upstream": None,
            "requires": [],
            "tenants": [{"extends": "example"}],
            "environment": {"MODEL_ID": "m"},
        }
    )
    # A deployment that answers (any HTTP answer: here the fake's), so that the session opens.
    async with FakeGateway.running() as fake:
        reachable = UrlTarget(TargetOptions(sut_url=fake.base_url))
        result = await run_scenario(inline, RunOptions(target=reachable))
    assert result.status is ScenarioStatus.NOT_APPLICABLE
    assert result.reason.startswith("not applicable: MODEL_ID=m (the target does not report the SUT's")
    assert not result.findings


async def test_unreachable_system_is_a_configuration_error_not_a_failed_scenario() -> None:
    plain = scenario(
        "id: t.plain\ntitle: t\narea: streaming\ndescription: d\n"
        "steps:\n  - {name: s, request: {tenant: example}, expect: {status: 200}}\n"
    )
    target = UrlTarget(TargetOptions(sut_url="http://127.0.0.1:9"))
    with pytest.raises(TargetUnavailable, match=r"^cannot reach --sut-url http://127\.0\.0\.1:9: "):
        await run_scenario(plain, RunOptions(target=target))


async def test_run_scenarios_collects_results_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "id: t.health\ntitle: t\narea: spike\ndescription: d\ntenants: [example]\n"
        "steps:\n  - {name: h, request: {tenant: example, method: GET, path: /health},\n"
        "     expect: {status: 200}}\n"
    )
    seen: list[tuple[int, int, str, str | None]] = []
    results = await run_scenarios(
        [path], OPTIONS, lambda i, n, r, sid: seen.append((i, n, sid, r.status if r else None)), run_id="t"
    )
    assert results.ok
    assert results.summary.passed == 1
    assert results.run.target == "fake"
    assert seen == [(0, 1, "t.health", None), (0, 1, "t.health", "passed")]


class _BrokenTarget:
    name = "broken"
    capabilities = frozenset(Capability)

    def __init__(self, error: Exception) -> None:
        self.error = error

    @asynccontextmanager
    async def session(self, setup: ScenarioSetup) -> AsyncIterator[SystemUnderTest]:
        raise self.error
        yield SystemUnderTest(chat_url="http://127.0.0.1:9", capabilities=self.capabilities)


async def test_a_target_that_cannot_run_here_stops_the_run() -> None:
    with pytest.raises(TargetUnavailable, match=r"Node\.js is missing"):
        await run_scenario(STREAM, RunOptions(target=_BrokenTarget(TargetUnavailable("Node.js is missing"))))


async def test_a_scenario_that_breaks_is_reported_as_an_error() -> None:
    result = await run_scenario(STREAM, RunOptions(target=_BrokenTarget(RuntimeError("port in use"))))
    assert result.status is ScenarioStatus.ERROR
    assert result.reason == "RuntimeError: port in use"


_TIME_TRAVEL = """
id: t.time-travel
title: a model retired today still serves at the scenario's instant
area: precedence
description: d
tenants: [example]
environment: {MODEL_ID: "@cf/meta/llama-3.1-8b-instruct", FALLBACK_MODEL_ID: "@cf/meta/llama-3.1-8b-instruct"}
clock: CLOCK
upstream: {default: {tokens: 3}}
steps:
  - name: s
    request: {tenant: example, stream: false}
    expect: {status: 200}
  - clock: {advance_s: 17280000}
  - name: later
    request: {tenant: example, stream: false}
    expect: {status: 502}
"""


async def test_the_fake_judges_model_retirement_by_the_scenario_clock() -> None:
    # llama-3.1-8b-instruct was retired on 2026-05-30: in February it served, and 200 days later it is gone.
    result = await run_scenario(
        scenario(_TIME_TRAVEL.replace("CLOCK", "2026-02-07T12:00:00Z")), RunOptions(target="fake")
    )
    statuses = {c.id: c.status for c in result.checks if c.step in ("s", "later")}
    assert statuses == {"s.status": CheckStatus.PASSED, "later.status": CheckStatus.PASSED}
