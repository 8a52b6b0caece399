"""The catalogue against the platform-style Worker (benchmarks/mutation/worker): its correct version raises
no finding the reference does not, and the variant with `stream` in the binding's options instead of the
inputs gets one root cause that says so, and no findings about faults it never received."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from aigw_harness.report.results import ScenarioResult
from aigw_harness.scenarios.runner import RunOptions, run_scenario

from .conftest import needs_node

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "benchmarks" / "mutation" / "worker"
STREAM_IN_OPTIONS = ROOT / "benchmarks" / "mutation" / "mutants" / "09-stream-in-options.patch"
SCENARIOS = ROOT / "scenarios"

pytestmark = [
    needs_node,
    pytest.mark.skipif(not WORKER.is_dir(), reason="the platform-style Worker is not in this checkout"),
]


def options(worker: Path) -> RunOptions:
    return RunOptions(
        target="worker",
        extra={
            "config": str(worker / "apps" / "worker-api" / "wrangler.jsonc"),
            "env": "dev",
            # Its tenants are bundled at build time: the scenario's are bundled in their place.
            "tenants": "bundle:../../tenants/index.ts#tenantDocuments",
        },
    )


def raised(result: ScenarioResult) -> list[str]:
    return [f.id for f in result.findings if f.raised]


@pytest.mark.parametrize(
    "scenario",
    [
        # MODEL_ID and FALLBACK_MODEL_ID are set in the Worker's every environment: unset as assumed.
        "precedence-tenant-default.yaml",
        # Nothing unset: the primary and fallback expected are the ones the Worker's own vars pick.
        "fallback-before-first-token.yaml",
        "precedence-unknown-model.yaml",
        # A tenant with a 200-token budget, bundled for the scenario; the ledger read from the Worker's KV.
        "budget-boundaries.yaml",
        "streaming-contract.yaml",
    ],
)
async def test_the_correct_worker_meets_the_catalogue(scenario: str) -> None:
    result = await run_scenario(SCENARIOS / scenario, options(WORKER))
    failed = [c.id for c in result.checks if c.status == "failed"]
    assert (result.status, failed) == ("passed", []), result.reason
    assert not [f for f in result.findings if f.raised and f.root_cause]


@pytest.fixture
def variant(tmp_path: Path) -> Path:
    """A copy of the Worker with the stream-in-options mutant applied."""
    copy = tmp_path / "worker"
    shutil.copytree(WORKER, copy, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(["git", "apply", str(STREAM_IN_OPTIONS)], cwd=copy, check=True)
    return copy


async def test_a_worker_that_puts_stream_in_the_options_gets_one_root_cause(variant: Path) -> None:

    faults = await run_scenario(SCENARIOS / "fallback-after-first-token.yaml", options(variant))
    (cause,) = [f for f in faults.findings if f.raised and f.root_cause]
    assert cause.id == "UPSTREAM-NOT-STREAMED"
    says = "`stream: true` was passed in the options argument of env.AI.run, not in the inputs"
    assert says in cause.detail
    # The mid-stream faults were never delivered (the calls were not streamed): no finding about them.
    assert raised(faults) == ["UPSTREAM-NOT-STREAMED"]
    assert faults.reason.startswith("fault not exercised: stream.error_frame")
    assert {c.status for c in faults.checks if c.step == "error-frame"} == {"not_exercised"}

    # Its symptoms are grouped under it; a finding the correct Worker raises too (an estimate where the
    # upstream sends no usage frame) is not: an unstreamed call does not explain usage figures.
    fallback = await run_scenario(SCENARIOS / "fallback-before-first-token.yaml", options(variant))
    cause = next(f for f in fallback.findings if f.root_cause and f.raised)
    assert cause.masks == ["FALLBACK-NOT-TAKEN"]
    usage = await run_scenario(SCENARIOS / "spike-usage-in-stream.yaml", options(variant))
    estimated = next(f for f in usage.findings if f.id == "USAGE-ESTIMATED-WITHOUT-FRAME")
    assert estimated.raised
    assert estimated.masked_by is None
    assert next(f for f in usage.findings if f.root_cause and f.raised).masks == []

    # A later step that reads what the undelivered fault would have caused (the failed turn's history) is
    # not judged either.
    sessions = await run_scenario(SCENARIOS / "taxonomy-sessions.yaml", options(variant))
    assert raised(sessions) == ["UPSTREAM-NOT-STREAMED"]
    assert {c.status for c in sessions.checks if c.step == "failed-history"} == {"not_exercised"}
    assert "step failed-history reads the outcome of step failed-turn" in sessions.reason

    # Whatever became of the call (answered, or given up on by the Worker's own timeout), it was made
    # without `stream` in the inputs: the buffering the client saw is its symptom.
    buffering = await run_scenario(SCENARIOS / "taxonomy-stream-buffering.yaml", options(variant))
    assert [f.id for f in buffering.findings if f.raised and not f.masked_by] == ["UPSTREAM-NOT-STREAMED"]

    streaming = await run_scenario(SCENARIOS / "streaming-contract.yaml", options(variant))
    assert [f.id for f in streaming.findings if f.raised and f.root_cause] == ["UPSTREAM-NOT-STREAMED"]
    assert [c.id for c in streaming.checks if c.status == "failed"] == ["conformance.stream"]
