"""Running scenarios from pytest: the runner's options from the ``--aigw-*`` flags, the failure text a
reader wants, and ``ScenarioRunner`` behind the ``aigw_run_scenario`` fixture.

The scenario items (``aigw_harness.testing.collect``) and the fixture share all of this, so that a scenario
fails the same way however it was run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aigw_harness.report.results import CheckResult, CheckStatus, Exchange, ScenarioResult, ScenarioStatus
from aigw_harness.scenarios.checks import json_short
from aigw_harness.scenarios.model import Scenario
from aigw_harness.scenarios.runner import RunOptions, run_scenario
from aigw_harness.scenarios.targets import Target
from aigw_harness.testing.options import AigwOptions, live_skip_reason

__all__ = ["ScenarioRunner", "describe_failure", "describe_scenario_failure", "run_options"]


def run_options(options: AigwOptions, scenario_path: Path, target: Target | None = None) -> RunOptions:
    """The runner's options for one scenario; flags that are not given keep the runner's defaults, so
    that a run through pytest and ``aigw run`` with the same flags are the same run."""
    defaults = RunOptions()
    return RunOptions(
        target=target if target is not None else options.target,
        sut_url=options.sut_url,
        seed=options.seed if options.seed is not None else defaults.seed,
        time_scale=options.time_scale if options.time_scale is not None else defaults.time_scale,
        tenants_dir=_tenants_dir(options, scenario_path),
        extra=dict(options.target_options),
    )


def _tenants_dir(options: AigwOptions, scenario_path: Path) -> Path:
    """``--aigw-tenants``, else the nearest ``tenants`` folder at or above the scenario file."""
    if options.tenants_dir is not None:
        return options.tenants_dir
    for folder in scenario_path.resolve().parents:
        if (folder / "tenants").is_dir():
            return folder / "tenants"
    return RunOptions().tenants_dir


class ScenarioRunner:
    """``await runner(path_or_scenario)`` → ``ScenarioResult``; a failed scenario fails the test and a
    skipped one skips it, unless ``check=False``. Relative paths start at the test file's folder."""

    def __init__(self, options: AigwOptions, base: Path) -> None:
        self._options = options
        self._base = base

    async def __call__(self, scenario: str | Path | Scenario, *, check: bool = True) -> ScenarioResult:
        reason = live_skip_reason(self._options)
        if reason is not None:
            pytest.skip(reason)
        if isinstance(scenario, Scenario):
            subject: Scenario | Path = scenario
            where = self._base
        else:
            subject = Path(scenario) if Path(scenario).is_absolute() else self._base / scenario
            where = subject
        result = await run_scenario(subject, run_options(self._options, where))
        if check:
            if result.status is ScenarioStatus.SKIPPED:
                pytest.skip(f"scenario {result.id}: {result.reason}")
            if result.status in (ScenarioStatus.FAILED, ScenarioStatus.ERROR):
                pytest.fail(describe_scenario_failure(result), pytrace=False)
        return result


def describe_scenario_failure(result: ScenarioResult) -> str:
    """Why a whole scenario did not pass: the reason it could not run, or each failed expectation."""
    if result.status is ScenarioStatus.ERROR:
        return f"AIGW: scenario {result.id} ({result.path}) could not run: {result.reason}"
    failed = [check for check in result.checks if check.status is CheckStatus.FAILED]
    parts = [f"AIGW: scenario {result.id} failed: {len(failed)} of {len(result.checks)} expectations"]
    parts += [describe_failure(result, check) for check in failed]
    return "\n\n".join(parts)


def describe_failure(result: ScenarioResult, check: CheckResult) -> str:
    """A failed expectation as a reader wants it: what was expected, what was seen, and the evidence."""
    lines = [
        f"AIGW: {check.id} did not hold",
        f"  scenario:  {result.id} ({result.path}): {result.title}",
        f"  expected:  {check.expected or check.description}",
        f"  observed:  {json_short(check.observed, 300)}",
    ]
    if check.reason:
        lines.append(f"  why:       {check.reason}")
    if check.exchanges:
        lines.append(f"  requests:  {_listing(check.exchanges)}")
    if check.log_ids:
        lines.append(f"  log ids:   {_listing(check.log_ids)}")
    for finding in result.findings:
        cited = {evidence.ref for evidence in finding.evidence}
        if finding.raised and (check.id in cited or (check.step is not None and check.step in cited)):
            lines.append(f"  finding:   {finding.id} [{finding.severity}] {finding.title}")
    first = check.exchanges[0] if check.exchanges else None
    exchange = next((e for e in result.exchanges if e.id == first), None)
    if exchange is not None:
        lines += _exchange_evidence(exchange)
    return "\n".join(lines)


def _exchange_evidence(exchange: Exchange, limit: int = 12) -> list[str]:
    outcome = f"{exchange.status}" if exchange.status is not None else "no response"
    facts = [f"{exchange.method} {exchange.path}", f"tenant {exchange.tenant or '-'}", f"-> {outcome}"]
    content_type = exchange.headers.get("content-type")
    if content_type:
        facts.append(content_type)
    if exchange.ttft_ms is not None:
        facts.append(f"first token {exchange.ttft_ms:.1f} ms")
    if exchange.duration_ms is not None:
        facts.append(f"took {exchange.duration_ms:.1f} ms")
    if exchange.disconnected:
        facts.append("closed by the client")
    if exchange.timed_out:
        facts.append("timed out")
    if exchange.transport_error:
        facts.append(f"connection error: {exchange.transport_error}")
    lines = [f"  evidence:  request {exchange.id} (trace {exchange.trace_id or '-'}): {', '.join(facts)}"]
    if exchange.upstream_models:
        lines.append(f"             upstream asked for {', '.join(exchange.upstream_models)}")
    numbered = list(enumerate(exchange.events, start=1))
    shown = numbered if len(numbered) <= limit else [*numbered[: limit - 1], numbered[-1]]
    for index, event in shown:
        if index == len(numbered) and len(numbered) > limit:
            lines.append(f"             ... {len(numbered) - limit} more events")
        lines.append(f"             #{index:<3} +{event.t_ms:8.1f} ms  {event.event:<8} {_clip(event.data)}")
    if not exchange.events and exchange.body_json is not None:
        lines.append(f"             body: {json_short(exchange.body_json, 300)}")
    elif not exchange.events and exchange.body_text:
        lines.append(f"             body: {_clip(exchange.body_text, 300)}")
    return lines


def _listing(values: list[str], limit: int = 8) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
