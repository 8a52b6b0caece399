"""Results to ``report.md``, a self-contained ``report.html`` (inline CSS and SVG) and ``results.json``.

Templates live in ``harness/report/templates/`` and render with Jinja: HTML templates are autoescaped,
Markdown templates escape every interpolated value for Markdown (``aigw_harness.report.markdown``).
Rendering is deterministic: the same results give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from aigw_harness.report import charts, markdown
from aigw_harness.report.results import (
    CheckResult,
    FindingResult,
    LoadSummary,
    Results,
    ScenarioResult,
    ScenarioStatus,
)
from aigw_harness.report.stats import SEVERITY_ORDER

__all__ = [
    "DOC_SECTIONS",
    "ReportPaths",
    "environment",
    "render_docs",
    "render_html",
    "render_markdown",
    "stable_checks",
    "stable_outcome",
    "stable_verdict",
    "write_report",
]

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_MAX_ARRIVAL_STREAMS = 8
_MIN_HISTOGRAM_SAMPLES = 5  # fewer streams than this are read off the token-arrival chart


@dataclass(frozen=True, slots=True)
class ReportPaths:
    directory: Path
    results_json: Path
    report_md: Path
    report_html: Path


def _cell(value: Any) -> str:
    """A value fit for one Markdown table cell."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return text if len(text) <= 160 else text[:157] + "..."


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def _anchor(*parts: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else "-" for ch in part) for part in parts)


def markdown_environment() -> jinja2.Environment:
    """For ``*.md.j2``: every interpolated value is escaped for Markdown
    (``aigw_harness.report.markdown``)."""
    env = markdown.environment(jinja2.PackageLoader("aigw_harness.report", "templates"))
    env.filters["short"] = _short
    env.filters["num"] = _number
    env.filters["anchor"] = lambda parts: _anchor(*parts)
    return env


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("aigw_harness.report", "templates"),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    env.filters["short"] = _short
    env.filters["num"] = _number
    env.filters["anchor"] = lambda parts: _anchor(*parts)
    return env


def _raised_findings(results: Results) -> list[tuple[ScenarioResult, Any]]:
    pairs = [(s, f) for s in results.scenarios for f in s.findings if f.raised]

    # Root causes first, then findings of their own, then symptoms (grouped under their cause).
    def order(pair: tuple[ScenarioResult, Any]) -> tuple[int, int, str, str]:
        finding = pair[1]
        rank = 0 if finding.root_cause else (2 if finding.masked_by else 1)
        return (rank, _SEVERITY_ORDER[finding.severity], pair[0].id, finding.id)

    return sorted(pairs, key=order)


def _context(results: Results) -> dict[str, Any]:
    areas: dict[str, list[ScenarioResult]] = {}
    for scenario in results.scenarios:
        areas.setdefault(scenario.area, []).append(scenario)
    return {
        "results": results,
        "run": results.run,
        "summary": results.summary,
        "areas": areas,
        "raised": _raised_findings(results),
        "not_run": [
            (s.id, None, s.reason)
            for s in results.scenarios
            if s.status in (ScenarioStatus.SKIPPED, ScenarioStatus.ERROR)
        ]
        + [(s.id, c.id, c.reason) for s in results.scenarios for c in s.checks if c.status == "skipped"],
        "Status": ScenarioStatus,
        "attention": _attention(results),
        "severities_of": {
            s.id: " ".join(
                sev for sev in SEVERITY_ORDER if any(f.raised and f.severity == sev for f in s.findings)
            )
            for s in results.scenarios
        },
        "severity_order": SEVERITY_ORDER,
        "statuses": sorted({s.status.value for s in results.scenarios}),
    }


def _attention(results: Results) -> list[tuple[ScenarioResult, list[str]]]:
    """Failed and errored scenarios, with their first failing checks: what a reader acts on first."""
    wanting = (ScenarioStatus.FAILED, ScenarioStatus.ERROR)
    return [
        (s, [c.id for c in s.checks if c.status == "failed"][:3])
        for s in results.scenarios
        if s.status in wanting
    ]


def render_markdown(results: Results) -> str:
    return markdown_environment().get_template("report.md.j2").render(_context(results))


