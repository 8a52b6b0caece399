"""The findings document from any runs' results: the milestone's checklist answered per system, side by side.

``render_findings(runs)`` takes one or more results (the reference on the fake, a team's Worker in workerd,
a live spike, a replay, any URL) and renders Markdown whose spine is the milestone's checklist
(``milestone-M2.yaml``): each item gets one row per run, answered

- **yes**: every scenario answering it that ran held (judged on checks that do not depend on timing);
- **no**: at least one of them failed, with the failing checks as evidence;
- **not shown**: none of them ran in that run (absent, skipped for a missing capability, or could not run).

Items no run answered are listed as open. Where two runs observed the same check differently (a Worker
against the reference, the fake against live), the difference is a finding of its own. Every statement
names the run it comes from (its label, target and run id), and links to that run's ``report.md``.
Rendering is deterministic for the same inputs: no clock is read, timings appear only as per-run summaries,
and everything is sorted.

This module knows results, not how they were obtained: it never imports the runner or a target.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aigw_fakes.datafiles import parse_model
from aigw_harness.report.render import environment, stable_checks, stable_outcome, stable_verdict
from aigw_harness.report.results import CheckResult, FindingResult, Results, ScenarioResult, ScenarioStatus

__all__ = [
    "Checklist",
    "Disagreement",
    "LabelledRun",
    "Row",
    "default_label",
    "load_checklist",
    "render_findings",
]

Verdict = Literal["yes", "no", "not shown"]

_TARGET_LABELS = {
    "fake": "reference on the fake",
    "worker": "Worker in workerd",
    "live": "live",
    "replay": "replay",
    "url": "deployment",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChecklistItem(_Model):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    text: str
    questions: list[str] = Field(min_length=1)


class ChecklistSection(_Model):
    title: str
    items: list[ChecklistItem]


class Checklist(_Model):
    milestone: str
    sections: list[ChecklistSection]


def load_checklist(text: str | None = None, name: str = "harness/report/milestone-M2.yaml") -> Checklist:
    """The built-in M2 checklist, or ``text`` in the same shape (errors name the file, line and field)."""
    if text is None:
        text = (
            resources.files("aigw_harness.report").joinpath("milestone-M2.yaml").read_text(encoding="utf-8")
        )
    return parse_model(text, Checklist, name)


@dataclass(frozen=True)
class LabelledRun:
    label: str
    """What the reader calls this system: "reference on the fake", "Worker in workerd", "live"..."""
    results: Results
    report_link: str | None = None
    """Where this run's report.md is, relative to the document (None when there is none)."""


def default_label(results: Results) -> str:
    label = _TARGET_LABELS.get(results.run.target, results.run.target)
    if results.run.target == "live" and "stand-in" in results.run.sut:
        return "live (stand-in)"
    return label


def report_link(results_path: Path, document: Path) -> str | None:
    """The run's report.md (beside its results.json), relative to where the document is written."""
    report = results_path.parent / "report.md"
    if not report.is_file():
        return None
    return Path(os.path.relpath(report.resolve(), document.resolve().parent)).as_posix()


@dataclass
class Row:
    """One run's answer to one checklist item."""

    run: LabelledRun
    verdict: Verdict
    scenarios: list[tuple[str, str]] = field(default_factory=list)
    """(scenario id, its stable outcome) for every scenario answering the item in this run."""
    failing: list[str] = field(default_factory=list)
    """One line per failed check: scenario, check, observed."""

    def link(self, scenario_id: str) -> str | None:
        if self.run.report_link is None:
            return None
        return f"{self.run.report_link}#{_anchor(scenario_id)}"


@dataclass(frozen=True)
class Disagreement:
    kind: str
    """"Worker vs reference", "fake vs live", or "A vs B"."""
    scenario: str
    first: str
    second: str
    lines: list[str]


def _anchor(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text)


@dataclass
class _Judged:
    """One run, its scenarios judged on timing-free checks."""

    run: LabelledRun
    outcome: dict[str, str]
    stable: dict[str, list[str]]
    observed: dict[str, dict[str, str]]
    by_id: dict[str, ScenarioResult]
    findings: list[tuple[ScenarioResult, FindingResult]]


def _judge(run: LabelledRun) -> _Judged:
    outcome: dict[str, str] = {}
    stable: dict[str, list[str]] = {}
    observed: dict[str, dict[str, str]] = {}
    findings: list[tuple[ScenarioResult, FindingResult]] = []
    for scenario in run.results.scenarios:
        stable[scenario.id], observed[scenario.id] = stable_checks(scenario)
        outcome[scenario.id] = stable_outcome(scenario, stable[scenario.id])
        findings += [
            (scenario, f)
            for f in scenario.findings
            if stable_verdict(f, scenario.checks, stable[scenario.id])
        ]
    by_id = {s.id: s for s in run.results.scenarios}
    return _Judged(run, outcome, stable, observed, by_id, findings)


