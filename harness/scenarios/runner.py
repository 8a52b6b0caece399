"""The runner: scenarios in, results out.

For each scenario it works out the capabilities needed, skips with the reason when the target lacks one,
opens a target session, plays the steps (requests, repeats, concurrent bursts, pauses, clock moves, new
upstream behaviour), gathers what the system under test lets it see (upstream calls, AI Gateway logs, usage
records, the ledger), evaluates expectations and checks, measures, and raises findings with their evidence.

Python API (what the CLI and the pytest plugin call)::

    from aigw_harness.scenarios.runner import RunOptions, run_scenario, run_scenarios

    result = await run_scenario("scenarios/spike-streaming.yaml", RunOptions(time_scale=0.05))
    result.status            # ScenarioStatus.PASSED / FAILED / SKIPPED / ERROR
    results = await run_scenarios([Path("scenarios")], RunOptions(target="fake"))
    results.ok               # every expectation held

Nothing here renders reports (``aigw_harness.report`` does) or knows a particular target's internals.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from aigw_harness import __version__
from aigw_harness.catalogue import tenants_dir as catalogue_tenants_dir
from aigw_harness.errors import HarnessError
from aigw_harness.report.results import (
    CheckResult,
    CheckStatus,
    Evidence,
    Exchange,
    FindingResult,
    Measurement,
    OvershootPoint,
    Results,
    RunInfo,
    ScenarioResult,
    ScenarioStatus,
)
from aigw_harness.scenarios import checks as chk
from aigw_harness.scenarios import kinds
from aigw_harness.scenarios.assumptions import assumptions_of, resolve_models, unmet
from aigw_harness.scenarios.check_kinds import CheckContext, billed_tokens
from aigw_harness.scenarios.conformance import conformance, fault_not_exercised, group_under_root_causes
from aigw_harness.scenarios.exchange import perform, prepare
from aigw_harness.scenarios.loader import LoadedScenario, load_scenario, load_scenarios, resolve_tenants
from aigw_harness.scenarios.measure import measurement, scenario_measurements
from aigw_harness.scenarios.model import FindingWhen, Scenario, Step
from aigw_harness.scenarios.sessions import RouteSessions
from aigw_harness.scenarios.targets import (
    CAPABILITY_WORDS,
    Capability,
    ScenarioSetup,
    SystemUnderTest,
    Target,
    TargetOptions,
    UpstreamCall,
    load_target,
)

__all__ = [
    "CAPABILITY_WORDS",
    "Progress",
    "RunOptions",
    "needed_capabilities",
    "run_scenario",
    "run_scenarios",
]

_SCENARIO_TIMEOUT_S = 120.0
log = logging.getLogger("aigw.runner")


@dataclass(frozen=True, slots=True)
class RunOptions:
    target: str | Target = "fake"
    """A registry name, ``module:factory``, or a ``Target`` instance."""
    sut_url: str | None = None
    seed: int = 0
    time_scale: float = 0.05
    """Delays in behaviour documents and pauses are multiplied by this; results are reported unscaled."""
    tenants_dir: Path = field(default_factory=catalogue_tenants_dir)
    extra: Mapping[str, str] = field(default_factory=dict)

    def target_options(self) -> TargetOptions:
        return TargetOptions(
            sut_url=self.sut_url,
            tenants_dir=self.tenants_dir,
            seed=self.seed,
            time_scale=self.time_scale,
            extra=self.extra,
        )

    def resolve_target(self) -> Target:
        if isinstance(self.target, str):
            return load_target(self.target, self.target_options())
        return self.target


type Progress = Callable[[int, int, ScenarioResult | None, str], None]
"""Called before each scenario (result ``None``) and after it: (index, total, result, scenario id)."""


def needed_capabilities(scenario: Scenario) -> set[Capability]:
    """Everything the scenario can use (its setup's, steps' and checks' needs), derived by the kinds."""
    return set(kinds.scenario_needs(scenario))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Play:
    """The state of one scenario being played against one system under test."""

    def __init__(
        self, scenario: Scenario, sut: SystemUnderTest, setup: ScenarioSetup, options: RunOptions
    ) -> None:
        self.scenario = scenario
        self.sut = sut
        self.setup = setup
        self.options = options
        self.exchanges: list[Exchange] = []
        self.overshoot: list[OvershootPoint] = []
        self.started = time.perf_counter()
        rng = random.Random(f"{options.seed}:{scenario.id}")
        self.session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.trace_suffix = hashlib.sha256(f"{options.seed}:{scenario.id}".encode()).hexdigest()[:8]
        self.counter = 0
        self._client: httpx.AsyncClient | None = None
        self.step_behaviour: dict[str, Any] = {}
        """Request step → the upstream behaviour document in force when it ran (``None``: the default)."""

    def _next_id(self) -> tuple[str, str]:
        self.counter += 1
        rid = f"r{self.counter:04d}"
        return rid, f"{rid}-{self.trace_suffix}"

    async def play(self, client: httpx.AsyncClient) -> None:
        if self.sut.upstream is not None:
            await self.sut.upstream.reset()
            if self.scenario.upstream is not None:
                await self.sut.upstream.load_behaviour(self.scenario.upstream)
        if self.scenario.clock is not None and self.sut.clock is not None:
            await self.sut.clock.set(self.scenario.clock)
        self._client = client
        active: Any = self.scenario.upstream
        try:
            for name, step in zip(self.scenario.step_names(), self.scenario.steps, strict=True):
                if step.upstream is not None:
                    active = step.upstream
                elif step.request is not None:
                    self.step_behaviour[name] = active
                await kinds.step_kind(step).perform(self, name, step)
        finally:
            self._client = None

    @property
    def time_scale(self) -> float:
        return self.options.time_scale

    async def send_requests(self, name: str, step: Step) -> None:
        if step.request is None or self._client is None:
            raise RuntimeError(f"step {name} is not a request step")
        client = self._client
        before = await self._ledger_before(step)
        for _ in range(step.repeat):
            sent_at = (
                self.sut.clock.now().isoformat().replace("+00:00", "Z")
                if self.sut.clock is not None
                else None
            )
            prepared = []
            for index in range(step.concurrency):
                rid, trace = self._next_id()
                prepared.append(
                    prepare(
                        step.request,
                        rid=rid,
                        step=name,
                        index=len([e for e in self.exchanges if e.step == name]) + index,
                        concurrency=step.concurrency,
                        session=self.session,
                        trace_id=trace,
                    )
                )
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(
                        perform(
                            client,
                            self.sut.chat_url,
                            request,
                            started=self.started,
                            time_scale=self.options.time_scale,
                        )
                    )
                    for request in prepared
                ]
            for task in tasks:
                exchange = task.result()
                if sent_at is not None:
                    exchange.sut_time = sent_at
                self.exchanges.append(exchange)
        if step.measure_overshoot is not None and before is not None:
            await self._measure_overshoot(name, step, before)

    def _clock_now(self) -> datetime:
        return self.sut.clock.now() if self.sut.clock is not None else datetime.now(UTC)

    async def _ledger_before(self, step: Step) -> int | None:
        spec = step.measure_overshoot
        if spec is None or self.sut.ledger is None:
            return None
        return await self.sut.ledger.used(spec.tenant, spec.period.value, self._clock_now())

    def _budget_limit(self, tenant: str, period: str) -> int:
        for document in self.setup.tenants:
            if document.get("tenantId") == tenant or document.get("id") == tenant:
                budget = document.get("tokenBudget") or {}
                limit = budget.get(period) if isinstance(budget, Mapping) else None
                if isinstance(limit, int):
                    return limit
        raise RuntimeError(f"tenant {tenant!r} has no tokenBudget.{period} in the scenario's tenants")

    async def _measure_overshoot(self, name: str, step: Step, before: int) -> None:
        spec = step.measure_overshoot
        if spec is None or self.sut.ledger is None:
            return
        used = await self.sut.ledger.used(spec.tenant, spec.period.value, self._clock_now())
        limit = self._budget_limit(spec.tenant, spec.period.value)
        mine = [e for e in self.exchanges if e.step == name]
        admitted = [e for e in mine if e.status == 200]
        consumed = await self._tokens_consumed({e.trace_id for e in admitted if e.trace_id})
        truth = before + consumed if consumed is not None else used
        self.overshoot.append(
            OvershootPoint(
                step=name,
                tenant=spec.tenant,
                period=spec.period.value,
                concurrency=step.concurrency,
                budget_store=self.setup.budget_store,
                limit=limit,
                used=used,
                consumed=truth,
                overshoot_tokens=max(0, truth - limit),
                admitted=len(admitted),
            )
        )

    async def _tokens_consumed(self, traces: set[str]) -> int | None:
        """Tokens actually served to these requests: the gateway's success records, else the upstream's."""
        if self.sut.metrics is not None:
            records = [
                r for r in await self.sut.metrics.records() if r.trace_id in traces and r.status == "success"
            ]
            return sum(r.total_tokens or (r.tokens_in or 0) + (r.tokens_out or 0) for r in records)
        source = self.sut.call_source()
        if source is not None:
            calls = [c for c in await source.requests() if str(c.metadata.get("traceId")) in traces]
            return sum(billed_tokens(c) for c in calls)
        return None

    async def observe(self) -> chk.Observations:
        observations = chk.Observations(exchanges=self.exchanges)
        source = self.sut.call_source()
        if source is not None and Capability.UPSTREAM_CALLS in self.sut.capabilities:
            observations.upstream = await source.requests()
        if self.sut.logs is not None:
            observations.logs = await self.sut.logs.list()
        if self.sut.metrics is not None:
            observations.metrics = await self.sut.metrics.records()
        by_trace: dict[str, list[UpstreamCall]] = {}
        for call in observations.upstream or []:
            trace = call.metadata.get("traceId")
            if trace is not None:
                by_trace.setdefault(str(trace), []).append(call)
        observations.by_trace = by_trace
        logs_by_trace: dict[str, list[str]] = {}
        for record in observations.logs or []:
            trace = record.metadata.get("traceId")
            if trace is not None:
                logs_by_trace.setdefault(str(trace), []).append(record.id)
        for exchange in self.exchanges:
            trace = exchange.trace_id or ""
            calls = by_trace.get(trace, [])
            exchange.upstream_models = [c.model or "" for c in calls]
            exchange.log_ids = [c.log_id for c in calls if c.log_id] or logs_by_trace.get(trace, [])
        return observations

    async def scenario_checks(self, observations: chk.Observations, plan: kinds.Plan) -> list[CheckResult]:
        # A SUT whose stored sessions the target cannot read is asked through its own history route.
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
            context = CheckContext(
                observations=observations,
                measurements={m.name: m for m in self.measurements() if m.step is None},
                overshoot=self.overshoot,
                ledger=self.sut.ledger,
                sessions=self.sut.sessions or RouteSessions(client, self.sut.chat_url),
                clock_now=self._clock_now,
            )
            return await self._evaluate_checks(context, plan)

    async def _evaluate_checks(self, context: CheckContext, plan: kinds.Plan) -> list[CheckResult]:
        results: list[CheckResult] = []
        for check in self.scenario.checks:
            missing = plan.skipped_checks.get(check.id)
            if missing:
                results.append(
                    CheckResult(
                        id=check.id,
                        kind=check.kind,
                        description=check.description,
                        status=CheckStatus.SKIPPED,
                        expected="",
                        reason=f"needs {kinds.describe_missing(missing)}",
                    )
                )
                continue
            spec = getattr(check, check.kind)
            results.append(await kinds.check_kind(check).evaluate(check, spec, context))
        return results

    def measurements(self) -> list[Measurement]:
        names = list(self.scenario.measure)
        found = scenario_measurements(names, self.exchanges)
        if "overshoot_tokens" in names and self.overshoot:
            found.append(measurement("overshoot_tokens", [float(p.overshoot_tokens) for p in self.overshoot]))
        return found


