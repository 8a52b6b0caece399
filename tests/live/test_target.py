"""The ``live`` target on loopback: the reference gateway in-process, the stand-in as "Cloudflare"."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from aigw_harness.errors import TargetUnavailable
from aigw_harness.live.cost import CostCapExceeded
from aigw_harness.live.target import LiveTarget
from aigw_harness.scenarios.loader import discover, load_scenarios
from aigw_harness.scenarios.targets import Capability, ScenarioSetup, TargetOptions, load_target
from aigw_harness.sse import decode_all
from tests.live.cloudflare_stub import StubAccount
from tests.live.conftest import environment

TENANT = json.loads(Path("scenarios/tenants/example.json").read_text())
SESSION = "11111111-1111-1111-1111-111111111111"


def _setup() -> ScenarioSetup:
    return ScenarioSetup(
        scenario_id="live-smoke",
        tenants=[TENANT],
        environment={},
        budget_store="atomic",
        clock_start=None,
        upstream=None,
    )


async def _chat(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(
            f"{url}/chat", json={"sessionId": SESSION, "message": "hello"}, headers={"x-tenant-id": "example"}
        )


async def test_chat_through_the_live_target_is_tagged_capped_and_logged(
    account: StubAccount, stub_url: str
) -> None:
    options = TargetOptions(extra={"max_requests": "1", "run_id": "aigw-run-test"})
    target = LiveTarget(options, environment(account, stub_url))
    assert Capability.UPSTREAM_CONTROL not in target.capabilities
    async with target.session(_setup()) as sut:
        first = await _chat(sut.chat_url)
        second = await _chat(sut.chat_url)
        assert sut.logs is not None
        # Logs appear a little after the response (50 ms at the stand-in): poll, bounded.
        logs = []
        for _ in range(150):
            logs = await sut.logs.list()
            if logs:
                break
            await asyncio.sleep(0.02)
    events = decode_all(first.content)
    assert "".join(json.loads(e.data).get("content", "") for e in events if e.event == "message") == "1 2 3 4"
    # Every upstream request went to the configured gateway (not the tenant file's), tagged with the run id.
    [request] = account.requests
    assert request["path"].startswith(f"/v1/{account.account_id}/{account.gateway_id}/workers-ai/")
    assert request["headers"]["cf-aig-event-id"].startswith("aigw-run-test")
    assert json.loads(request["headers"]["cf-aig-metadata"])["runId"] == "aigw-run-test"
    assert request["headers"]["cf-aig-authorization"] == f"Bearer {account.gateway_token}"
    # The cap of one request refused the second before it left the machine.
    assert [e.event for e in decode_all(second.content)][-2:] == ["error", "done"]
    assert target.transports[0].refused == [
        "request request-2 refused: 2 requests > cap 1 (raise with --max-requests)"
    ]
    assert [log.model for log in logs] == [TENANT["aiModels"]["chat"]]
    assert logs[0].metadata["tenantId"] == "example"


def test_the_registry_finds_the_live_target_and_names_missing_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "AIGW_GATEWAY_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TargetUnavailable, match="CLOUDFLARE_API_TOKEN: an API token"):
        load_target("live", TargetOptions())


def test_a_run_over_the_caps_does_not_start() -> None:
    env = {"CLOUDFLARE_ACCOUNT_ID": "a" * 32, "CLOUDFLARE_API_TOKEN": "t", "AIGW_GATEWAY_ID": "g"}
    loaded = load_scenarios(discover([Path("scenarios")]))
    raised = {"max_requests": "100", "max_tokens": "100000"}
    LiveTarget(TargetOptions(extra=raised), env).before_run(loaded)  # the whole catalogue fits these caps
    tight = LiveTarget(TargetOptions(), env)  # the default caps: 20 requests
    with pytest.raises(
        CostCapExceeded, match=r"did not start:\n  \d+ requests > cap 20 \(raise with --max-requests\)"
    ):
        tight.before_run(loaded)
    assert tight.guard.requests == 0