def _charts(results: Results) -> dict[str, Any]:
    overview: dict[str, dict[str, int]] = {}
    for scenario in results.scenarios:
        row = overview.setdefault(scenario.area, {})
        row[scenario.status] = row.get(scenario.status, 0) + 1
    overshoot: dict[str, list[tuple[int, int]]] = {}
    for scenario in results.scenarios:
        for point in scenario.overshoot:
            label = scenario.id
            overshoot.setdefault(label, []).append((point.concurrency, point.overshoot_tokens))
    # Timings are charted per scenario: scenarios script different delays, so pooling them would mix
    # a slow-first-byte scenario's 6 s with a plain stream's 20 ms into one meaningless distribution.
    timing: dict[str, list[Markup]] = {}
    for scenario in results.scenarios:
        streams = {
            f"{e.id} ({e.step})": [ev.t_ms for ev in e.events if ev.event == "message"]
            for e in scenario.exchanges
            if e.stream and any(ev.event == "message" for ev in e.events)
        }
        ttft = [e.ttft_ms for e in scenario.exchanges if e.ttft_ms is not None]
        figures: list[Markup] = []  # charts escape their own text
        if streams:
            chosen = dict(list(streams.items())[:_MAX_ARRIVAL_STREAMS])
            figures.append(Markup(charts.token_arrival(f"Token arrival: {scenario.id}", chosen)))
        if len(ttft) >= _MIN_HISTOGRAM_SAMPLES:
            figures.append(Markup(charts.histogram(f"Time to first token: {scenario.id}", ttft, "ms")))
        if figures:
            timing[scenario.id] = figures
    load = {s.id: _load_charts(s.load) for s in results.scenarios if s.load is not None}
    return {
        "load": load,
        "overview": Markup(charts.pass_fail_overview("Scenarios by area and outcome", overview)),
        "overshoot": Markup(
            charts.overshoot_vs_concurrency("Budget overshoot against concurrency", overshoot)
        ),
        "timing": timing,
    }


def _load_charts(load: LoadSummary) -> list[Markup]:
    """A load run over time: time to first token, answers per second, and billed against charged."""
    points = load.timeline
    ttft = {
        "p50": [(p.t_s, p.ttft_p50_ms) for p in points if p.ttft_p50_ms is not None],
        "p95": [(p.t_s, p.ttft_p95_ms) for p in points if p.ttft_p95_ms is not None],
    }
    rate = {
        "answers/s": [(p.t_s, p.answers_per_s) for p in points if p.answers_per_s is not None],
        "failures/s": [(p.t_s, p.failures_per_s) for p in points if p.failures_per_s is not None],
        "users": [(p.t_s, float(p.users)) for p in points if p.users is not None],
    }
    money = {
        "billed upstream": [(p.t_s, float(p.billed)) for p in points if p.billed is not None],
        "charged by the SUT": [(p.t_s, float(p.charged)) for p in points if p.charged is not None],
    }
    # Charts escape their own text.
    return [
        Markup(charts.line_series("Time to first token over time", "s since start", "ms", ttft)),
        Markup(charts.line_series("Throughput and users over time", "s since start", "per s / users", rate)),
        Markup(charts.line_series("Tokens billed and charged over time", "s since start", "tokens", money)),
    ]


def render_html(results: Results) -> str:
    context = _context(results)
    context["charts"] = _charts(results)
    return environment().get_template("report.html.j2").render(context)


