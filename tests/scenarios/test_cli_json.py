"""Machine-readable output of the scenario commands: ``--json`` for list, validate and run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _aigw(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aigw_harness", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_list_json_has_every_scenario_with_its_needs() -> None:
    done = _aigw("list", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    ids = {row["id"] for row in rows}
    assert "spike.connectivity" in ids
    assert all(set(row) == {"id", "area", "title", "path", "needs"} for row in rows)
    assert len(ids) == len(rows)


def test_validate_json_names_each_problem_with_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: t\narea: nowhere\ndescription: d\nsteps: []\n", encoding="utf-8")
    good = ROOT / "scenarios" / "spike-streaming.yaml"
    done = _aigw("validate", "--json", str(good), str(bad))
    assert done.returncode == 2
    report = json.loads(done.stdout)
    assert report["ok"] is False
    verdicts = {Path(f["path"]).name: f for f in report["files"]}
    assert verdicts["spike-streaming.yaml"]["ok"] is True
    problems = verdicts["bad.yaml"]["problems"]
    assert {p["field"] for p in problems} >= {"area", "steps"}
    assert all(p["line"] for p in problems)


def test_run_json_prints_the_summary_and_report_paths(tmp_path: Path) -> None:
    scenario = ROOT / "scenarios" / "spike-streaming.yaml"
    done = _aigw("run", "--json", "-q", "--out", str(tmp_path / "out"), str(scenario))
    assert done.returncode in (0, 1), done.stderr
    summary = json.loads(done.stdout)
    assert summary["summary"]["total"] == 1
    assert Path(summary["report"]["results"]).is_file()
    assert summary["ok"] is (done.returncode == 0)
