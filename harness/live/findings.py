"""The spike's checklist and the fidelity comparison as results: the one findings model of every run.

``spike_results`` and ``fidelity_results`` turn what those commands observed into ``Results`` (one
scenario per checklist item or probe, one check per judged aspect, findings with their evidence), so that
they are written as ``results.json`` with the same Jinja report as ``aigw run`` and feed
``aigw docs --from``. Everything passes the credentials' redactor first, and a result that still holds a
secret is refused rather than written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aigw_harness import __version__
from aigw_harness.live.fidelity import FidelityReport
from aigw_harness.live.spike import ItemState, SpikeItem, SpikeReport
from aigw_harness.proxy.redaction import Redactor
from aigw_harness.report.results import (
    CheckResult,
    CheckStatus,
    Evidence,
    Exchange,
    FindingResult,
    Results,
    RunInfo,
    ScenarioResult,
    ScenarioStatus,
)

__all__ = ["fidelity_results", "spike_results"]

# Which of the milestone's spike questions (as the catalogue quotes them) each checklist item answers.
_SPIKE_QUESTIONS: dict[str, list[str]] = {
    "connectivity": ["Verify env.AI.run() with the gateway parameter routes through AI Gateway."],
    "routing": ["Verify env.AI.run() with the gateway parameter routes through AI Gateway."],
    "tenant-metadata": ["Confirm metadata.tenantId appears in the gateway's logs."],
    "streaming": ["Validate streaming works through the gateway (TTFB, token delivery)."],
    "stream-usage": ["Is usage present in streams?"],
    "log-delay": [],
    "binding": ["Verify env.AI.run() with the gateway parameter routes through AI Gateway."],
}

_STATUS = {
    ItemState.PASS: (ScenarioStatus.PASSED, CheckStatus.PASSED),
    ItemState.OBSERVED: (ScenarioStatus.PASSED, CheckStatus.PASSED),
    ItemState.FAIL: (ScenarioStatus.FAILED, CheckStatus.FAILED),
    ItemState.UNKNOWN: (ScenarioStatus.SKIPPED, CheckStatus.SKIPPED),
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _redacted(results: Results, redactor: Redactor) -> Results:
    text = redactor.text(results.to_json())
    if redactor.contains_secret(text):
        raise RuntimeError("the results still held a secret after redaction; they were not produced")
    return Results.model_validate_json(text)


def _spike_scenario(report: SpikeReport, item: SpikeItem, exchanges: list[Exchange]) -> ScenarioResult:
    scenario_status, check_status = _STATUS[item.state]
    evidence = "; ".join(item.evidence)
    check = CheckResult(
        id=item.key,
        kind="spike",
        description=item.title,
        status=check_status,
        expected=item.title,
        observed=item.evidence,
        reason="" if item.state is not ItemState.UNKNOWN else f"nothing to judge: {evidence}",
        exchanges=[e.id for e in exchanges],
        log_ids=[i for e in exchanges for i in e.log_ids],
    )
    findings = []
    if item.state is ItemState.OBSERVED:
        findings.append(
            FindingResult(
                id=f"SPIKE-{item.key.upper()}",
                title=f"{item.title}: {item.evidence[0] if item.evidence else 'observed'}",
                severity="info",
                raised=True,
                when="always",
                recommendation="Observed on the account: a fact to design by, not a requirement.",
                evidence=[Evidence(ref=item.key, kind="check", status="passed", summary=evidence)],
            )
        )
    return ScenarioResult(
        id=f"spike.live.{item.key}",
        title=item.title,
        area="spike",
        description=f"The live spike's checklist item '{item.title}', from probes through the real gateway.",
        questions=_SPIKE_QUESTIONS.get(item.key, []),
        path="aigw live spike",
        status=scenario_status,
        reason=check.reason,
        budget_store="atomic",
        started_at=report.started_at,
        duration_s=0.0,
        exchanges=exchanges,
        checks=[check],
        findings=findings,
    )


def _spike_exchanges(report: SpikeReport) -> list[Exchange]:
    seen = {s.name: s for s in report.sightings}
    exchanges = []
    for index, obs in enumerate(report.observations, 1):
        sighting = seen.get(obs.name)
        exchanges.append(
            Exchange(
                id=f"r{index:04d}",
                step=obs.name,
                path="gateway",
                started_ms=0.0,
                status=obs.status or None,
                stream=obs.stream,
                ttft_ms=obs.first_token_ms,
                transport_error=obs.error,
                log_ids=[obs.log_id] if obs.log_id else [],
                body_json={"usage": obs.usage} if obs.usage else None,
                timed_out=False,
                disconnected=False,
                duration_ms=sighting.delay_ms if sighting is not None else None,
            )
        )
    return exchanges


def spike_results(report: SpikeReport, finished_at: str | None = None) -> Results:
    """The spike's checklist as results: one scenario per item, with the probes as its exchanges."""
    exchanges = _spike_exchanges(report)
    scenarios = [_spike_scenario(report, item, exchanges) for item in report.items]
    usd = sum(e.usd for e in report.estimates)
    run = RunInfo(
        id=report.run_id,
        started_at=report.started_at,
        finished_at=finished_at or _now(),
        duration_s=0.0,
        target="live",
        sut=(
            f"AI Gateway spike probes through gateway {report.gateway_id} (tenant {report.tenant_id}; "
            f"{report.spent_requests} requests, worst case ${usd:.6f})"
        ),
        seed=0,
        time_scale=1.0,
        aigw_version=__version__,
        capabilities=["gateway_logs", "upstream_calls"],
    )
    results = Results(run=run, summary=Results.summarise(scenarios), scenarios=scenarios)
    return _redacted(results, report.redactor)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def fidelity_results(report: FidelityReport, run_id: str, redactor: Redactor) -> Results:
    """The comparison as results: one scenario per probe, one check per aspect (failed where they differ)."""
    differences = {(d.probe, d.aspect): d for d in report.differences}
    scenarios = []
    started = _now()
    for entry in report.coverage:
        probe = entry["probe"]
        checks = []
        for aspect in entry["compared"]:
            diff = differences.get((probe, aspect))
            checks.append(
                CheckResult(
                    id=aspect,
                    kind="fidelity",
                    description=f"the fake answers {probe} with the same {aspect} as {report.other_label}",
                    status=CheckStatus.FAILED if diff else CheckStatus.PASSED,
                    expected=f"{aspect} as {report.other_label} answers",
                    observed={"fake": diff.fake, "other": diff.other} if diff else "the same",
                    reason=f"fake {_json(diff.fake)}; {report.other_label} {_json(diff.other)}"
                    if diff
                    else "",
                )
            )
        for aspect, why in sorted(entry["not_compared"].items()):
            checks.append(
                CheckResult(
                    id=aspect,
                    kind="fidelity",
                    description=f"the fake answers {probe} with the same {aspect} as {report.other_label}",
                    status=CheckStatus.SKIPPED,
                    expected=f"{aspect} as {report.other_label} answers",
                    reason=why,
                )
            )
        failed = [c for c in checks if c.status is CheckStatus.FAILED]
        findings = []
        if failed:
            findings.append(
                FindingResult(
                    id=f"FAKE-DIFFERS-{probe.upper()}",
                    title=f"The fake answers {probe} differently from {report.other_label}",
                    severity="medium",
                    raised=True,
                    when="failed",
                    detail="Differs in: " + ", ".join(c.id for c in failed) + ".",
                    recommendation="Make the fake follow what was recorded (or record again to confirm).",
                    evidence=[
                        Evidence(
                            ref=c.id, kind="check", status="failed", summary=c.reason, observed=c.observed
                        )
                        for c in failed
                    ],
                )
            )
        scenarios.append(
            ScenarioResult(
                id=f"fidelity.{probe}",
                title=f"Fake fidelity: {probe}",
                area="fidelity",
                description=f"The probe {probe}, sent to the fake and to {report.other_label}.",
                path="aigw fidelity",
                status=ScenarioStatus.FAILED if failed else ScenarioStatus.PASSED,
                budget_store="atomic",
                started_at=started,
                duration_s=0.0,
                checks=checks,
                findings=findings,
            )
        )
    target = "live" if report.other_label == "live" else "replay"
    run = RunInfo(
        id=run_id,
        started_at=started,
        finished_at=_now(),
        duration_s=0.0,
        target=target,
        sut=f"fake fidelity: {report.fake_label} against {report.other_label} (model {report.model})",
        seed=0,
        time_scale=1.0,
        aigw_version=__version__,
    )
    results = Results(run=run, summary=Results.summarise(scenarios), scenarios=scenarios)
    return _redacted(results, redactor)
