"""``aigw run``'s progress line names every scenario status, with the reason where there is one."""

from __future__ import annotations

import io

import pytest

from aigw_harness.commands.run import ProgressPrinter
from aigw_harness.report.results import ScenarioResult, ScenarioStatus


@pytest.mark.parametrize("status", list(ScenarioStatus))
def test_every_status_prints_one_line(status: ScenarioStatus) -> None:
    out = io.StringIO()
    result = ScenarioResult(
        id="demo.one",
        title="t",
        area="streaming",
        description="d",
        path="demo.yaml",
        status=status,
        reason="MODEL_ID unset",
        budget_store="atomic",
        started_at="2026-01-01T00:00:00Z",
        duration_s=0.5,
    )
    ProgressPrinter(out)(0, 1, result, "demo.one")
    line = out.getvalue()
    assert line.startswith("[1/1] ")
    assert line.count("\n") == 1
    assert "demo.one (0.50 s)" in line
    if status in (ScenarioStatus.SKIPPED, ScenarioStatus.ERROR, ScenarioStatus.NOT_APPLICABLE):
        assert line.endswith(": MODEL_ID unset\n")


def test_not_applicable_is_marked_as_such() -> None:
    out = io.StringIO()
    result = ScenarioResult.model_validate(
        {
            "id": "demo.one",
            "title": "t",
            "area": "streaming",
            "description": "d",
            "path": "demo.yaml",
            "status": "not_applicable",
            "reason": "MODEL_ID unset",
            "budget_store": "atomic",
            "started_at": "2026-01-01T00:00:00Z",
            "duration_s": 0.5,
        }
    )
    ProgressPrinter(out)(0, 1, result, "demo.one")
    assert out.getvalue() == "[1/1] n/a   demo.one (0.50 s): MODEL_ID unset\n"
