"""The catalogue against the platform-style Worker (benchmarks/mutation/worker): its correct version raises
no finding the reference does not, and the variant with `stream` in the binding's options instead of the
inputs gets one root cause that says so, and no findings about faults it never received."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aigw_harness.report.results import ScenarioResult
from aigw_harness.scenarios.runner import RunOptions, run_scenario
from tests.docs.blocks import named

from .conftest import needs_node

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "benchmarks" / "mutation" / "worker"
MUTANTS = ROOT / "benchmarks" / "mutation" / "mutants"
STREAM_IN_OPTIONS = MUTANTS / "09-stream-in-options.patch"
SCENARIOS = ROOT / "scenarios"

pytestmark = [
    needs_node,
    pytest.mark.skipif(not WORKER.is_dir(), reason="the platform-style Worker is not in this checkout"),
]


def options(worker: Path, **more: str) -> RunOptions:
    return RunOptions(
        target="worker",
        extra={
            "config": str(worker / "apps" / "worker-api" / "wrangler.jsonc"),
            "env": "dev",
            # Its tenants are bundled at build time: the scenario's are bundled in their place.
            "tenants": "bundle:../../tenants/index.ts#tenantDocuments",
            **more,
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


def mutated(tmp_path: Path, patch: Path) -> Path:
    """A copy of the Worker with one mutant applied."""
    copy = tmp_path / "worker"
    shutil.copytree(WORKER, copy, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(["git", "apply", str(patch)], cwd=copy, check=True)
    return copy


@pytest.fixture
def variant(tmp_path: Path) -> Path:
    """A copy of the Worker with the stream-in-options mutant applied."""
    return mutated(tmp_path, STREAM_IN_OPTIONS)


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
    (history,) = [c for c in sessions.checks if c.id == "failed-history"]
    # The session check rests on the failed turn's request, whose error frame was never delivered.
    assert history.status == "not_exercised"
    assert history.reason.startswith("fault not exercised: stream.error_frame applies to streamed upstream")

    # Whatever became of the call (answered, or given up on by the Worker's own timeout), it was made
    # without `stream` in the inputs: the buffering the client saw is its symptom.
    buffering = await run_scenario(SCENARIOS / "taxonomy-stream-buffering.yaml", options(variant))
    assert [f.id for f in buffering.findings if f.raised and not f.masked_by] == ["UPSTREAM-NOT-STREAMED"]

    streaming = await run_scenario(SCENARIOS / "streaming-contract.yaml", options(variant))
    assert [f.id for f in streaming.findings if f.raised and f.root_cause] == ["UPSTREAM-NOT-STREAMED"]
    assert [c.id for c in streaming.checks if c.status == "failed"] == ["conformance.stream"]


def session_checks(result: ScenarioResult) -> dict[str, tuple[str, str, str]]:
    """Session check id → (status, where the session was read, why it failed)."""
    return {
        c.id: (c.status, str((c.observed or {}).get("source", "")), c.reason)
        for c in result.checks
        if c.kind == "session"
    }


async def test_sessions_are_read_from_the_workers_durable_object_storage() -> None:
    stored = options(WORKER, sessions_do="SESSIONS")
    result = await run_scenario(SCENARIOS / "accounting-sessions.yaml", stored)
    key = "acct:11111111-1111-1111-1111-111111111111"
    assert session_checks(result) == {
        "history": ("passed", f"Durable Object SESSIONS '{key}', key 'messages'", ""),
    }
    assert result.status == "passed"


async def test_a_worker_storing_the_refused_turn_fails_from_storage_and_route(tmp_path: Path) -> None:
    worker = mutated(tmp_path, MUTANTS / "21-budget-append-before-check.patch")
    for extra in ({"sessions_do": "SESSIONS"}, {}):
        result = await run_scenario(SCENARIOS / "accounting-sessions.yaml", options(worker, **extra))
        status, source, reason = session_checks(result)["history"]
        assert (status, reason) == ("failed", "5 stored messages, expected 4"), source
        assert source.startswith("Durable Object SESSIONS" if extra else "the history route GET /chat/")
        assert "REFUSED-TURN-IN-HISTORY" in raised(result)


async def test_a_history_kept_newest_first_is_read_in_order_and_the_model_is_given_it_reversed(
    tmp_path: Path,
) -> None:
    # Newest first is a shape the contract allows (the platform's session object answers that way), so the
    # stored history passes; but this Worker also sends it to the model newest first, which is the defect.
    worker = mutated(tmp_path, MUTANTS / "52-session-newest-first.patch")
    result = await run_scenario(SCENARIOS / "taxonomy-sessions.yaml", options(worker, sessions_do="SESSIONS"))
    checks = session_checks(result)
    assert checks["history"][0] == "passed"
    assert checks["failed-history"][0] == "passed"
    status, _, reason = checks["sent-in-order"]
    assert status == "failed"
    assert reason.startswith("sent message 0 role: expected 'user', got \"assistant\"")
    assert "SESSION-ORDER" in raised(result)


def test_the_documented_run_reads_sessions_from_storage(tmp_path: Path) -> None:
    """docs/worker-bridge.md's sessions_do command, as written, from the repository's root."""
    text = named("docs/worker-bridge.md", "sessions-from-storage").text.replace("\\\n", " ")
    argv = shlex.split(text)
    assert argv[:2] == ["aigw", "run"]
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "aigw_harness", *argv[1:], "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 scenarios in" in done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    sources = {
        (s["id"], c["id"]): c["observed"]["source"].partition(" '")[0]
        for s in results["scenarios"]
        for c in s["checks"]
        if c["kind"] == "session" and "source" in c["observed"]
    }
    assert sources == {
        ("accounting.sessions", "history"): "Durable Object SESSIONS",
        ("taxonomy.sessions", "history"): "Durable Object SESSIONS",
        ("taxonomy.sessions", "failed-history"): "Durable Object SESSIONS",
        ("taxonomy.budget", "refused-history"): "Durable Object SESSIONS",
    }
