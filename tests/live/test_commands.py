"""The ``aigw live``, ``aigw fidelity`` and ``aigw record`` faces, run as a user would (in a thread, so that
the loopback stand-in keeps serving in the test's event loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aigw_harness.cli import main
from aigw_harness.report.results import Results, load_results
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
    results = load_results(tmp_path / "results.json")
    assert results.ok
    assert "4 requests" in results.run.sut
    assert [s.id for s in results.scenarios] == [
        "spike.live.connectivity",
        "spike.live.routing",
        "spike.live.tenant-metadata",
        "spike.live.streaming",
        "spike.live.stream-usage",
        "spike.live.log-delay",
    ]
    report = (tmp_path / "report.md").read_text()
    assert "spike.live.routing" in report
    everything = out.out + out.err + report + (tmp_path / "report.html").read_text() + results.to_json()
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
    recording, first, second = tmp_path / "rec", tmp_path / "live", tmp_path / "offline"
    live_status = await asyncio.to_thread(
        main, ["fidelity", "--against", "live", "--record", str(recording), "--out", str(first)]
    )
    offline_status = await asyncio.to_thread(
        main, ["fidelity", "--against", str(recording), "--out", str(second)]
    )
    out = capsys.readouterr()
    assert (live_status, offline_status) == (1, 1)  # the stand-in differs from the fake
    assert "fake fidelity: fake against live" in out.out
    live, offline = load_results(first / "results.json"), load_results(second / "results.json")
    assert live.run.target == "live"
    assert offline.run.target == "replay"

    def verdicts(results: Results) -> list[tuple[str, str, str]]:
        return [(s.id, c.id, c.status) for s in results.scenarios for c in s.checks]

    assert verdicts(live) == verdicts(offline)
    assert "failed" in {status for _, _, status in verdicts(live)}


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


def test_live_plan_prices_the_scenarios_the_live_target_would_run(capsys: pytest.CaptureFixture[str]) -> None:
    paths = ["scenarios/streaming-contract.yaml", "scenarios/spike-connectivity.yaml"]
    assert main(["live", "plan", *paths]) == 0
    out = capsys.readouterr().out
    assert "spike.connectivity                   skipped on live: needs upstream_control" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("streaming.contract"))
    assert "10 calls" in line
    assert "run it with: aigw run --target live --target-option max_requests=20" in out
    assert main(["live", "plan", *paths, "--max-tokens", "1000"]) == 2
    assert "tokens > cap 1000 (raise with --max-tokens)" in capsys.readouterr().err
