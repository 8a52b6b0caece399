"""Scenario files as pytest items.

The tree for ``scenarios/spike-streaming.yaml``::

    <ScenarioFile spike-streaming.yaml>
      <ScenarioNode spike.streaming>           marked aigw_scenario(id, area); -k matches its tags too
        <ExpectationItem stream.status>        one item per expectation of each request step ...
        <ExpectationItem stream.sse.terminal_done>
        <ExpectationItem ttft-p95>             ... and one per scenario-level check

The scenario runs once, in the node's setup, through ``aigw_harness.scenarios.runner.run_scenario`` with the
session's target; each item then reports its own result, so that JUnit XML shows every expectation. A
scenario without expectations or checks gets one item, ``run``. A scenario the target cannot run (a
missing capability, a live target without ``--aigw-live``) skips all its items with the reason; one that
could not run to the end errors them all with the reason.

``ScenarioPlugin`` is registered by ``aigw_harness.pytest_plugin`` only when ``--aigw-scenarios`` is given.
The session's scenario results are kept in order for ``write_report`` (``--aigw-report-dir``), with the
verdict pytest gave each scenario (``verdicts.json``), so that a run through pytest can be compared with a
run through ``aigw run`` (``python -m aigw_harness.testing.verdicts``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from aigw_fakes.datafiles import DataFileError
from aigw_harness import __version__
from aigw_harness.ci.baseline import Baseline, compare, is_timing_check, load_baseline
from aigw_harness.errors import HarnessError
from aigw_harness.report.results import CheckStatus, Results, RunInfo, ScenarioResult, ScenarioStatus
from aigw_harness.scenarios import checks as scenario_checks
from aigw_harness.scenarios.loader import LoadedScenario, discover, load_scenario
from aigw_harness.scenarios.runner import RunOptions, run_scenario
from aigw_harness.scenarios.targets import Target
from aigw_harness.testing.options import OPTIONS_KEY, AigwOptions, live_skip_reason
from aigw_harness.testing.scenario_runner import describe_failure, run_options

__all__ = [
    "ExpectationItem",
    "Listed",
    "ScenarioFile",
    "ScenarioNode",
    "ScenarioPlugin",
    "expectation_ids",
    "record_report",
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
    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)
    """Scenario id → item name → its outcome (passed, failed, skipped, error)."""
    baseline: Baseline | None = None
    """``--aigw-baseline``: its known failures are expected failures."""


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
        self.written: Path | None = None
        if options.baseline is not None:
            try:
                config.stash[_STATE].baseline = load_baseline(options.baseline)
            except DataFileError as exc:
                raise pytest.UsageError(f"AIGW: --aigw-baseline: {exc}") from None

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
        if file_path.resolve() not in self.files:
            return None
        return ScenarioFile.from_parent(parent, path=file_path)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if isinstance(item, ExpectationItem) and call.when == "call" and report.failed:
            _timing_failure_not_gated(item, report)
        if isinstance(item, ExpectationItem) and report.skipped and isinstance(report.longrepr, tuple):
            # Point at the scenario file (the whole scenario at its id, a check at its line), not at
            # the plugin line that raised the skip.
            node = item.scenario_node
            line = node.first_line if call.when == "setup" else item.line
            report.longrepr = (str(node.loaded.path), line or 1, report.longrepr[2])
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record_report(self.config, report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.options.report_dir is not None:
            self.written = write_report(session, self.options)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        directory = self.options.report_dir
        if directory is None:
            return
        if self.written is None:
            terminalreporter.write_line(f"aigw: no scenario ran, so no report was written to {directory}")
        else:
            terminalreporter.write_line(f"aigw: report {self.written / 'report.html'}")
            terminalreporter.write_line("      results.json, report.md and verdicts.json next to it")


@dataclass(frozen=True, slots=True)
class Listed:
    """One expectation or check as collected: its id, what it says, and its line in the file."""

    id: str
    description: str
    line: int | None


def expectation_ids(loaded: LoadedScenario, lines: Mapping[tuple[str, int], int]) -> list[Listed]:
    """Every expectation and check, in the order the runner reports them, with the line it is on."""
    found: list[Listed] = []
    scenario = loaded.scenario
    for index, (name, step) in enumerate(zip(scenario.step_names(), scenario.steps, strict=True)):
        if step.expect is not None:
            # With no responses every expectation holds trivially: this only lists them, with their ids.
            listed = scenario_checks.expectation_checks(name, step.expect, [])
            found += [Listed(c.id, c.description, lines.get(("steps", index))) for c in listed]
    found += [
        Listed(check.id, check.description or check.kind, lines.get(("checks", index)))
        for index, check in enumerate(scenario.checks)
    ]
    return found


def _item_lines(path: Path) -> dict[tuple[str, int], int]:
    """1-based lines of the top-level ``steps`` and ``checks`` entries (and ``("id", 0)``), where known."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[tuple[str, int], int] = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "id":
                lines[("id", 0)] = key.start_mark.line + 1
            if key.value in ("steps", "checks") and isinstance(value, yaml.SequenceNode):
                for index, entry in enumerate(value.value):
                    lines[(key.value, index)] = entry.start_mark.line + 1
    return lines


