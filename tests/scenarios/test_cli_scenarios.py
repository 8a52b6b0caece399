"""The aigw run, list, validate, schema and docs commands, through a subprocess as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
TENANTS = ROOT / "scenarios" / "tenants"

PASSING = """\
id: cli.pass
title: health answers
area: spike
description: d
tenants: [example]
steps:
  - {name: health, request: {tenant: example, method: GET, path: /health}, expect: {status: 200}}
"""


def aigw(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aigw_harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_run_writes_the_report_and_says_where(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(PASSING)
    out = tmp_path / "report"
    done = aigw("run", str(tmp_path / "ok.yaml"), "--out", str(out), "--tenants", str(TENANTS), "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert f"report: {out / 'report.html'}" in done.stdout
    assert "[1/1] ok    cli.pass" in done.stderr
    assert "1 scenarios in" in done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 1
    assert results["run"]["seed"] == 3
    assert (out / "report.md").read_text().startswith("# aigw findings report")


def test_a_failed_expectation_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(PASSING.replace("status: 200", "status: 201"))
    done = aigw("run", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "r"), "--tenants", str(TENANTS))
    assert done.returncode == 1
    assert "FAIL  cli.pass" in done.stderr
    assert "health.status" in done.stderr


def test_a_scenario_the_sut_cannot_meet_is_reported_not_applicable(tmp_path: Path) -> None:
    # The example tenant's chat model as FALLBACK_MODEL_ID: the SUT has no fallback to expect.
    chat = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
    expect = '{headers: {x-model-id: {model: "fallback:example"}}}'
    scenario = PASSING.replace("id: cli.pass", "id: cli.na").replace(
        "tenants: [example]\n", f'tenants: [example]\nenvironment: {{FALLBACK_MODEL_ID: "{chat}"}}\n'
    )
    scenario += f"  - {{name: chat, request: {{tenant: example}}, expect: {expect}}}\n"
    (tmp_path / "na.yaml").write_text(scenario)
    done = aigw("run", str(tmp_path / "na.yaml"), "--out", str(tmp_path / "r"), "--tenants", str(TENANTS))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "[1/1] n/a   cli.na (" in done.stderr
    assert "): not applicable: fallback:example (the SUT has no fallback for example" in done.stderr
    assert "0 skipped, 1 not applicable; findings raised: none" in done.stderr


def test_bad_files_and_flags_exit_2_with_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PASSING.replace("area: spike", "area: nope"))
    done = aigw("validate", str(bad))
    assert done.returncode == 2
    assert f"{bad}:3: area: Input should be" in done.stderr
    done = aigw("run", str(bad))
    assert done.returncode == 2
    assert f"{bad}:3: area:" in done.stderr
    done = aigw("run", "--target", "url")
    assert done.returncode == 2
    assert "aigw: error: --target url needs --sut-url URL" in done.stderr
    done = aigw("run", "--time-scale", "0")
    assert done.returncode == 2
    assert "must be above 0" in done.stderr
    done = aigw("run", "--target", "nowhere", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2
    assert "no such file or directory" in done.stderr


def test_unknown_target_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(PASSING)
    done = aigw("run", "--target", "nowhere", str(tmp_path / "ok.yaml"))
    assert done.returncode == 2
    assert "unknown target 'nowhere'" in done.stderr


def test_list_validate_schema_and_help() -> None:
    done = aigw("list")
    assert done.returncode == 0
    assert "spike.streaming" in done.stdout
    assert "[needs: " in done.stdout
    done = aigw("validate", "scenarios")
    assert done.returncode == 0, done.stderr
    assert "scenarios/spike-streaming.yaml: ok" in done.stdout
    done = aigw("schema")
    assert json.loads(done.stdout)["title"] == "Scenario"
    done = aigw("run", "--help")
    for option in (
        "--target",
        "--sut-url",
        "--out",
        "--seed",
        "--time-scale",
        "--target-option",
        "exit status",
    ):
        assert option in done.stdout
    assert aigw("docs", "--help").returncode == 0


NOT_SERVED = """\
id: cli.not-applicable
title: a tenant the deployment does not serve
area: spike
description: d
tenants: [{extends: example, tenantId: nobody-serves-this}]
steps:
  - {name: health, request: {tenant: nobody-serves-this, method: GET, path: /health}, expect: {status: 200}}
"""


async def test_run_prints_a_not_applicable_scenario_with_its_reason(tmp_path: Path) -> None:
    import asyncio

    from aigw_harness.gateway.server import GatewaySettings, ReferenceGateway

    scenario = tmp_path / "not-applicable.yaml"
    scenario.write_text(NOT_SERVED)
    settings = GatewaySettings.for_upstream(
        "http://127.0.0.1:9", account_id="a" * 32, api_token="t" * 40, tenants_dir=TENANTS
    )
    out = str(tmp_path / "out")
    async with ReferenceGateway.running(settings) as gateway:
        url = gateway.base_url
        done = await asyncio.to_thread(aigw, "run", "--sut-url", url, "--out", out, str(scenario))
    assert "Traceback" not in done.stderr, done.stderr
    printed = (done.stdout + done.stderr).splitlines()
    line = next(line for line in printed if line.startswith("[1/1]"))
    assert line.startswith("[1/1] n/a   cli.not-applicable (")
    assert "not applicable: tenant 'nobody-serves-this'" in line
    assert any(" 0 skipped, 1 not applicable; findings raised: none" in line for line in printed)
