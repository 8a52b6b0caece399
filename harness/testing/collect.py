"""Scenario files as pytest items.

The tree for ``scenarios/spike-streaming.yaml``::

    <ScenarioFile spike-streaming.yaml>
      <ScenarioNode spike.streaming>           marked aigw_scenario(id, area); -k matches its tags too
        <ExpectationItem stream.status>        one item per expectation of each request step ...
        <ExpectationItem stream.sse.terminal_done>
        <ExpectationItem ttft-p95>             ... and one per scenario-level check

The scenario runs once, in the node's setup, through ``harness.scenarios.runner.run_scenario`` with the
session's target; each item then reports its own result, so that JUnit XML shows every expectation. A
scenario without expectations or checks gets one item, ``run``. A scenario the target cannot run (a
missing capability, a live target without ``--aigw-live``) skips all its items with the reason; one that
could not run to the end errors them all with the reason.

``ScenarioPlugin`` is registered by ``harness.pytest_plugin`` only when ``--aigw-scenarios`` is given.
The session's scenario results are kept in order for ``write_report`` (``--aigw-report-dir``), with the
verdict pytest gave each scenario (``verdicts.json``), so that a run through pytest can be compared with a
run through ``aigw run`` (``python -m harness.testing.verdicts``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fakes.datafiles import DataFileError
from harness import __version__
from harness.errors import HarnessError
from harness.report.results import (
    CheckResult,
    CheckStatus,
    Exchange,
    Results,
    RunInfo,
    ScenarioResult,
    ScenarioStatus,
)
from harness.scenarios import checks as scenario_checks
from harness.scenarios.loader import LoadedScenario, discover, load_scenario
from harness.scenarios.runner import RunOptions, run_scenario
from harness.scenarios.targets import REGISTRY, Target
from harness.testing.options import OPTIONS_KEY, AigwOptions, live_skip_reason

__all__ = [
    "ExpectationItem",
    "ScenarioFile",
    "ScenarioNode",
    "ScenarioPlugin",
    "describe_failure",
    "expectation_ids",
    "record_report",
    "run_options",
    "write_report",
]

RUN_ITEM = "run"


@dataclass(slots=True)
class _SessionState:
    """What the plugin keeps for one pytest session."""

    target: Target | None = None
    started_at: str = ""
    started: float = 0.0
    results: list[ScenarioResult] = field(default_factory=list)
    item_scenarios: dict[str, str] = field(default_factory=dict)
    """Item node id → scenario id."""
    verdicts: dict[str, str] = field(default_factory=dict)
    """Scenario id → the verdict pytest's reports give it."""
    setup_skips: dict[str, int] = field(default_factory=dict)
    items_per_scenario: dict[str, int] = field(default_factory=dict)


_STATE = pytest.StashKey[_SessionState]()


def _state(config: pytest.Config) -> _SessionState:
    return config.stash[_STATE]


