"""The live path rehearsed offline: ``aigw fake serve`` stands in for Cloudflare, and ``aigw live preflight``,
``aigw live plan`` and ``aigw run --target live`` run against it end to end, as separate processes, exactly
as a team would run them against their account. CI runs this file.

The credentials are generated for each run (the stand-in is configured with them), so nothing here can pass
by knowing a fixed value, and every artifact of the rehearsal (reports, results, everything the commands
print) is searched for them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aigw_harness.live.target import LiveTarget
from aigw_harness.report.results import load_results
from aigw_harness.scenarios import kinds
from aigw_harness.scenarios.loader import discover, load_scenarios

REPO = Path(__file__).resolve().parents[2]
GATEWAY_ID = "rehearsal"
CAPS = ("--max-requests", "100", "--max-tokens", "100000")
"""The whole catalogue's worst case is over the default caps (20 requests), so a full run raises them."""
LOG_DELAY_S = 0.3
"""Logs become readable this long after their request, as on Cloudflare (there: seconds)."""


@dataclass(frozen=True)
class StandIn:
    url: str
    account_id: str
    api_token: str
    gateway_token: str

    @property
    def secrets(self) -> dict[str, str]:
        return {
            "CLOUDFLARE_ACCOUNT_ID": self.account_id,
            "CLOUDFLARE_API_TOKEN": self.api_token,
            "AIGW_GATEWAY_TOKEN": self.gateway_token,
        }

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "AIGW_"))}
        return env | self.secrets | {"AIGW_GATEWAY_ID": GATEWAY_ID}


async def _aigw(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``aigw ARGS`` as its own process; its exit status and everything it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aigw_harness",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    return process.returncode or 0, output.decode()


@pytest.fixture
async def stand_in(tmp_path: Path) -> AsyncIterator[StandIn]:
    account_id, api_token, gateway_token = (
        secrets.token_hex(16),
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(32),
    )
    config = {
        "accounts": [
            {
                "id": account_id,
                # The gateway token is an account token too, as Cloudflare's AI Gateway Run tokens are.
                "api_tokens": [api_token, gateway_token],
                "gateways": [{"id": GATEWAY_ID, "authentication": True, "collect_logs": True}],
            }
        ]
    }
    path = tmp_path / "stand-in.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aigw_harness",
        "fake",
        "serve",
        "--port",
        "0",
        "--config",
        str(path),
        "--log-level",
        "warning",
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=60)).decode()
        found = re.search(r"serving on (http://\S+) ", line)
        assert found, f"the stand-in did not start: {line!r}"
        url = found.group(1)
        async with httpx.AsyncClient() as http:
            answer = await http.put(f"{url}/__aigw/features", json={"log_visibility_delay": LOG_DELAY_S})
            answer.raise_for_status()
        yield StandIn(url, account_id, api_token, gateway_token)
    finally:
        process.terminate()
        await process.wait()


def _leaks(texts: dict[str, str], secret_values: dict[str, str]) -> list[str]:
    return [
        f"{name} in {where}"
        for where, text in texts.items()
        for name, v in secret_values.items()
        if v in text
    ]


async def test_preflight_plan_and_catalogue_run_against_the_stand_in(
    stand_in: StandIn, tmp_path: Path
) -> None:
    repo = REPO
    env = stand_in.environment()
    out = tmp_path / "live-run"

    # Preflight: endpoints from the environment variables.
    preflight_env = env | {
        "AIGW_LIVE_API_BASE": f"{stand_in.url}/client/v4",
        "AIGW_LIVE_GATEWAY_BASE": f"{stand_in.url}/v1",
    }
    status, preflight = await _aigw("live", "preflight", env=preflight_env, cwd=repo)
    assert status == 0, preflight
    assert "[pass] API token: valid and active" in preflight
    assert "[pass] gateway authentication: authenticated; a gateway token is set" in preflight
    assert "[fail]" not in preflight

    status, plan = await _aigw("live", "plan", "scenarios", *CAPS, env=env, cwd=repo)
    assert status == 0, plan
    assert re.search(r"total: \d+ requests, ≤\d+ tokens", plan), plan

    # The run: endpoints from target options.
    status, run = await _aigw(
        "run",
        "--target",
        "live",
        "--target-option",
        f"api_base={stand_in.url}/client/v4",
        "--target-option",
        f"gateway_base={stand_in.url}/v1",
        "--target-option",
        "log_timeout=20",
        "--target-option",
        f"max_requests={CAPS[1]}",
        "--target-option",
        f"max_tokens={CAPS[3]}",
        "--out",
        str(out),
        "scenarios",
        env=env,
        cwd=repo,
    )
    assert status in (0, 1), run
    results = load_results(out / "results.json")
    assert results.run.target == "live"
    assert "stand-in for Cloudflare" in results.run.sut

    # Exactly the scenarios whose needs the live target meets ran; every other says which it lacks.
    loaded = load_scenarios(discover([repo / "scenarios"]))
    runnable = {i.scenario.id for i in loaded if kinds.plan(i.scenario, LiveTarget.capabilities).runnable}
    ran = {s.id for s in results.scenarios if s.status in ("passed", "failed")}
    assert ran == runnable
    assert len(ran) >= 15
    assert not [s.id for s in results.scenarios if s.status == "error"], run
    for scenario in results.scenarios:
        if scenario.status == "skipped":
            assert scenario.reason.startswith("target 'live' cannot give "), scenario.reason
    for line in plan.splitlines():
        if "skipped on live" in line:
            assert line.split()[0] not in ran
    # Logs arrived after their delay and were found: every upstream call of a ran scenario has its log.
    for scenario in results.scenarios:
        for exchange in scenario.exchanges:
            if exchange.upstream_models:
                assert exchange.log_ids, (scenario.id, exchange.id)
    print(f"rehearsal: {len(ran)} scenarios ran on live, {len(results.scenarios) - len(ran)} skipped")

    # Nothing secret reached any artifact: files written, and everything each command printed.
    texts = {
        str(p.relative_to(tmp_path)): p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()
    }
    texts |= {"preflight output": preflight, "plan output": plan, "run output": run}
    assert len(texts) >= 6
    assert _leaks(texts, stand_in.secrets) == []
