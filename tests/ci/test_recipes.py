"""Every CI recipe in docs/ci.md, run: its commands in a scratch repository with scenarios and a baseline.

The install steps are not run (the project's own venv is on PATH instead); every other command is, and the
artifact steps' paths must exist afterwards. A deliberately changed scenario must fail the job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docs.blocks import named

from .test_gate_cli import SCENARIO

ROOT = Path(__file__).parents[2]
INSTALL_STEP = "Install aigw-harness"


def recipe(name: str) -> str:
    return named("docs/ci.md", name).text


def shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = ["bash", "-e", "-o", "pipefail", "-c", script]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A team's repository: a few scenarios (one with a known failure), tenants, and the recorded baseline."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "scenarios" / "tenants", root / "scenarios" / "tenants")
    shutil.copy(ROOT / "scenarios" / "streaming-contract.yaml", root / "scenarios")
    (root / "scenarios" / "demo.yaml").write_text(SCENARIO)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    done = shell(recipe("update-baseline"), root)
    assert done.returncode == 0, done.stderr
    assert "baseline aigw-baseline.json: 2 scenarios" in done.stdout
    return root


def fresh_reports(root: Path) -> None:
    shutil.rmtree(root / "reports", ignore_errors=True)


def junit_cases(path: Path) -> set[str]:
    return {case.get("name", "") for case in ET.parse(path).getroot().iter("testcase")}


def test_the_shell_job_passes_keeps_its_artifacts_and_fails_on_a_regression(scratch: Path) -> None:
    fresh_reports(scratch)
    done = shell(recipe("shell"), scratch)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 new, 0 fixed, 1 known finding(s) unchanged" in done.stderr
    # Every expectation is a test case in both; aigw run's also has the checks the runner adds (root causes).
    through_pytest = junit_cases(scratch / "reports" / "pytest-junit.xml")
    assert "health.status" in through_pytest
    assert through_pytest <= junit_cases(scratch / "reports" / "junit.xml")
    assert (scratch / "reports" / "aigw" / "report.html").is_file()

    demo = scratch / "scenarios" / "demo.yaml"
    demo.write_text(
        SCENARIO.replace("path: /health}, expect: {status: 200}", "path: /nope}, expect: {status: 200}")
    )
    try:
        failed = shell(recipe("shell"), scratch)
    finally:
        demo.write_text(SCENARIO)
    assert failed.returncode == 1
    assert "  NEW    gate.demo check health.status: passed -> failed" in failed.stderr


def run_steps(steps: list[dict[str, Any]], root: Path) -> list[str]:
    """Run the ``run:`` steps in order, as ``if: always()`` asks; return the failures."""
    failures: list[str] = []
    for step in steps:
        if "run" not in step or step.get("name") == INSTALL_STEP:
            continue
        done = shell(step["run"], root)
        if done.returncode != 0:
            failures.append(f"{step.get('name')}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return failures


def paths(value: str | list[str]) -> list[str]:
    lines = value.splitlines() if isinstance(value, str) else value
    return [line.strip() for line in lines if line.strip()]


def test_the_github_actions_workflow_runs_and_its_artifact_paths_exist(scratch: Path) -> None:
    fresh_reports(scratch)
    workflow = yaml.safe_load(recipe("github-actions"))
    steps = workflow["jobs"]["contract"]["steps"]
    assert next(s["name"] for s in steps if "run" in s) == INSTALL_STEP
    assert run_steps(steps, scratch) == []
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    junit = [s for s in steps if "junit" in str(s.get("uses", ""))]
    assert uploads
    assert junit
    assert all(s.get("if") == "always()" for s in uploads + junit)
    for path in paths(uploads[0]["with"]["path"]) + paths(junit[0]["with"]["report_paths"]):
        assert (scratch / path).is_file(), path
    assert "reports/aigw/report.html" in paths(uploads[0]["with"]["path"])


def test_the_gitlab_job_runs_and_its_artifacts_exist(scratch: Path) -> None:
    fresh_reports(scratch)
    job = yaml.safe_load(recipe("gitlab-ci"))["aigw-gate"]
    assert job["before_script"][0].startswith("python -m pip install aigw-harness")
    failures = run_steps([{"name": line, "run": line} for line in job["script"]], scratch)
    assert failures == []
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    for path in artifacts["paths"] + artifacts["reports"]["junit"]:
        assert (scratch / path).is_file(), path
    assert "reports/aigw/report.html" in artifacts["paths"]
