"""Record a scenario session through the proxy (the live target aimed at the fake), then replay it with the
``replay`` target: same answer; with a fault on top, the reference gateway's error path."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_harness.errors import ConfigError
from aigw_harness.live.target import LiveTarget
from aigw_harness.proxy.mitm import ProxySettings, running_proxy
from aigw_harness.proxy.redaction import Redactor
from aigw_harness.proxy.replay_target import ReplayTarget
from aigw_harness.scenarios.targets import ScenarioSetup, TargetOptions
from aigw_harness.sse import decode_all

TENANT = json.loads(Path("scenarios/tenants/example.json").read_text())
SETUP = ScenarioSetup(
    scenario_id="replay",
    tenants=[TENANT],
    environment={},
    budget_store="atomic",
    clock_start=None,
    upstream=None,
)


async def _chat(url: str) -> list[tuple[str, dict[str, object]]]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{url}/chat",
            json={"sessionId": "11111111-1111-1111-1111-111111111111", "message": "hello"},
            headers={"x-tenant-id": "example"},
        )
    return [(e.event, json.loads(e.data)) for e in decode_all(response.content)]


def _text(events: list[tuple[str, dict[str, object]]]) -> str:
    return "".join(str(data.get("content", "")) for name, data in events if name == "message")


async def test_record_a_session_then_replay_it_with_and_without_faults(
    tmp_path: Path, generated: dict[str, str]
) -> None:
    account, token = generated["CLOUDFLARE_ACCOUNT_ID"], generated["CLOUDFLARE_API_TOKEN"]
    config = FakeConfig(
        accounts=[AccountConfig(id=account, api_tokens=[token], gateways=[GatewayConfig(id="gw")])],
        time_scale=0.01,
    )
    async with FakeGateway.running(config) as fake:
        settings = ProxySettings(upstreams=[fake.base_url], cassette_dir=tmp_path)
        async with running_proxy(settings, Redactor(dict(generated))) as ([proxy], recorder, _):
            env = {
                "CLOUDFLARE_ACCOUNT_ID": account,
                "CLOUDFLARE_API_TOKEN": token,
                "AIGW_GATEWAY_ID": "gw",
                "AIGW_LIVE_GATEWAY_BASE": f"{proxy}/v1",
                "AIGW_LIVE_API_BASE": f"{fake.base_url}/client/v4",
            }
            async with LiveTarget(TargetOptions(), env).session(SETUP) as sut:
                recorded = await _chat(sut.chat_url)
    assert len(recorded) > 2
    assert len(recorder.written) == 1

    replay = ReplayTarget(TargetOptions(extra={"cassettes": str(tmp_path), "time_scale": "0"}))
    assert replay.gateway_id == "gw"
    async with replay.session(SETUP) as sut:
        replayed = await _chat(sut.chat_url)
    assert _text(replayed) == _text(recorded)
    assert replayed[-1][0] == "done"

    faulty = ReplayTarget(
        TargetOptions(extra={"cassettes": str(tmp_path), "time_scale": "0", "fault_cut_after": "2"})
    )
    async with faulty.session(SETUP) as sut:
        cut = await _chat(sut.chat_url)
    assert [name for name, _ in cut] == ["message", "message", "error", "done"]


def test_replay_target_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs --target-option cassettes=DIR"):
        ReplayTarget(TargetOptions())
    with pytest.raises(ConfigError, match="fault_delay_events: 'x' is not INDEX:MS"):
        ReplayTarget(TargetOptions(extra={"cassettes": str(tmp_path), "fault_delay_events": "x"}))