def _not_exercised(
    checks: list[CheckResult], why: Mapping[str, str], exchanges: Sequence[Exchange]
) -> list[CheckResult]:
    """Checks that would judge a fault that never happened become ``not exercised`` with the reason: the
    checks of a step whose fault was not delivered, checks resting only on such steps' requests, and a
    failed check resting on any of them (or on no request at all: counts and ledgers over the whole run)."""
    if not why:
        return checks
    step_of = {e.id: e.step for e in exchanges}
    first = next(iter(why.values()))
    out: list[CheckResult] = []
    for check in checks:
        if check.kind == "conformance":
            out.append(check)
            continue
        steps = {check.step} if check.step else {step_of.get(r) for r in check.exchanges}
        reasons = [why[s] for s in steps if s is not None and s in why]
        failed = check.status is CheckStatus.FAILED
        if (steps and len(reasons) == len(steps)) or (failed and (reasons or not steps)):
            reason = reasons[0] if reasons else first
            check = check.model_copy(update={"status": CheckStatus.NOT_EXERCISED, "reason": reason})
        out.append(check)
    return out


def _disconnects_not_exercised(scenario: Scenario, exchanges: Sequence[Exchange]) -> dict[str, str]:
    """Steps whose client was to leave mid-stream but never did (the stream ended first)."""
    out: dict[str, str] = {}
    for name, step in zip(scenario.step_names(), scenario.steps, strict=True):
        after = step.request.disconnect_after_events if step.request is not None else None
        mine = [e for e in exchanges if e.step == name]
        if after is not None and mine and not any(e.disconnected for e in mine):
            events = max(len([ev for ev in e.events if ev.event == "message"]) for e in mine)
            out[name] = (
                f"fault not exercised: the client of step {name} was to leave after {after} data events, "
                f"and the stream ended after {events}"
            )
    return out


