"""Step, check and measurement kinds: every kind of the scenario model is registered, needs are derived
from what a scenario does, and a plan skips a check alone, naming the missing fact."""

from __future__ import annotations

from typing import Any

import pytest

from aigw_harness.scenarios import kinds
from aigw_harness.scenarios.model import _STEP_ACTIONS, CHECK_KINDS, MEASUREMENTS, MeasurementCheck, Scenario
from aigw_harness.scenarios.runner import RunOptions, run_scenario
from aigw_harness.scenarios.targets import Capability as C


def scenario(**extra: Any) -> Scenario:
    document: dict[str, Any] = {
        "id": "kinds.test",
        "title": "t",
        "area": "spike",
        "description": "d",
        "steps": [{"request": {"tenant": "example"}, "expect": {"status": 200}}],
    }
    document.update(extra)
    return Scenario.model_validate(document)


def test_every_kind_of_the_model_is_registered() -> None:
    kinds.step_kind(scenario().steps[0])  # loads the concrete kinds
    assert set(kinds.StepKind.registry) == set(_STEP_ACTIONS)
    assert set(kinds.CheckKind.registry) == set(CHECK_KINDS)
    names = set(MeasurementCheck.model_fields["name"].annotation.__args__)  # type: ignore[union-attr]
    assert set(kinds.MeasurementKind.registry) == names | set(MEASUREMENTS)


def test_needs_are_derived_from_setup_steps_and_checks() -> None:
    plain = scenario()
    assert kinds.scenario_needs(plain) == frozenset()
    busy = scenario(
        upstream={"default": {"tokens": 3}},
        clock="2026-02-07T12:00:00Z",
        tenants=[{"extends": "example", "tenantId": "x"}],
        steps=[{"request": {"tenant": "x"}}, {"clock": {"advance_s": 60}}],
        checks=[
            {"id": "calls", "upstream_calls": {"count": 1}},
            {"id": "billed", "ledger": {"tenant": "x", "agrees_with_billed": True}},
            {"id": "records", "metrics": {"count": 1}},
            {"id": "over", "measurement": {"name": "overshoot_tokens", "value": 0}},
            {"id": "ttft", "measurement": {"name": "ttft_ms", "value": {"max": 1}}},
            {"id": "agree", "agreement": {"sources": ["stream", "logs"], "fields": ["tokens_out"]}},
        ],
    )
    # Inline tenants are assumptions (arranged or not applicable), not needs.
    assert kinds.setup_needs(busy) == {C.UPSTREAM_CONTROL, C.CLOCK}
    by_check = {check.id: kinds.check_needs(check) for check in busy.checks}
    assert by_check == {
        "calls": {C.UPSTREAM_CALLS},
        "billed": {C.LEDGER, C.UPSTREAM_CALLS},
        "records": {C.METRICS},
        "over": {C.LEDGER},
        "ttft": frozenset(),
        "agree": {C.GATEWAY_LOGS},
    }


def test_a_plan_skips_checks_alone_and_the_scenario_only_for_what_it_plays() -> None:
    subject = scenario(
        checks=[
            {"id": "calls", "upstream_calls": {"count": 1}},
            {"id": "records", "metrics": {"count": 1}},
            {"id": "old", "upstream_calls": {"count": 1}, "requires": ["ledger"]},
        ]
    )
    on_worker = kinds.plan(subject, {C.UPSTREAM_CALLS, C.UPSTREAM_CONTROL, C.CLOCK})
    assert on_worker.runnable
    assert dict(on_worker.skipped_checks) == {"records": {C.METRICS}, "old": {C.LEDGER}}
    bare = kinds.plan(scenario(steps=[{"upstream": {"default": {}}}]), set())
    assert not bare.runnable
    assert bare.reason("url") == (
        "target 'url' cannot give upstream_control "
        "(scripting the upstream's behaviour (its upstream is not our fake))"
    )
    with pytest.raises(ValueError, match="unknown capability 'nope'"):
        kinds.capability("nope")


async def test_a_check_the_target_cannot_give_is_skipped_alone_with_the_fact_named() -> None:
    class NoMetrics:
        """The embedded fake target, told it cannot read usage records."""

        name = "no-metrics"

        def __init__(self) -> None:
            from aigw_harness.scenarios.fake_target import FakeTarget
            from aigw_harness.scenarios.targets import TargetOptions

            self.inner = FakeTarget(TargetOptions())
            self.capabilities = self.inner.capabilities - {C.METRICS}

        def session(self, setup: Any) -> Any:
            from contextlib import asynccontextmanager

            @asynccontextmanager
            async def narrowed() -> Any:
                async with self.inner.session(setup) as sut:
                    sut.capabilities = sut.capabilities - {C.METRICS}
                    yield sut

            return narrowed()

    subject = scenario(
        upstream={"default": {"tokens": 3}},
        checks=[
            {"id": "calls", "upstream_calls": {"count": 1}},
            {"id": "records", "metrics": {"count": 1}},
        ],
    )
    result = await run_scenario(subject, RunOptions(target=NoMetrics()))
    statuses = {
        c.id: (c.status.value, c.reason) for c in result.checks if c.kind not in ("expect", "conformance")
    }
    assert result.status.value == "passed"
    assert statuses == {
        "calls": ("passed", ""),
        "records": ("skipped", "needs metrics (reading the system's own usage records)"),
    }
