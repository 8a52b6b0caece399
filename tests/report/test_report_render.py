"""Rendering: results.json round-trips, report.md and a self-contained report.html with its charts."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from aigw_fakes.datafiles import DataFileError
from aigw_harness.report.render import render_html, render_markdown, write_report
from aigw_harness.report.results import (
    CheckResult,
    CheckStatus,
    EventRecord,
    Evidence,
    Exchange,
    FindingResult,
    Measurement,
    OvershootPoint,
    Results,
    RunInfo,
    ScenarioResult,
    ScenarioStatus,
    load_results,
)


def stream_exchange(rid: str, step: str, times: list[float]) -> Exchange:
    events = [EventRecord(t_ms=t, event="message", data='{"content":"x"}') for t in times]
    events.append(EventRecord(t_ms=times[-1] + 1, event="done", data='{"done":true}'))
    return Exchange(
        id=rid,
        step=step,
        started_ms=0,
        status=200,
        stream=True,
        events=events,
        ttft_ms=times[0],
        duration_ms=times[-1] + 1,
        log_ids=[f"01LOG{rid}"],
        raw_stream='data: {"content":"x"}\n\n',
    )


def sample_results() -> Results:
    failing = CheckResult(
        id="burst.status",
        step="burst",
        kind="expect",
        status=CheckStatus.FAILED,
        expected="== 429",
        observed=200,
        reason="r0002 answered 200",
        exchanges=["r0002"],
        log_ids=["01LOGr0002"],
    )
    budget = ScenarioResult(
        id="budget.burst",
        title="Concurrent burst <overshoot> & friends",
        area="budget",
        description="A burst of | pipes | and <script>alert(1)</script>.",
        questions=["Does a burst overshoot the daily budget?"],
        path="scenarios/budget.yaml",
        status=ScenarioStatus.FAILED,
        budget_store="kv",
        started_at="2026-02-07T00:00:00Z",
        duration_s=0.5,
        exchanges=[
            stream_exchange("r0001", "burst", [40, 60, 90]),
            stream_exchange("r0002", "burst", [55, 70]),
        ],
        checks=[failing],
        measurements=[
            Measurement(name="ttft_ms", unit="ms", count=2, min=40, p50=55, p90=55, p95=55, max=55, mean=47.5)
        ],
        overshoot=[
            OvershootPoint(
                step="burst",
                tenant="alpha",
                period="daily",
                concurrency=c,
                budget_store=store,
                limit=100,
                used=100 + over,
                consumed=100 + over,
                overshoot_tokens=over,
                admitted=c,
            )
            for store, factor in (("kv", 30), ("atomic", 0))
            for c, over in ((1, 0), (4, 4 * factor), (16, 16 * factor))
        ],
        findings=[
            FindingResult(
                id="BUDGET-KV-OVERSHOOT",
                title="KV budget overshoots under a burst",
                severity="high",
                raised=True,
                when="failed",
                recommendation="Reserve before calling the model.",
                evidence=[
                    Evidence(
                        ref="burst",
                        kind="step",
                        status="failed",
                        summary="expected == 429, observed 200",
                        exchanges=["r0002"],
                        log_ids=["01LOGr0002"],
                        timings_ms={"ttft": 55},
                    )
                ],
            ),
            FindingResult(
                id="NOT-RAISED",
                title="Never shown",
                severity="low",
                raised=False,
                when="passed",
                recommendation="n/a",
                evidence=[Evidence(ref="burst", kind="step", status="failed", summary="")],
            ),
        ],
    )
    skipped = ScenarioResult(
        id="observability.logs",
        title="Logs agree",
        area="observability",
        description="d",
        path="scenarios/obs.yaml",
        status=ScenarioStatus.SKIPPED,
        reason="the target cannot give gateway_logs",
        budget_store="atomic",
        started_at="2026-02-07T00:00:01Z",
        duration_s=0.0,
    )
    scenarios = [budget, skipped]
    return Results(
        run=RunInfo(
            id="20260207T000000Z",
            started_at="2026-02-07T00:00:00Z",
            finished_at="2026-02-07T00:00:02Z",
            duration_s=2.0,
            target="fake",
            sut="reference gateway on the embedded fake",
            seed=7,
            time_scale=0.05,
            aigw_version="0.1.0",
        ),
        summary=Results.summarise(scenarios),
        scenarios=scenarios,
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.external: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")
        for name in ("src", "href"):
            value = values.get(name) or ""
            if value.startswith(("http:", "https:", "//")) and tag != "svg":
                self.external.append(value)
        if tag in {"link", "img", "iframe"} or (tag == "script" and values.get("src")):
            self.external.append(tag)  # an inline script (the filters) loads nothing


def test_summary_counts() -> None:
    summary = sample_results().summary
    assert (summary.total, summary.failed, summary.skipped, summary.passed) == (2, 1, 1, 0)
    assert summary.findings_raised == {"high": 1}
    assert (summary.checks_passed, summary.checks_failed) == (0, 1)
    assert not sample_results().ok


def test_html_is_self_contained_parses_and_holds_its_charts() -> None:
    html = render_html(sample_results())
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert parser.external == []
    assert (
        parser.tags.count("svg") == 3
    )  # overview, overshoot, one token-arrival chart (timings per scenario)
    assert parser.tags.count("polyline") == 1 + 2  # one overshoot series (one scenario), two arrival streams
    assert parser.tags.count("circle") == 6
    assert "all streams" not in html  # no chart pools the scripted delays of different scenarios
    assert "Token arrival: budget.burst" in html
    for href in parser.hrefs:
        assert href.startswith("#")
        assert href[1:] in parser.ids, f"dangling link {href}"
    assert "#budget-burst-r0002" in parser.hrefs  # the finding's evidence links to the request


def test_html_escapes_scenario_text() -> None:
    html = render_html(sample_results())
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Concurrent burst &lt;overshoot&gt; &amp; friends" in html


def test_markdown_lists_raised_findings_with_evidence_only() -> None:
    text = render_markdown(sample_results())
    assert "| [BUDGET-KV-OVERSHOOT](#budget-burst-BUDGET-KV-OVERSHOOT) | high | `budget.burst` |" in text
    assert "NOT-RAISED" not in text
    assert "  - requests: `r0002`" in text
    assert "  - cf-aig-log-id: `01LOGr0002`" in text
    assert "  - timings: ttft 55 ms" in text
    assert "**skipped**: the target cannot give gateway_logs." in text
    assert "| `observability.logs` | whole scenario | the target cannot give gateway_logs |" in text
    assert "| 16 | kv | 100 | 580 | 580 | 480 | 16 |" in text


def test_rendering_is_deterministic() -> None:
    assert render_html(sample_results()) == render_html(sample_results())
    assert render_markdown(sample_results()) == render_markdown(sample_results())


def test_write_report_round_trips_results(tmp_path: Path) -> None:
    paths = write_report(sample_results(), tmp_path / "run")
    assert load_results(paths.results_json) == sample_results()
    assert paths.report_html.read_text().startswith("<!doctype html>")
    assert paths.report_md.read_text().startswith("# aigw findings report: run 20260207T000000Z")


def test_results_of_another_schema_version_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(sample_results().to_json().replace('"schema_version": 1', '"schema_version": 2'))
    with pytest.raises(DataFileError) as info:
        load_results(path)
    assert info.value.problems[0].field == "schema_version"


def test_the_header_leads_with_findings_by_severity_and_what_needs_attention() -> None:
    html = render_html(sample_results())
    markdown = render_markdown(sample_results())
    header = html.partition('<h2 id="charts">')[0]
    assert '<span class="sev sev-high">1 high</span>' in header
    assert 'id="attention"' in header
    assert "budget.burst" in header.split('id="attention"', 1)[1]  # the failed scenario, named at the top
    assert "Needs attention" in markdown.split("## Findings", 1)[0]


def test_severities_are_counted_most_severe_first() -> None:
    from aigw_harness.report.results import Results

    base = sample_results().scenarios[0]
    findings = [
        f.model_copy(update={"severity": sev, "raised": True})
        for sev in ("info", "low", "critical", "medium", "high")
        for f in base.findings[:1]
    ]
    summary = Results.summarise([base.model_copy(update={"findings": findings})])
    assert list(summary.findings_raised) == ["critical", "high", "medium", "low", "info"]


def test_every_filterable_item_carries_severity_area_and_status() -> None:
    parser = _Collector()
    html = render_html(sample_results())
    parser.feed(html)
    assert 'data-filter="severity"' in html
    assert 'data-filter="area"' in html
    assert 'data-filter="status"' in html
    assert html.count('class="f"') + html.count('class="finding f"') >= 4
    assert '<form class="filters" id="filters" hidden>' in html  # shown by the script; hidden without it
