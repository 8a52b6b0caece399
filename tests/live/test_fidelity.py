"""Fidelity: fake against fake (no differences), against a different Cloudflare stand-in (differences found,
no secret in the report), and against a recording of that run (the same differences, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.datafiles import DataFileError
from aigw_fakes.server import FakeGateway
from aigw_harness.errors import ConfigError
from aigw_harness.live.cost import CostCapExceeded, CostCaps, CostGuard
from aigw_harness.live.credentials import LiveCredentials
from aigw_harness.live.fidelity import default_probes, json_shape, load_fidelity
from aigw_harness.live.fidelity_run import RUN_FILE, against_cassettes, against_live
from aigw_harness.live.findings import fidelity_results
from aigw_harness.live.logcheck import PollSchedule
from aigw_harness.proxy.redaction import Redactor
from tests.live.cloudflare_stub import StubAccount
from tests.live.conftest import environment

FAST = PollSchedule(timeout_s=1.0, interval_s=0.01, max_interval_s=0.05)


async def test_the_fake_against_itself_shows_no_difference() -> None:
    config = FakeConfig(
        accounts=[
            AccountConfig(
                id="acct-other-0001", api_tokens=["token-other-0001"], gateways=[GatewayConfig(id="gw")]
            )
        ],
        time_scale=0.001,
    )
    async with FakeGateway.running(config) as fake:
        creds = LiveCredentials.from_environment(
            {
                "CLOUDFLARE_ACCOUNT_ID": fake.account_id,
                "CLOUDFLARE_API_TOKEN": "token-other-0001",
                "AIGW_GATEWAY_ID": "gw",
                "AIGW_LIVE_API_BASE": fake.api_base_url,
                "AIGW_LIVE_GATEWAY_BASE": f"{fake.base_url}/v1",
            }
        )
        report = await against_live(creds, default_probes(), CostGuard(CostCaps()), model="m", schedule=FAST)
    data = report.to_dict()
    assert data["differences"] == []
    assert data["summary"]["probes"] == 7
    assert data["summary"]["aspects_compared"] >= 20


async def test_differences_are_found_recorded_and_reproduced_offline(
    tmp_path: Path, account: StubAccount, stub_url: str
) -> None:
    account.gateway_token = None
    creds = LiveCredentials.from_environment(environment(account, stub_url))
    live = await against_live(
        creds, default_probes(), CostGuard(CostCaps()), model="m", record_dir=tmp_path, schedule=FAST
    )
    found = {(d.probe, d.aspect) for d in live.differences}
    # The stand-in answers the OpenAI-compatible path with native frames and omits headers the fake sends.
    assert ("openai-stream", "frames") in found
    assert ("native-json", "headers") in found
    bad_token = next(d for d in live.differences if (d.probe, d.aspect) == ("error-bad-token", "status"))
    assert (bad_token.fake, bad_token.other) == (401, 403)
    everything = fidelity_results(live, "run", Redactor({})).to_json()
    everything += "".join(p.read_text() for p in sorted(tmp_path.iterdir()))  # noqa: ASYNC240
    for value in (account.account_id, account.api_token):
        assert value not in everything

    saved = tmp_path.parent / "fidelity.json"
    saved.write_text(json.dumps(live.to_dict()))
    assert load_fidelity(saved) == live.data()

    offline = await against_cassettes(tmp_path, default_probes(), schedule=FAST)
    assert offline.to_dict()["differences"] == live.to_dict()["differences"]
    assert offline.to_dict()["probes"] == live.to_dict()["probes"]


async def test_live_fidelity_respects_the_cost_caps(account: StubAccount, stub_url: str) -> None:
    creds = LiveCredentials.from_environment(environment(account, stub_url))
    with pytest.raises(CostCapExceeded):
        await against_live(
            creds, default_probes(), CostGuard(CostCaps(max_requests=2)), model="m", schedule=FAST
        )
    assert account.requests == []


async def test_a_directory_without_a_run_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{RUN_FILE} is missing"):
        await against_cassettes(tmp_path, default_probes())
    (tmp_path / RUN_FILE).write_text("gateway_id: gw\nmodel: m\nauthenticated: maybe\n")
    with pytest.raises(DataFileError, match=r"fidelity-run.yaml:3: authenticated"):
        await against_cassettes(tmp_path, default_probes())


def test_json_shape() -> None:
    assert json_shape({"b": [1, 2], "a": {"x": None, "y": True}, "c": []}) == {
        "a": {"x": "null", "y": "bool"},
        "b": ["number"],
        "c": [],
    }
