"""The ``aigw live``, ``aigw fidelity`` and ``aigw record`` faces, run as a user would (in a thread, so that
the loopback stand-in keeps serving in the test's event loop)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from harness.cli import main
from tests.live.cloudflare_stub import StubAccount
from tests.live.conftest import environment


async def test_live_spike_writes_both_reports(
    tmp_path: Path,
    account: StubAccount,
    stub_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in environment(account, stub_url).items():
        monkeypatch.setenv(name, value)
    status = await asyncio.to_thread(
        main, ["live", "spike", "--out", str(tmp_path), "--tenant-id", "tenant-x", "--log-timeout", "5"]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "[pass] API token: valid and active" in out.out
    report = json.loads((tmp_path / "spike-report.json").read_text())
    assert report["ok"] is True
    assert report["requests_sent"] == 4
    assert [i["key"] for i in report["checklist"]] == [
        "connectivity",
        "routing",
        "tenant-metadata",
        "streaming",
        "stream-usage",
        "log-delay",
    ]
    everything = out.out + out.err + (tmp_path / "spike-report.md").read_text() + json.dumps(report)
    for value in (account.account_id, account.api_token, account.gateway_token or ""):
        assert value not in everything


async def test_live_spike_stops_at_a_failed_preflight(
    tmp_path: Path,
    account: StubAccount,
    stub_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account.collect_logs = False
    for name, value in environment(account, stub_url).items():
        monkeypatch.setenv(name, value)
    status = await asyncio.to_thread(main, ["live", "spike", "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert status == 1
    assert "fix: turn on logging in the gateway's settings (collect_logs)" in out.out
    assert "preflight failed: nothing was sent" in out.err
    assert account.requests == []


async def test_fidelity_records_then_compares_offline(
    tmp_path: Path,
    account: StubAccount,
    stub_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in environment(account, stub_url).items():
        monkeypatch.setenv(name, value)
    recording, first, second = tmp_path / "rec", tmp_path / "live.json", tmp_path / "offline.json"
    live_status = await asyncio.to_thread(
        main, ["fidelity", "--against", "live", "--record", str(recording), "--out", str(first)]
    )
    offline_status = await asyncio.to_thread(
        main, ["fidelity", "--against", str(recording), "--out", str(second)]
    )
    out = capsys.readouterr()
    assert (live_status, offline_status) == (1, 1)  # the stand-in differs from the fake
    assert "# Fake fidelity: fake against live" in out.out
    live, offline = json.loads(first.read_text()), json.loads(second.read_text())
    assert live["kind"] == "aigw-fidelity/1"
    assert live["differences"] == offline["differences"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["record", "--cassettes", "x"], "--upstream is required when recording"),
        (
            ["record", "--cassettes", "x", "--upstream", "http://127.0.0.1:1", "--delay-event", "1:5"],
            "--delay-event works only with --replay",
        ),
        (
            ["record", "--cassettes", "x", "--replay", "--delay-event", "a:5"],
            "--delay-event 'a:5': expected INDEX:MS",
        ),
        (["record", "--cassettes", "x", "--replay", "--drop", "1,b"], "--drop: 'b' is not an event index"),
        (
            ["record", "--cassettes", "/nonexistent-aigw", "--replay"],
            "cassette directory /nonexistent-aigw does not exist",
        ),
        (["fidelity", "--against", "/nonexistent-aigw"], "give 'live' or an existing recording directory"),
        (
            ["live", "spike", "--dry-run", "--neuron-rate", "x=1"],
            "--neuron-rate 'x=1': expected MODEL=IN,OUT",
        ),
    ],
)
def test_usage_errors_say_what_is_wrong(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_dry_run_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["live", "spike", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "total: 4 requests" in out
    assert out.rstrip().endswith("dry run: nothing was sent")