def _findings(scenario: Scenario, checks: Sequence[CheckResult], measurements: Sequence[Measurement],
              exchanges: Sequence[Exchange]) -> list[FindingResult]:  # fmt: skip
    by_id = {c.id: c for c in checks}
    by_step: dict[str, list[CheckResult]] = {}
    for c in checks:
        if c.step is not None:
            by_step.setdefault(c.step, []).append(c)
    overall = {m.name: m for m in measurements if m.step is None}
    timings = {e.id: e for e in exchanges}
    out: list[FindingResult] = []
    for finding in scenario.findings:
        evidence: list[Evidence] = []
        statuses: list[CheckStatus] = []
        for ref in finding.evidence:
            if ref in by_id:
                c = by_id[ref]
                statuses.append(c.status)
                evidence.append(_evidence_from_checks(ref, "check", [c], timings))
            elif ref in by_step or ref in scenario.step_names():
                step_checks = by_step.get(ref, [])
                statuses.extend(c.status for c in step_checks)
                evidence.append(_evidence_from_checks(ref, "step", step_checks, timings))
            else:
                m = overall.get(ref)
                summary = (
                    f"n={m.count}, p50 {m.p50:g}, p95 {m.p95:g}, max {m.max:g} {m.unit}"
                    if m is not None
                    and m.count
                    and m.p50 is not None
                    and m.p95 is not None
                    and m.max is not None
                    else "no samples"
                )
                evidence.append(
                    Evidence(
                        ref=ref,
                        kind="measurement",
                        status="measured" if m is not None and m.count else "no samples",
                        summary=summary,
                        timings_ms={
                            k: v for k, v in (("p50", m.p50), ("p95", m.p95), ("max", m.max)) if v is not None
                        }
                        if m is not None and m.unit == "ms"
                        else {},
                        observed=m.samples[:50] if m is not None else None,
                    )
                )
        ran = [s for s in statuses if s not in (CheckStatus.SKIPPED, CheckStatus.NOT_EXERCISED)]
        if finding.when is FindingWhen.FAILED:
            raised = any(s is CheckStatus.FAILED for s in ran)
        elif finding.when is FindingWhen.PASSED:
            raised = bool(ran) and all(s is CheckStatus.PASSED for s in ran)
        else:
            raised = bool(ran) or not statuses
        out.append(
            FindingResult(
                id=finding.id,
                title=finding.title,
                severity=finding.severity.value,
                raised=raised,
                when=finding.when.value,
                detail=finding.detail,
                recommendation=finding.recommendation,
                evidence=evidence,
            )
        )
    return out