def _row(judged: _Judged, item: ChecklistItem) -> Row:
    wanted = set(item.questions)
    answering = sorted(s.id for s in judged.run.results.scenarios if wanted & set(s.questions))
    row = Row(judged.run, "not shown", [(sid, judged.outcome[sid]) for sid in answering])
    ran = [sid for sid in answering if judged.outcome[sid] in ("passed", "failed")]
    if not ran:
        return row
    for sid in ran:
        if judged.outcome[sid] != "failed":
            continue
        for check in judged.by_id[sid].checks:
            if check.status == "failed" and check.id in judged.stable[sid]:
                row.failing.append(
                    f"`{sid}` {check.step or check.id}: {check.description or check.expected} "
                    f"(observed {judged.observed[sid][check.id]})"
                )
    row.verdict = "no" if row.failing else "yes"
    return row


def _pair_kind(first: Results, second: Results) -> str:
    targets = {first.run.target, second.run.target}
    if targets == {"worker", "fake"}:
        return "Worker vs reference"
    if "live" in targets and targets & {"fake", "replay"}:
        return "fake vs live" if "fake" in targets else "replay vs live"
    return f"{first.run.target} vs {second.run.target}"


def _check_line(check: CheckResult, observed: str) -> str:
    return f"{check.status} (observed {observed})"


def _disagreements(judged: Sequence[_Judged]) -> list[Disagreement]:
    found: list[Disagreement] = []
    for i, first in enumerate(judged):
        for second in judged[i + 1 :]:
            kind = _pair_kind(first.run.results, second.run.results)
            for sid in sorted(set(first.by_id) & set(second.by_id)):
                if {first.outcome[sid], second.outcome[sid]} - {"passed", "failed"}:
                    continue  # a scenario that did not run in one of them is coverage, not a disagreement
                lines = []
                theirs = {c.id: c for c in second.by_id[sid].checks}
                for check in first.by_id[sid].checks:
                    other = theirs.get(check.id)
                    if (
                        other is None
                        or check.id not in first.stable[sid]
                        or check.id not in second.stable[sid]
                        or "skipped" in (check.status, other.status)
                    ):
                        continue
                    mine, yours = first.observed[sid][check.id], second.observed[sid][other.id]
                    if check.status != other.status or (check.status == "failed" and mine != yours):
                        lines.append(
                            f"{check.step or check.id}: {check.description or check.expected}: "
                            f"{first.run.label} {_check_line(check, mine)}; "
                            f"{second.run.label} {_check_line(other, yours)}"
                        )
                if lines:
                    found.append(Disagreement(kind, sid, first.run.label, second.run.label, lines))
    return found


def _timing_summary(results: Results) -> str:
    """Per-run timings, summarised (medians over every stream), never raw."""
    ttft = [e.ttft_ms for s in results.scenarios for e in s.exchanges if e.ttft_ms is not None]
    if not ttft:
        return "no stream timed"
    return f"time to first token: median {statistics.median(ttft):.0f} ms over {len(ttft)} streams"


def render_findings(runs: Sequence[LabelledRun], checklist: Checklist | None = None) -> str:
    """The findings document for ``runs`` (in the order given: the first is the baseline of comparisons)."""
    if not runs:
        raise ValueError("render_findings needs at least one run")
    checklist = checklist or load_checklist()
    judged = [_judge(run) for run in runs]
    sections = []
    open_items: list[tuple[str, ChecklistItem]] = []
    for section in checklist.sections:
        items = []
        for item in section.items:
            rows = [_row(j, item) for j in judged]
            if all(r.verdict == "not shown" for r in rows):
                open_items.append((section.title, item))
            items.append((item, rows))
        sections.append((section, items))
    run_lines = []
    for j in judged:
        results = j.run.results
        counts = {status.value: 0 for status in ScenarioStatus}
        for value in j.outcome.values():
            counts[value] += 1
        run_lines.append((j.run, counts, _timing_summary(results)))
    raised = [
        (j.run, scenario, finding)
        for j in judged
        for scenario, finding in sorted(
            j.findings, key=lambda p: (_SEVERITY[p[1].severity], p[0].id, p[1].id)
        )
    ]
    return (
        environment()
        .get_template("findings.md.j2")
        .render(
            checklist=checklist,
            runs=run_lines,
            sections=sections,
            open_items=open_items,
            disagreements=_disagreements(judged),
            raised=raised,
            anchor=_anchor,
        )
    )


_SEVERITY = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
