"""Locust against the embedded target on loopback: one process, and a master with two workers.

What is checked does not depend on timing: every answer Locust counted is one request the upstream received
(each complete answer makes exactly one upstream call here), the ledger charged what the SUT recorded, and
every child process is gone afterwards.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from aigw_harness.load.analysis import analyse
from aigw_harness.load.run import LoadOptions, run_load, run_worker
from aigw_harness.scenarios.targets import TargetOptions

PROFILE = """\
name: loopback
tenants:
  - tenant: {tenantId: lb, accountId: a, aiGatewayId: lb-gateway,
             aiModels: {chat: "@cf/meta/llama-3.1-8b-instruct-fast", embeddings: "@cf/baai/bge-m3"},
             vectorizeNamespace: lb, rateLimit: {perMinute: 100000, burst: 100000},
             featureFlags: {}, allowedHosts: [], apiKeys: []}
sessions: {pool: 0}
stream_ratio: 1.0
think_time_s: {min: 0.0, max: 0.05}
upstream: {default: {tokens: 8, token_delay_ms: 2}}
goals: {error_rate: 0.0, contract_violations: 0, lost_tokens: 0}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(PROFILE, encoding="utf-8")
    return path


def _assert_counted_once(results_dir: Path, facts_answers: int, upstream_calls: int) -> None:
    assert facts_answers > 0
    assert facts_answers == upstream_calls
    assert (results_dir / "locust.json").is_file()


async def test_one_machine_counts_every_stream_once(profile: Path, tmp_path: Path) -> None:
    options = LoadOptions(
        out_dir=tmp_path / "out",
        profile_path=profile,
        users=3,
        spawn_rate=3,
        duration_s=2,
        target_options=TargetOptions(tenants_dir=tmp_path),
    )
    facts = await run_load(options)
    results = analyse(facts)
    load = results.scenarios[0].load
    assert load is not None
    assert load.complete == load.answers
    assert facts.upstream_calls is not None
    _assert_counted_once(options.out_dir, load.answers, len(facts.upstream_calls))
    assert facts.usage_records is not None
    assert len(facts.usage_records) == load.answers
    [drift] = load.drift
    assert drift.lost == 0
    assert drift.charged == drift.recorded == drift.billed  # streams carry real usage: no estimate
    assert results.ok, [c for c in results.scenarios[0].checks if c.status != "passed"]


async def test_master_and_two_workers_aggregate_every_stream_once(profile: Path, tmp_path: Path) -> None:
    port = _free_port()
    options = LoadOptions(
        out_dir=tmp_path / "out",
        profile_path=profile,
        users=4,
        spawn_rate=4,
        duration_s=3,
        target_options=TargetOptions(tenants_dir=tmp_path),
        master=True,
        expect_workers=2,
        master_bind_port=port,
    )
    async with asyncio.TaskGroup() as group:
        master = group.create_task(run_load(options))
        workers = [
            group.create_task(run_worker(profile, "127.0.0.1", port, 0, tmp_path / f"w{i}" / "worker.log"))
            for i in range(2)
        ]
    facts = master.result()
    assert [w.result() for w in workers] == [0, 0]
    load = analyse(facts).scenarios[0].load
    assert load is not None
    assert facts.upstream_calls is not None
    _assert_counted_once(options.out_dir, load.answers, len(facts.upstream_calls))
    log = (tmp_path / "w0" / "worker.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log