def write_report(results: Results, directory: Path) -> ReportPaths:
    """Write ``results.json``, ``report.md`` and ``report.html`` into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(
        directory=directory,
        results_json=directory / "results.json",
        report_md=directory / "report.md",
        report_html=directory / "report.html",
    )
    paths.results_json.write_text(results.to_json(), encoding="utf-8")
    paths.report_md.write_text(render_markdown(results), encoding="utf-8")
    paths.report_html.write_text(render_html(results), encoding="utf-8")
    return paths


# The milestone's outline for docs/ai-gateway.md: each section, its opening, and the areas it draws on.
DOC_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "How env.AI.run() with the gateway option works",
        "Every model call goes through AI Gateway: "
        "`env.AI.run(model, {messages}, {gateway: {id, metadata}})`. The spike scenarios prove "
        "connectivity, that the gateway option reaches the gateway (its log records carry the gateway "
        "id and `metadata.tenantId`), and that streaming through the gateway delivers tokens "
        "progressively.",
        ("spike",),
    ),
    (
        "Tenant metadata strategy and identity",
        "The gateway sends `{traceId, sessionId, route, tenantId}` as custom metadata; AI Gateway keeps only "
        "the first five entries. Tenants are resolved from `x-tenant-id`, the host name or `x-api-key`.",
        ("identity",),
    ),
    (
        "Model selection precedence",
        "The model is the request's `modelId`, else the environment's `MODEL_ID`, else the tenant's "
        "`aiModels.chat`; the fallback is `FALLBACK_MODEL_ID`, else the tenant's chat model. With "
        "`featureFlags.modelAllowList`, a selected model outside `allowedModels` is refused with 403 and a "
        "fallback outside it is dropped.",
        ("precedence",),
    ),
    (
        "Streaming behaviour",
        "A streamed `/chat` answer is `text/event-stream`: one `data:` event per upstream token, at most one "
        "`event: error`, then exactly one `event: done` carrying usage, then the stream closes.",
        ("streaming",),
    ),
    (
        "Error handling patterns",
        "Refusals use the platform's envelope `{ok:false, error:{code, message}}` with its status, in the "
        "platform's check order (tenant, body size, JSON, schema, message length, model, rate limit, "
        "budget); none of them reaches the model. Once a stream has started the status is 200 and "
        "failures are reported in-band.",
        ("limits",),
    ),
    (
        "Fallback behaviour",
        "Before the first token, a failed primary moves on to the fallback model; after it, the error is "
        "reported in-band (`event: error`, then `done`) and nothing is retried. Covered: model fallback "
        "on 429, 5xx and first-byte timeouts; the gateway being unavailable; streaming error recovery "
        "(error frames, malformed frames, a missing terminator, stalls, client disconnects); and API "
        "change mitigation (a model answering in the other response shape).",
        ("fallback",),
    ),
    (
        "Usage metrics, observability and cost",
        "Latency, tokens in and out, status and cost are recorded by the gateway's usage hook, sent in "
        "response headers and `done` usage, and kept by AI Gateway in its logs. These scenarios check that "
        "the sources agree, request by request.",
        ("observability",),
    ),
    (
        "Budgets, accounting and concurrency",
        "Per-tenant token budgets are checked daily first, then monthly, against UTC days and months. The "
        "platform's KV store does a blind read-modify-write; the reference gateway's atomic store reserves "
        "at admission and settles after the answer. Concurrent bursts measure how far each overshoots.",
        ("budget", "accounting", "concurrency"),
    ),
)


def stable_verdict(finding: FindingResult, checks: list[CheckResult], stable_ids: list[str]) -> bool:
    """Whether the finding is raised when judged on timing-free checks only."""
    if finding.when == "always":
        return finding.raised
    refs = {e.ref for e in finding.evidence if e.kind != "measurement"}
    judged = [
        c for c in checks if c.id in stable_ids and c.status != "skipped" and (c.id in refs or c.step in refs)
    ]
    if finding.when == "failed":
        return any(c.status == "failed" for c in judged)
    return bool(judged) and all(c.status == "passed" for c in judged)


_UNSTABLE_CHECKS = ("ttft", "duration", "progressive", "latency", "x-ratelimit-reset", "tokens_per_s", "gap")


def stable_checks(scenario: ScenarioResult) -> tuple[list[str], dict[str, str]]:
    """Checks whose observed values do not depend on timing, and their observed values as short text."""
    ids: list[str] = []
    observed: dict[str, str] = {}
    for check in scenario.checks:
        if check.kind == "measurement" or any(word in check.id for word in _UNSTABLE_CHECKS):
            continue
        ids.append(check.id)
        if check.status == "skipped":
            observed[check.id] = f"not run: {check.reason}"
        elif check.kind in ("expect", "upstream_calls"):
            observed[check.id] = _short(check.observed, 120)
        else:
            # Ledger figures and cross-source tables can depend on how a burst interleaved: outcome only.
            observed[check.id] = "as expected" if check.status == "passed" else "see the run's report"
    return ids, observed


def stable_outcome(scenario: ScenarioResult, stable_ids: list[str]) -> str:
    """The scenario's outcome judged on checks that do not depend on timing (timings vary between runs)."""
    if scenario.status in (ScenarioStatus.SKIPPED, ScenarioStatus.ERROR):
        return scenario.status.value
    failed = any(c.status == "failed" for c in scenario.checks if c.id in stable_ids)
    return "failed" if failed else "passed"


def render_docs(results: Results) -> str:
    """``docs/ai-gateway.md`` from a run: no timings, dates or ids that vary between runs.

    Outcomes are judged on the checks whose observations do not depend on timing, so that a loaded
    machine does not change the document; the run's own report has every check."""
    sections = []
    for title, intro, areas in DOC_SECTIONS:
        chosen = [s for s in results.scenarios if s.area in areas]
        sections.append({"title": title, "intro": intro, "scenarios": chosen})
    stable: dict[str, list[str]] = {}
    observed: dict[str, dict[str, str]] = {}
    outcome: dict[str, str] = {}
    for scenario in results.scenarios:
        stable[scenario.id], observed[scenario.id] = stable_checks(scenario)
        outcome[scenario.id] = stable_outcome(scenario, stable[scenario.id])
    counts = {status: sum(1 for o in outcome.values() if o == status) for status in ScenarioStatus}
    raised: dict[str, int] = {}
    findings: dict[str, list[FindingResult]] = {}
    for scenario in results.scenarios:
        findings[scenario.id] = [
            f for f in scenario.findings if stable_verdict(f, scenario.checks, stable[scenario.id])
        ]
        for finding in findings[scenario.id]:
            raised[finding.severity] = raised.get(finding.severity, 0) + 1
    return (
        markdown_environment()
        .get_template("ai-gateway.md.j2")
        .render(
            run=results.run,
            counts=counts,
            raised=dict(sorted(raised.items(), key=lambda item: _SEVERITY_ORDER[item[0]])),
            outcome=outcome,
            findings=findings,
            sections=sections,
            scenarios=results.scenarios,
            stable=stable,
            observed=observed,
        )
    )