class ScenarioPlugin:
    """The hooks that exist only in runs given ``--aigw-scenarios``."""

    def __init__(self, config: pytest.Config, options: AigwOptions) -> None:
        self.config = config
        self.options = options
        config.stash[_STATE] = _SessionState()
        try:
            # The same discovery as ``aigw run PATH``: tenant, behaviour and fixture folders are skipped.
            files = discover(list(options.scenarios))
        except DataFileError as exc:
            raise pytest.UsageError(f"AIGW: {exc}") from None
        self.files = {path.resolve() for path in files}
        if options.target not in REGISTRY and ":" not in options.target:
            raise pytest.UsageError(
                f"--aigw-target {options.target!r} is not a target: choose one of {', '.join(REGISTRY)} "
                "or give module:factory"
            )

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
        if file_path.resolve() not in self.files:
            return None
        return ScenarioFile.from_parent(parent, path=file_path)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record_report(self.config, report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.options.report_dir is not None:
            write_report(session, self.options)


def expectation_ids(loaded: LoadedScenario) -> list[tuple[str, str]]:
    """``(id, description)`` of every expectation and check, in the order the runner reports them."""
    found: list[tuple[str, str]] = []
    scenario = loaded.scenario
    for name, step in zip(scenario.step_names(), scenario.steps, strict=True):
        if step.expect is not None:
            # With no responses every expectation holds trivially: this only lists them, with their ids.
            listed = scenario_checks.expectation_checks(name, step.expect, [])
            found += [(check.id, check.description) for check in listed]
    found += [(check.id, check.description or check.kind) for check in scenario.checks]
    return found


class ScenarioFile(pytest.File):
    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        loaded = load_scenario(self.path)
        yield ScenarioNode.from_parent(self, name=loaded.scenario.id, loaded=loaded)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:  # type: ignore[override]
        if isinstance(excinfo.value, DataFileError):
            return f"AIGW: {excinfo.value}"
        return super().repr_failure(excinfo)


class ScenarioNode(pytest.Collector):
    """One scenario: runs it at setup, and holds the result its items report on."""

    def __init__(self, *, loaded: LoadedScenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.result: ScenarioResult | None = None
        scenario = loaded.scenario
        self.add_marker(pytest.mark.aigw_scenario(scenario.id, scenario.area.value))
        self.extra_keyword_matches.update(scenario.tags)
        self.extra_keyword_matches.add(scenario.area.value)

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        listed = expectation_ids(self.loaded) or [(RUN_ITEM, "the scenario runs to the end")]
        state = _state(self.config)
        state.items_per_scenario[self.loaded.scenario.id] = len(listed)
        for check_id, description in listed:
            item = ExpectationItem.from_parent(self, name=check_id, description=description)
            state.item_scenarios[item.nodeid] = self.loaded.scenario.id
            yield item

    def setup(self) -> None:
        options = self.config.stash[OPTIONS_KEY]
        reason = live_skip_reason(options)
        if reason is not None:
            pytest.skip(reason)
        state = _state(self.config)
        if not state.started_at:
            state.started_at = _now()
            state.started = time.perf_counter()
        try:
            run = run_options(options, self.path, state)
        except HarnessError as exc:
            pytest.fail(f"AIGW: {exc}", pytrace=False)
        self.result = asyncio.run(run_scenario(self.loaded, run))
        state.results.append(self.result)
        if self.result.status is ScenarioStatus.SKIPPED:
            pytest.skip(self.result.reason)
        if self.result.status is ScenarioStatus.ERROR:
            pytest.fail(
                f"AIGW: scenario {self.loaded.scenario.id} ({self.loaded.path}) could not run: "
                f"{self.result.reason}",
                pytrace=False,
            )


class ExpectationItem(pytest.Item):
    """One expectation or check of a scenario, reported from the scenario's result."""

    def __init__(self, *, description: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.description = description

    @property
    def scenario_node(self) -> ScenarioNode:
        parent = self.parent
        if not isinstance(parent, ScenarioNode):
            raise RuntimeError("An ExpectationItem must be collected under a ScenarioNode.")
        return parent

    def runtest(self) -> None:
        node = self.scenario_node
        result = node.result
        if result is None:
            raise RuntimeError("The scenario has not run; its node's setup runs it.")
        if self.name == RUN_ITEM:
            return
        check = next((c for c in result.checks if c.id == self.name), None)
        if check is None:
            pytest.fail(
                f"AIGW: the run of scenario {result.id} reported no result for {self.name!r} "
                f"(it reported: {', '.join(c.id for c in result.checks) or 'nothing'})",
                pytrace=False,
            )
        if check.status is CheckStatus.SKIPPED:
            pytest.skip(check.reason or "skipped by the runner")
        if check.status is CheckStatus.FAILED:
            pytest.fail(describe_failure(result, check), pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.scenario_node.loaded.scenario.id}: {self.name} ({self.description})"


def describe_failure(result: ScenarioResult, check: CheckResult) -> str:
    """A failed expectation as a reader wants it: what was expected, what was seen, and the evidence."""
    lines = [
        f"AIGW: {check.id} did not hold",
        f"  scenario:  {result.id} ({result.path}): {result.title}",
        f"  expected:  {check.expected or check.description}",
        f"  observed:  {scenario_checks.json_short(check.observed, 300)}",
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
    exchange = next((e for e in result.exchanges if check.exchanges and e.id == check.exchanges[0]), None)
    if exchange is not None:
        lines += _exchange_evidence(exchange)
    return "\n".join(lines)


def _exchange_evidence(exchange: Exchange, limit: int = 12) -> list[str]:
    outcome = f"{exchange.status}" if exchange.status is not None else "no response"
    content_type = exchange.headers.get("content-type", "")
    facts = [f"{exchange.method} {exchange.path}", f"tenant {exchange.tenant or '-'}", f"-> {outcome}"]
    if content_type:
        facts.append(content_type)
    if exchange.ttft_ms is not None:
        facts.append(f"first token {exchange.ttft_ms:.1f} ms")
    if exchange.duration_ms is not None:
        facts.append(f"took {exchange.duration_ms:.1f} ms")
    for flag, words in (
        (exchange.disconnected, "closed by the client"),
        (exchange.timed_out, "timed out"),
        (exchange.transport_error, f"connection error: {exchange.transport_error}"),
    ):
        if flag:
            facts.append(words)
    lines = [f"  evidence:  request {exchange.id} (trace {exchange.trace_id or '-'}): {', '.join(facts)}"]
    if exchange.upstream_models:
        lines.append(f"             upstream asked for {', '.join(exchange.upstream_models)}")
    events = exchange.events
    shown = events if len(events) <= limit else [*events[: limit - 2], events[-1]]
    for event in shown:
        if event is events[-1] and len(events) > limit:
            lines.append(f"             ... {len(events) - limit + 1} more events")
        index = events.index(event) + 1
        lines.append(f"             #{index:<3} +{event.t_ms:8.1f} ms  {event.event:<8} {_clip(event.data)}")
    if not events and exchange.body_json is not None:
        lines.append(f"             body: {scenario_checks.json_short(exchange.body_json, 300)}")
    elif not events and exchange.body_text:
        lines.append(f"             body: {_clip(exchange.body_text, 300)}")
    return lines


def _listing(values: list[str], limit: int = 8) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_options(options: AigwOptions, scenario_path: Path, state: _SessionState) -> RunOptions:
    """The runner's options for a scenario, from the ``--aigw-*`` flags; unset flags keep its defaults."""
    defaults = RunOptions()
    if state.target is None:
        state.target = RunOptions(
            target=options.target,
            sut_url=options.sut_url,
            seed=options.seed if options.seed is not None else defaults.seed,
            time_scale=options.time_scale if options.time_scale is not None else defaults.time_scale,
            tenants_dir=_tenants_dir(options, scenario_path),
        ).resolve_target()
    return RunOptions(
        target=state.target,
        sut_url=options.sut_url,
        seed=options.seed if options.seed is not None else defaults.seed,
        time_scale=options.time_scale if options.time_scale is not None else defaults.time_scale,
        tenants_dir=_tenants_dir(options, scenario_path),
    )


def _tenants_dir(options: AigwOptions, scenario_path: Path) -> Path:
    """``--aigw-tenants``, else the nearest ``tenants`` folder at or above the scenario file."""
    if options.tenants_dir is not None:
        return options.tenants_dir
    for folder in scenario_path.resolve().parents:
        if (folder / "tenants").is_dir():
            return folder / "tenants"
    return RunOptions().tenants_dir


def record_report(config: pytest.Config, report: pytest.TestReport) -> None:
    """Fold one item's report into its scenario's verdict (error > failed > passed; skipped when the
    whole scenario was skipped at setup)."""
    state = _state(config)
    scenario_id = state.item_scenarios.get(report.nodeid)
    if scenario_id is None:
        return
    current = state.verdicts.get(scenario_id)
    if report.failed:
        verdict = ScenarioStatus.FAILED if report.when == "call" else ScenarioStatus.ERROR
        if current != ScenarioStatus.ERROR:
            state.verdicts[scenario_id] = verdict
    elif report.when == "setup" and report.skipped:
        state.setup_skips[scenario_id] = state.setup_skips.get(scenario_id, 0) + 1
        if state.setup_skips[scenario_id] == state.items_per_scenario.get(scenario_id) and current is None:
            state.verdicts[scenario_id] = ScenarioStatus.SKIPPED
    elif report.when == "call" and current is None:
        state.verdicts[scenario_id] = ScenarioStatus.PASSED


def write_report(session: pytest.Session, options: AigwOptions) -> None:
    """Write the scenario results of this session, and pytest's verdicts, into ``--aigw-report-dir``."""
    from harness.report.render import write_report as render

    state = _state(session.config)
    directory = options.report_dir
    if directory is None or not state.results:
        return
    target = state.target
    run = RunInfo(
        id=Path(directory).name,
        started_at=state.started_at,
        finished_at=_now(),
        duration_s=round(time.perf_counter() - state.started, 3),
        target=target.name if target is not None else options.target,
        sut=getattr(target, "description", options.target),
        seed=options.seed if options.seed is not None else RunOptions().seed,
        time_scale=options.time_scale if options.time_scale is not None else RunOptions().time_scale,
        aigw_version=__version__,
        capabilities=sorted(c.value for c in target.capabilities) if target is not None else [],
    )
    results = Results(run=run, summary=Results.summarise(state.results), scenarios=state.results)
    render(results, directory)
    verdicts = {"source": "pytest", "scenarios": dict(_ordered(state.verdicts, state.results))}
    (directory / "verdicts.json").write_text(json.dumps(verdicts, indent=2) + "\n", encoding="utf-8")


def _ordered(verdicts: dict[str, str], results: list[ScenarioResult]) -> Iterator[tuple[str, str]]:
    for result in results:
        if result.id in verdicts:
            yield result.id, str(verdicts[result.id])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
