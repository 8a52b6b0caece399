"""Small, hand-made results for the gate's tests (any status string, as newer runners write)."""

from __future__ import annotations

from typing import Any

from aigw_harness.report.results import (
    CheckResult,
    Evidence,
    FindingResult,
    Results,
    RunInfo,
    ScenarioResult,
    Summary,
)


def check(check_id: str, status: str, kind: str = "expect", reason: str = "") -> CheckResult:
    step = check_id.split(".")[0] if "." in check_id else None
    fields: dict[str, Any] = {
        "id": check_id, "kind": kind, "status": status, "expected": "x", "reason": reason, "exchanges": [],
        "log_ids": [], "step": step, "description": "", "observed": None,
    }  # fmt: skip
    return CheckResult.model_construct(**fields)


def finding(finding_id: str, severity: str, raised: bool, *refs: tuple[str, str, str]) -> FindingResult:
    evidence = [
        Evidence.model_validate({"ref": r, "kind": k, "status": s, "summary": "s"}) for r, k, s in refs
    ]
    return FindingResult.model_validate(
        {"id": finding_id, "title": f"{finding_id} title", "severity": severity, "raised": raised,
         "when": "failed", "recommendation": "r", "evidence": evidence}
    )  # fmt: skip


def scenario(
    scenario_id: str, status: str, checks: list[CheckResult], findings: list[FindingResult]
) -> ScenarioResult:
    fields: dict[str, Any] = {
        "id": scenario_id, "title": scenario_id, "area": "streaming", "description": "", "questions": [],
        "path": f"scenarios/{scenario_id}.yaml", "status": status, "reason": "", "requires": [],
        "budget_store": "atomic", "started_at": "2026-01-01T00:00:00Z", "duration_s": 0.1, "exchanges": [],
        "checks": checks, "measurements": [], "overshoot": [], "findings": findings, "upstream_calls": None,
        "log_records": None,
    }  # fmt: skip
    return ScenarioResult.model_construct(**fields)


def results(*scenarios: ScenarioResult) -> Results:
    info = RunInfo(
        id="run", started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:01Z", duration_s=1.0,
        target="fake", sut="the fake", seed=0, time_scale=0.05, aigw_version="0",
    )  # fmt: skip
    listed = list(scenarios)
    summary = Summary.model_construct(
        total=len(listed), passed=0, failed=0, skipped=0, error=0, findings_raised={}, checks_passed=0,
        checks_failed=0,
    )  # fmt: skip
    return Results.model_construct(
        schema_version=1, run=info, summary=summary, baseline=None, scenarios=listed
    )
