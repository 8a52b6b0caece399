"""The gate as CI runs it: aigw baseline update, then aigw run --baseline (--strict, --junitxml)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).parents[2]
TENANTS = ROOT / "scenarios" / "tenants"

# A scenario with a known failure (the health route answers 200, not 418) and the finding it raises.
SCENARIO = """\
id: gate.demo
title: the health route, and a known failure
area: spike
description: d
tenants: [example]
steps:
  - {name: health, request: {tenant: example, method: GET, path: /health}, expect: {status: 200}}
  - {name: teapot, request: {tenant: example, method: GET, path: /health}, expect: {status: 418}}
findings:
  - id: NOT-A-TEAPOT
    title: The health route is not a teapot
    severity: low
    evidence: [teapot]
    recommendation: r
"""


def aigw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aigw_harness", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_baseline_update_then_run_gates_on_what_changed(tmp_path: Path) -> None:
    scenario = tmp_path / "demo.yaml"
    scenario.write_text(SCENARIO)
    baseline = tmp_path / "baseline.json"
    tenants = ("--tenants", str(TENANTS))
    update = aigw("baseline", "update", str(scenario), "--out", str(baseline), *tenants, "-q")
    assert update.returncode == 0, update.stderr
    assert update.stdout == f"baseline {baseline}: 1 scenarios, 2 checks, 1 raised finding(s) recorded\n"

    # Unchanged: the known failure and finding are listed, and the gate passes.
    junit = tmp_path / "junit.xml"
    same = aigw("run", str(scenario), "--baseline", str(baseline), "--junitxml", str(junit),
                "--out", str(tmp_path / "r1"), *tenants, "-q")  # fmt: skip
    assert same.returncode == 0, same.stderr
    assert "baseline " + str(baseline) + ": 0 new, 0 fixed, 1 known finding(s) unchanged" in same.stderr
    assert "  known  gate.demo finding NOT-A-TEAPOT [low]" in same.stderr
    report = (tmp_path / "r1" / "report.md").read_text()
    assert report.index("## Against the baseline") < report.index("## Findings")
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"health.status", "teapot.status"}
    failure = cases["teapot.status"].find("failure")
    assert failure is not None
    assert "expected 418" in (failure.get("message") or "")
    properties = {(p.get("name"), p.get("value")) for p in cases["teapot.status"].iter("property")}
    assert properties == {
        ("finding", "NOT-A-TEAPOT [low] The health route is not a teapot"),
        ("baseline", "known"),
    }

    # A deliberate change that makes another check fail: exit 1, naming it.
    scenario.write_text(
        SCENARIO.replace("path: /health}, expect: {status: 200}", "path: /nope}, expect: {status: 200}")
    )
    changed = aigw(
        "run", str(scenario), "--baseline", str(baseline), "--out", str(tmp_path / "r2"), *tenants, "-q"
    )
    assert changed.returncode == 1, changed.stderr
    assert "  NEW    gate.demo check health.status: passed -> failed" in changed.stderr

    # The known failure fixed: reported, passes, and fails with --strict until the baseline is updated.
    scenario.write_text(SCENARIO.replace("status: 418", "status: 200"))
    fixed = aigw(
        "run", str(scenario), "--baseline", str(baseline), "--out", str(tmp_path / "r3"), *tenants, "-q"
    )
    assert fixed.returncode == 0, fixed.stderr
    assert "  fixed  gate.demo finding NOT-A-TEAPOT: low -> absent" in fixed.stderr
    out = str(tmp_path / "r4")
    strict = aigw("run", str(scenario), "--baseline", str(baseline), "--strict", "--out", out, *tenants, "-q")
    assert strict.returncode == 1
    assert "  FIXED  gate.demo check teapot.status: failed -> passed" in strict.stderr


def test_gate_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = aigw("run", "--baseline", str(tmp_path / "none.json"))
    assert missing.returncode == 2
    assert "--baseline" in missing.stderr
    assert "aigw baseline update --out" in missing.stderr
    strict = aigw("run", "--strict")
    assert strict.returncode == 2
    assert "aigw: error: --strict compares with a baseline: give --baseline FILE too" in strict.stderr