def _evidence_from_checks(
    ref: str, kind: str, found: Sequence[CheckResult], exchanges: Mapping[str, Exchange]
) -> Evidence:
    if not found:
        return Evidence(
            ref=ref, kind="check" if kind == "check" else "step", status="not run", summary="no observation"
        )
    failed = [c for c in found if c.status is CheckStatus.FAILED]
    shown = failed or list(found)
    status = (
        "failed"
        if failed
        else ("skipped" if all(c.status is CheckStatus.SKIPPED for c in found) else "passed")
    )
    parts = []
    for c in shown[:4]:
        observed = c.reason or f"observed {chk.json_short(c.observed)}"
        parts.append(f"{c.id}: expected {c.expected}; {observed}")
    request_ids: list[str] = []
    for c in shown:
        request_ids.extend(r for r in c.exchanges if r not in request_ids)
    # Log ids in the order of the requests (the failing ones first), then any the checks name besides.
    log_ids: list[str] = [lid for rid in request_ids if rid in exchanges for lid in exchanges[rid].log_ids]
    for c in shown:
        log_ids.extend(lid for lid in c.log_ids if lid not in log_ids)
    timing: dict[str, float] = {}
    first = exchanges.get(request_ids[0]) if request_ids else None
    if first is not None:
        if first.ttft_ms is not None:
            timing[f"{first.id} ttft"] = first.ttft_ms
        if first.duration_ms is not None:
            timing[f"{first.id} duration"] = first.duration_ms
    return Evidence(
        ref=ref,
        kind="check" if kind == "check" else "step",
        status=status,
        summary=" | ".join(parts),
        exchanges=request_ids,
        log_ids=log_ids,
        timings_ms=timing,
        observed=shown[0].observed,
    )


