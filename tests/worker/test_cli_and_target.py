"""``aigw worker serve`` as a user runs it, and the ``worker`` target's options."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aigw_harness.cli import main
from aigw_harness.errors import ConfigError
from aigw_harness.scenarios.targets import Capability, TargetOptions, load_target

from .conftest import CHAT_WORKER, needs_node


def test_serve_rejects_a_bad_upstream_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "serve", "--config", str(CHAT_WORKER), "--upstream", "127.0.0.1:9"]) == 2
    assert "--upstream '127.0.0.1:9': expected an http:// URL" in capsys.readouterr().err
    status = main(
        ["worker", "serve", "--config", str(CHAT_WORKER), "--env", "prod", "--upstream", "http://x"]
    )
    assert status == 2
    assert "no environment 'prod' under 'env' (known: dev)" in capsys.readouterr().err
    assert (
        main(["worker", "serve", "--config", str(CHAT_WORKER), "--upstream", "http://x", "--var", "NOEQUALS"])
        == 2
    )
    assert "--var 'NOEQUALS': expected NAME=VALUE" in capsys.readouterr().err


@needs_node
def test_serve_runs_until_interrupted_and_stops_cleanly() -> None:
    command = [
        sys.executable,
        "-m",
        "aigw_harness",
        "worker",
        "serve",
        "--config",
        str(CHAT_WORKER),
        "--env",
        "dev",
    ]
    command += ["--upstream", "http://127.0.0.1:9", "--port", "0", "--var", "MODEL_ID=@cf/from-cli"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            match = re.match(
                r"Worker aigw-chat-fixture-dev \(env dev\) ready on (http://127\.0\.0\.1:\d+)", first
            )
            assert match, first
            banner = [process.stdout.readline() for _ in range(4)]
            assert "  stubbed (fails when used): SEARCH_INDEX (vectorize)\n" in banner
            health = httpx.get(
                match.group(1) + "/health", headers={"x-tenant-id": "example"}, timeout=10
            ).json()
            assert health["data"]["modelId"] == "@cf/from-cli"
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_target_needs_a_config_and_an_ai_binding(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs --target-option config="):
        load_target("worker", TargetOptions())
    with pytest.raises(ConfigError, match=r"declares no 'ai' binding; the worker target answers env\.AI"):
        load_target("worker", TargetOptions(extra={"config": str(CHAT_WORKER)}))


@needs_node
def test_target_options_shape_its_capabilities() -> None:
    base = {"config": str(CHAT_WORKER), "env": "dev"}
    plain = load_target("worker", TargetOptions(extra=base))
    # The ledger is read from the Worker's own KV namespaces without being told which one.
    assert plain.capabilities == {
        Capability.UPSTREAM_CALLS,
        Capability.UPSTREAM_CONTROL,
        Capability.GATEWAY_LOGS,
        Capability.CLOCK,
        Capability.LEDGER,
        Capability.SUT_CONFIG,
        Capability.SESSIONS,
    }
    full = load_target("worker", TargetOptions(extra={**base, "ledger_kv": "USAGE", "tenants": "var:T"}))
    assert Capability.LEDGER in full.capabilities
    assert Capability.TENANT_CONFIG in full.capabilities
    assert Capability.METRICS not in full.capabilities
    with pytest.raises(ConfigError, match="ledger_kv='NOPE': the Worker has no such KV namespace"):
        load_target("worker", TargetOptions(extra={**base, "ledger_kv": "NOPE"}))
    with pytest.raises(ConfigError, match=r"ledger_key='\{tenant\}:\{when\}': use the placeholders"):
        load_target("worker", TargetOptions(extra={**base, "ledger_key": "{tenant}:{when}"}))
    with pytest.raises(ConfigError, match="tenants='all'"):
        load_target("worker", TargetOptions(extra={**base, "tenants": "all"}))
    from_var = load_target("worker", TargetOptions(extra={**base, "tenants": "var:TENANTS"}))
    assert Capability.TENANT_CONFIG in from_var.capabilities


def test_runner_config_is_json_with_the_scenario_overrides() -> None:
    from aigw_harness.worker.bridge import runner_config
    from aigw_harness.worker.wrangler import load_worker_config

    document = runner_config(
        load_worker_config(CHAT_WORKER, "dev"),
        "http://127.0.0.1:1/",
        host="127.0.0.1",
        port=0,
        extra_vars={"A": "1"},
    )
    assert json.loads(json.dumps(document)) == document
    assert document["upstream"] == "http://127.0.0.1:1"
    assert document["vars"]["A"] == "1"
    assert document["durableObjects"][0] == {"binding": "SESSIONS", "className": "SessionDO", "sqlite": True}
    assert document["stubs"] == [
        {"binding": "SEARCH_INDEX", "kind": "vectorize", "className": None, "sqlite": False}
    ]


SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@needs_node
@pytest.mark.parametrize(
    ("scenario", "status", "failed", "skipped"),
    [
        ("streaming-contract.yaml", "passed", [], []),
        ("precedence-allow-list.yaml", "passed", [], []),
        ("budget-boundaries.yaml", "passed", [], []),  # the Worker's clock moved to the budget's UTC day
        # The test Worker charges nothing for a stream cut short: a true finding. The usage-record check
        # alone is skipped (a Worker has none), the rest of the scenario runs.
        ("budget-charging.yaml", "failed", ["ledger-total"], ["statuses-recorded"]),
    ],
)
async def test_catalogue_scenarios_run_against_the_test_worker(
    scenario: str, status: str, failed: list[str], skipped: list[str]
) -> None:
    from aigw_harness.scenarios.runner import RunOptions, run_scenario

    options = RunOptions(
        target="worker",
        extra={"config": str(CHAT_WORKER), "env": "dev", "tenants": "var:TENANTS", "ledger_kv": "USAGE"},
    )
    result = await run_scenario(SCENARIOS / scenario, options)
    seen_failed = [check.id for check in result.checks if check.status == "failed"]
    seen_skipped = [check.id for check in result.checks if check.status == "skipped"]
    assert (result.status, seen_failed, seen_skipped) == (status, failed, skipped), result.reason
    assert result.exchanges
    for check in result.checks:
        if check.status == "skipped":
            assert check.reason == "needs metrics (reading the system's own usage records)"


def test_ledger_keys_follow_the_pattern_and_usage_values_parse() -> None:
    from datetime import UTC, datetime

    from aigw_harness.scenarios.state import DEFAULT_LEDGER_KEY, ledger_key, parse_usage

    at = datetime(2026, 2, 28, 23, 59, tzinfo=UTC)
    assert ledger_key(DEFAULT_LEDGER_KEY, "alpha", "daily", at) == "alpha:token-usage:daily:2026-02-28"
    assert ledger_key(DEFAULT_LEDGER_KEY, "alpha", "monthly", at) == "alpha:token-usage:monthly:2026-02"
    assert ledger_key("usage/{tenant}/{day}", "b", "monthly", at) == "usage/b/2026-02-28"
    values = ("120", "12.9", '{"used": 7}', "abc", None, "[1]")
    assert [parse_usage(v) for v in values] == [120, 12, 7, 0, 0, 0]