class ScenarioFile(pytest.File):
    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        # Named as the user would name it (relative to where pytest was started), as ``aigw run`` does.
        start = self.config.invocation_params.dir
        shown = self.path.relative_to(start) if self.path.is_relative_to(start) else self.path
        readable = shown if Path.cwd() == start else self.path
        loaded = LoadedScenario(shown, load_scenario(readable).scenario)
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
        self.first_line: int | None = None
        scenario = loaded.scenario
        self.add_marker(pytest.mark.aigw_scenario(scenario.id, scenario.area.value))
        self.extra_keyword_matches.update(scenario.tags)
        self.extra_keyword_matches.add(scenario.area.value)

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        lines = _item_lines(self.path)
        self.first_line = lines.get(("id", 0))
        listed = expectation_ids(self.loaded, lines)
        if not listed:
            listed = [Listed(RUN_ITEM, "the scenario runs to the end", self.first_line)]
        state = _state(self.config)
        state.items_per_scenario[self.loaded.scenario.id] = len(listed)
        for entry in listed:
            item = ExpectationItem.from_parent(
                self, name=entry.id, description=entry.description, line=entry.line
            )
            state.item_scenarios[item.nodeid] = self.loaded.scenario.id
            self._expect_known_failure(item, state.baseline)
            yield item

    def _expect_known_failure(self, item: ExpectationItem, baseline: Baseline | None) -> None:
        """A check the baseline records as failing is an expected failure: strictly, so that one that
        passes now fails the run until the baseline is updated; loosely for timing checks, which flip."""
        known = baseline.scenarios.get(self.loaded.scenario.id) if baseline is not None else None
        if known is None or known.checks.get(item.name) not in ("failed", "error"):
            return
        options = self.config.stash[OPTIONS_KEY]
        timing = is_timing_check(item.name)
        reason = f"known failure in the baseline {options.baseline}" + (" (timing)" if timing else "")
        item.add_marker(pytest.mark.xfail(reason=reason, strict=not timing))

    def setup(self) -> None:
        options = self.config.stash[OPTIONS_KEY]
        reason = live_skip_reason(options)
        if reason is not None:
            pytest.skip(reason)
        state = _state(self.config)
        if not state.started_at:
            state.started_at = _now()
            state.started = time.perf_counter()
        unavailable = None
        try:
            if state.target is None:
                state.target = run_options(options, self.path).resolve_target()
        except HarnessError as exc:
            unavailable = str(exc)  # failed outside the handler, so that no traceback is chained to it
        if unavailable is not None:
            pytest.fail(f"AIGW: {unavailable}", pytrace=False)
        run = run_options(options, self.path, state.target)
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

    def __init__(self, *, description: str, line: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.description = description
        self.line = line

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
        line = self.line - 1 if self.line is not None else None
        return self.path, line, f"{self.scenario_node.loaded.scenario.id}: {self.name} ({self.description})"


def _timing_failure_not_gated(item: ExpectationItem, report: pytest.TestReport) -> None:
    """With a baseline, a timing check that fails is an expected failure, as ``aigw run --baseline`` notes
    it without failing: such checks fall either side of their bounds on a loaded machine."""
    state = _state(item.config)
    result = item.scenario_node.result
    check = next((c for c in result.checks if c.id == item.name), None) if result is not None else None
    kind = check.kind if check is not None else "expect"
    if state.baseline is None or not is_timing_check(item.name, kind) or hasattr(report, "wasxfail"):
        return
    report.outcome = "skipped"
    report.wasxfail = "timing-dependent: reported, not gated by the baseline"


def record_report(config: pytest.Config, report: pytest.TestReport) -> None:
    """Fold one item's report into its scenario's verdict (error > failed > passed; skipped when the
    whole scenario was skipped at setup)."""
    state = _state(config)
    scenario_id = state.item_scenarios.get(report.nodeid)
    if scenario_id is None:
        return
    item = report.nodeid.rsplit("::", 1)[-1]
    outcomes = state.outcomes.setdefault(scenario_id, {})
    # A baseline's expected failures keep the verdict of the check itself: an xfailed item is a check
    # that failed, a strict XPASS one that passed (the run fails on it, the scenario's verdict does not).
    xfailed = report.skipped and hasattr(report, "wasxfail")
    xpassed = report.when == "call" and str(report.longrepr).startswith("[XPASS(strict)]")
    if xfailed or xpassed:
        current = state.verdicts.get(scenario_id)
        if xfailed and report.when != "call":  # the scenario could not run: not the known failure
            outcomes[item] = "error"
            state.verdicts[scenario_id] = ScenarioStatus.ERROR
        elif xfailed:
            outcomes[item] = "failed"
            if current != ScenarioStatus.ERROR:
                state.verdicts[scenario_id] = ScenarioStatus.FAILED
        else:
            outcomes[item] = "passed"
            if current is None:
                state.verdicts[scenario_id] = ScenarioStatus.PASSED
        return
    if report.when == "call" or report.failed or report.skipped:
        outcomes[item] = "error" if report.failed and report.when != "call" else report.outcome
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


def write_report(session: pytest.Session, options: AigwOptions) -> Path | None:
    """Write the scenario results of this session, and pytest's verdicts, into ``--aigw-report-dir``;
    return the folder, or ``None`` when no scenario ran."""
    from aigw_harness.report.render import write_report as render

    state = _state(session.config)
    directory = options.report_dir
    if directory is None or not state.results:
        return None
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
    if state.baseline is not None:
        comparison = compare(state.baseline, results, file=str(options.baseline))
        results = results.model_copy(update={"baseline": comparison})
    render(results, directory)
    scenarios = dict(_ordered(state.verdicts, state.results))
    outcomes = {scenario_id: state.outcomes.get(scenario_id, {}) for scenario_id in scenarios}
    verdicts = {"source": "pytest", "scenarios": scenarios, "items": outcomes}
    (directory / "verdicts.json").write_text(json.dumps(verdicts, indent=2) + "\n", encoding="utf-8")
    return directory


def _ordered(verdicts: dict[str, str], results: list[ScenarioResult]) -> Iterator[tuple[str, str]]:
    for result in results:
        if result.id in verdicts:
            yield result.id, str(verdicts[result.id])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