def _base_result(
    loaded: LoadedScenario, status: ScenarioStatus, started_at: str, **kw: Any
) -> ScenarioResult:
    s = loaded.scenario
    return ScenarioResult(
        id=s.id,
        title=s.title,
        area=s.area.value,
        description=s.description,
        questions=list(s.questions),
        path=str(loaded.path),
        status=status,
        requires=sorted(c.value for c in needed_capabilities(s)),
        budget_store=s.budget_store.value,
        started_at=started_at,
        **kw,
    )


async def _run_loaded(loaded: LoadedScenario, target: Target, options: RunOptions) -> ScenarioResult:
    scenario = loaded.scenario
    started_at = _now()
    started = time.perf_counter()
    plan = kinds.plan(scenario, target.capabilities)
    if not plan.runnable:
        return _base_result(
            loaded, ScenarioStatus.SKIPPED, started_at, reason=plan.reason(target.name), duration_s=0.0
        )
    play: _Play | None = None
    try:
        setup = ScenarioSetup(
            scenario_id=scenario.id,
            tenants=resolve_tenants(scenario, options.tenants_dir),
            environment=dict(scenario.environment),
            budget_store=scenario.budget_store.value,
            clock_start=scenario.clock,
            upstream=scenario.upstream,
            seed=options.seed,
            time_scale=options.time_scale,
            gateway=scenario.gateway.model_dump(exclude_none=True),
            absent_gateways=tuple(scenario.absent_gateways),
            unset=tuple(scenario.assumes.unset),
            environment_defaults=dict(scenario.environment_defaults),
        )
        async with asyncio.timeout(_SCENARIO_TIMEOUT_S), target.session(setup) as sut:
            plan = kinds.plan(scenario, sut.capabilities)
            if not plan.runnable:
                return _base_result(
                    loaded,
                    ScenarioStatus.SKIPPED,
                    started_at,
                    reason=plan.reason(target.name),
                    duration_s=round(time.perf_counter() - started, 3),
                )
            limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(60.0), limits=limits, trust_env=False
            ) as client:
                problems = await unmet(assumptions_of(scenario, setup), sut, client)
                if not problems:
                    # Expected models that follow the SUT's configuration become the models it picks.
                    scenario, problems = await resolve_models(scenario, setup, sut, client)
                play = _Play(scenario, sut, setup, options)
                if problems:
                    log.warning(
                        "%s is not applicable on %s: %s", scenario.id, target.name, "; ".join(problems)
                    )
                    return _base_result(
                        loaded,
                        ScenarioStatus.NOT_APPLICABLE,
                        started_at,
                        reason="not applicable: " + "; ".join(problems),
                        duration_s=round(time.perf_counter() - started, 3),
                    )
                await play.play(client)
            observations = await play.observe()
            checks: list[CheckResult] = []
            for name, step in zip(scenario.step_names(), scenario.steps, strict=True):
                if step.expect is not None:
                    mine = [e for e in play.exchanges if e.step == name]
                    checks.extend(chk.expectation_checks(name, step.expect, mine))
            checks.extend(await play.scenario_checks(observations, plan))
            causes = conformance(observations)
            checks.extend(cause.check for cause in causes)
            unscaled = sut.config is not None and not sut.config.scaled_timers and options.time_scale < 1
            not_exercised = fault_not_exercised(
                play.step_behaviour, observations, options.time_scale if unscaled else None
            )
            not_exercised.update(_disconnects_not_exercised(scenario, play.exchanges))
            checks = _not_exercised(checks, not_exercised, play.exchanges)
            measurements = play.measurements()
    except TimeoutError:
        return _base_result(
            loaded,
            ScenarioStatus.ERROR,
            started_at,
            reason=f"did not finish within {_SCENARIO_TIMEOUT_S:g} s",
            duration_s=round(time.perf_counter() - started, 3),
            exchanges=play.exchanges if play else [],
        )
    except HarnessError:
        raise  # the target cannot run here at all (credentials, Node.js...): a configuration error
    except Exception as exc:  # a scenario that cannot run is reported, and the run goes on
        return _base_result(
            loaded,
            ScenarioStatus.ERROR,
            started_at,
            reason=f"{type(exc).__name__}: {exc}",
            duration_s=round(time.perf_counter() - started, 3),
            exchanges=play.exchanges if play else [],
        )
    failed = any(c.status is CheckStatus.FAILED for c in checks)
    findings = group_under_root_causes(
        _findings(scenario, checks, measurements, play.exchanges),
        causes,
        play.exchanges,
        checks,
        kinds.check_symptoms(scenario),
    )
    return _base_result(
        loaded,
        ScenarioStatus.FAILED if failed else ScenarioStatus.PASSED,
        started_at,
        reason="; ".join(dict.fromkeys(not_exercised.values())),
        duration_s=round(time.perf_counter() - started, 3),
        exchanges=play.exchanges,
        checks=checks,
        measurements=measurements,
        overshoot=play.overshoot,
        findings=findings,
        upstream_calls=len(observations.upstream) if observations.upstream is not None else None,
        log_records=len(observations.logs) if observations.logs is not None else None,
    )


async def run_scenario(
    scenario: Scenario | LoadedScenario | str | Path, options: RunOptions | None = None
) -> ScenarioResult:
    """Run one scenario (a file path, a loaded file, or a ``Scenario`` built in code); return its result."""
    options = options or RunOptions()
    if isinstance(scenario, (str, Path)):
        loaded = load_scenario(Path(scenario), options.tenants_dir)
    elif isinstance(scenario, Scenario):
        loaded = LoadedScenario(Path(f"<{scenario.id}>"), scenario)
    else:
        loaded = scenario
    return await _run_loaded(loaded, options.resolve_target(), options)


async def run_scenarios(
    paths: Sequence[Path] | Sequence[LoadedScenario],
    options: RunOptions | None = None,
    progress: Progress | None = None,
    run_id: str | None = None,
) -> Results:
    """Run scenarios one after another (each has the system to itself) and collect the results."""
    options = options or RunOptions()
    loaded = (
        [p for p in paths if isinstance(p, LoadedScenario)]
        if paths and isinstance(paths[0], LoadedScenario)
        else load_scenarios([Path(str(p)) for p in paths], options.tenants_dir)
    )
    target = options.resolve_target()
    # A target may refuse a whole run before anything is sent (the live target: its worst case over the caps).
    before_run = getattr(target, "before_run", None)
    if callable(before_run):
        before_run(loaded)
    started_at = _now()
    started = time.perf_counter()
    scenario_results: list[ScenarioResult] = []
    for index, item in enumerate(loaded):
        if progress is not None:
            progress(index, len(loaded), None, item.scenario.id)
        result = await _run_loaded(item, target, options)
        scenario_results.append(result)
        if progress is not None:
            progress(index, len(loaded), result, item.scenario.id)
    finished_at = _now()
    run = RunInfo(
        id=run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        started_at=started_at,
        finished_at=finished_at,
        duration_s=round(time.perf_counter() - started, 3),
        target=target.name,
        sut=getattr(target, "description", target.name),
        seed=options.seed,
        time_scale=options.time_scale,
        aigw_version=__version__,
        capabilities=sorted(c.value for c in target.capabilities),
    )
    return Results(run=run, summary=Results.summarise(scenario_results), scenarios=scenario_results)
