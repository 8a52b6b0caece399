"""The runner: scenarios in, results out.

For each scenario it works out the capabilities needed, skips with the reason when the target lacks one,
opens a target session, plays the steps (requests, repeats, concurrent bursts, pauses, clock moves, new
upstream behaviour), gathers what the system under test lets it see (upstream calls, AI Gateway logs, usage
records, the ledger), evaluates expectations and checks, measures, and raises findings with their evidence.

Python API (what the CLI and the pytest plugin call)::

    from harness.scenarios.runner import RunOptions, run_scenario, run_scenarios

    result = await run_scenario("scenarios/spike-streaming.yaml", RunOptions(time_scale=0.05))
    result.status            # ScenarioStatus.PASSED / FAILED / SKIPPED / ERROR
    results = await run_scenarios([Path("scenarios")], RunOptions(target="fake"))
    results.ok               # every expectation held

Nothing here renders reports (``harness.report`` does) or knows a particular target's internals.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness import __version__
from harness.catalogue import tenants_dir as catalogue_tenants_dir
from harness.errors import HarnessError
from harness.report.results import (
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
from harness.scenarios import checks as chk
from harness.scenarios.exchange import perform, prepare
from harness.scenarios.loader import LoadedScenario, load_scenario, load_scenarios, resolve_tenants
from harness.scenarios.measure import measurement, samples, scenario_measurements
from harness.scenarios.model import Check, FindingWhen, Scenario, Step
from harness.scenarios.targets import (
    Capability,
    ScenarioSetup,
    SystemUnderTest,
    Target,
    TargetOptions,
    UpstreamCall,
    UsageRecord,
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

CAPABILITY_WORDS = {
    Capability.UPSTREAM_CONTROL: "scripting the upstream (its upstream is not our fake)",
    Capability.GATEWAY_LOGS: "reading AI Gateway's logs",
    Capability.METRICS: "reading the gateway's usage records",
    Capability.LEDGER: "reading the budget ledger",
    Capability.CLOCK: "moving the system's clock",
    Capability.TENANT_CONFIG: "applying the scenario's tenants, environment and budget store",
}
_SCENARIO_TIMEOUT_S = 120.0


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
    """Declared capabilities plus those the scenario's content implies."""
    needed = {Capability(name) for name in scenario.requires}
    if (
        scenario.upstream is not None
        or scenario.absent_gateways
        or any(s.upstream is not None for s in scenario.steps)
    ):
        needed.add(Capability.UPSTREAM_CONTROL)
    if scenario.clock is not None or any(s.clock is not None for s in scenario.steps):
        needed.add(Capability.CLOCK)
    # Named tenants are the standard files a deployment under test serves too; inline tenants, environment
    # overrides and another budget store must be applied by the target.
    inline = any(isinstance(t, dict) for t in scenario.tenants)
    if (
        inline
        or scenario.environment
        or scenario.budget_store.value != "atomic"
        or scenario.gateway.model_fields_set
    ):
        needed.add(Capability.TENANT_CONFIG)
    if any(s.measure_overshoot is not None for s in scenario.steps):
        needed.add(Capability.LEDGER)
    return needed


def _check_needs(check: Check) -> set[Capability]:
    needed = {Capability(name) for name in check.requires}
    if check.ledger is not None:
        needed.add(Capability.LEDGER)
        if check.ledger.agrees_with_metrics:
            needed.add(Capability.METRICS)
    if check.upstream_calls is not None:
        needed.add(Capability.UPSTREAM_CONTROL)
    if check.logs is not None:
        needed.add(Capability.GATEWAY_LOGS)
    if check.metrics is not None:
        needed.add(Capability.METRICS)
    if check.agreement is not None:
        words = {
            "metrics": Capability.METRICS,
            "logs": Capability.GATEWAY_LOGS,
            "upstream": Capability.UPSTREAM_CONTROL,
        }
        needed.update(words[s] for s in check.agreement.sources if s in words)
    return needed


def _missing_reason(missing: set[Capability], target_name: str | None) -> str:
    words = "; ".join(CAPABILITY_WORDS[c] for c in sorted(missing))
    who = f"target {target_name!r}" if target_name else "the target"
    return f"{who} cannot give {', '.join(sorted(missing))} ({words})"


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
        for name, step in zip(self.scenario.step_names(), self.scenario.steps, strict=True):
            await self._step(client, name, step)

    async def _step(self, client: httpx.AsyncClient, name: str, step: Step) -> None:
        if step.pause_s is not None:
            await asyncio.sleep(step.pause_s * self.options.time_scale)
            return
        if step.clock is not None:
            clock = self._require_clock()
            if step.clock.set is not None:
                await clock.set(step.clock.set)
            elif step.clock.advance_s is not None:
                await clock.advance(step.clock.advance_s)
            return
        if step.upstream is not None:
            if self.sut.upstream is None:
                raise RuntimeError(
                    "the scenario changes upstream behaviour but the target gave no upstream control"
                )
            await self.sut.upstream.load_behaviour(step.upstream)
            return
        if step.request is None:
            raise RuntimeError(f"step {name} has no action")
        before = await self._ledger_before(step)
        for _ in range(step.repeat):
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
            self.exchanges.extend(task.result() for task in tasks)
        if step.measure_overshoot is not None and before is not None:
            await self._measure_overshoot(name, step, before)

    def _require_clock(self) -> Any:
        if self.sut.clock is None:
            raise RuntimeError("the scenario moves the clock but the target gave no clock control")
        return self.sut.clock

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
        if self.sut.upstream is not None:
            calls = [
                c for c in await self.sut.upstream.requests() if str(c.metadata.get("traceId")) in traces
            ]
            return sum((c.tokens_in or 0) + (c.tokens_out or 0) for c in calls if c.status < 400)
        return None

    async def observe(self) -> chk.Observations:
        observations = chk.Observations(exchanges=self.exchanges)
        if self.sut.upstream is not None:
            observations.upstream = await self.sut.upstream.requests()
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

    async def scenario_checks(self, observations: chk.Observations) -> list[CheckResult]:
        results: list[CheckResult] = []
        measurements = {m.name: m for m in self.measurements() if m.step is None}
        for check in self.scenario.checks:
            missing = _check_needs(check) - self.sut.capabilities
            if missing:
                results.append(
                    CheckResult(
                        id=check.id,
                        kind=check.kind,
                        description=check.description,
                        status=CheckStatus.SKIPPED,
                        expected="",
                        reason=_missing_reason(missing, None),
                    )
                )
                continue
            results.append(await self._check(check, observations, measurements))
        return results

    async def _check(
        self, check: Check, observations: chk.Observations, measurements: Mapping[str, Measurement]
    ) -> CheckResult:
        if check.upstream_calls is not None:
            return chk.upstream_calls_check(
                check.id, check.description, check.upstream_calls, observations.upstream or []
            )
        if check.logs is not None:
            return chk.logs_check(check.id, check.description, check.logs, observations.logs or [])
        if check.metrics is not None:
            return chk.metrics_check(check.id, check.description, check.metrics, observations.metrics or [])
        if check.agreement is not None:
            return chk.agreement_check(check.id, check.description, check.agreement, observations)
        if check.measurement is not None:
            spec = check.measurement
            found = measurements.get(spec.name)
            if spec.name == "overshoot_tokens":
                found = measurement("overshoot_tokens", [float(p.overshoot_tokens) for p in self.overshoot])
            elif spec.name == "data_events":
                found = measurement("data_events", samples("data_events", self.exchanges))
            return chk.measurement_check(check.id, check.description, spec.name, spec.stat, spec.value, found)
        if check.ledger is not None:
            return await self._ledger_check(check, observations)
        raise RuntimeError(f"check {check.id} has no kind")

    async def _ledger_check(self, check: Check, observations: chk.Observations) -> CheckResult:
        spec = check.ledger
        if spec is None or self.sut.ledger is None:
            raise RuntimeError("ledger check without a ledger")
        used = await self.sut.ledger.used(spec.tenant, spec.period.value, self._clock_now())
        problems: list[str] = []
        expected: list[str] = []
        observed: dict[str, Any] = {"used": used}
        concerned = [e.id for e in self.exchanges if e.tenant == spec.tenant]
        if spec.used is not None:
            expected.append(f"used {spec.used.describe()}")
            if (why := chk.match(spec.used, used)) is not None:
                problems.append(f"used: {why}")
        if spec.agrees_with_metrics:
            now = self._clock_now().strftime("%Y-%m-%d" if spec.period.value == "daily" else "%Y-%m")
            records = [
                r
                for r in observations.metrics or []
                if r.tenant_id == spec.tenant and (r.started_at is None or r.started_at.startswith(now))
            ]
            charged = sum(_charged(r) for r in records)
            observed["metrics_total"] = charged
            traces = {r.trace_id for r in records}
            concerned = [e.id for e in self.exchanges if e.trace_id in traces]
            expected.append(f"used == the tokens the usage records charged in {now}")
            if charged != used:
                problems.append(f"ledger says {used}, metrics say {charged}")
        return CheckResult(
            id=check.id,
            kind="ledger",
            description=check.description,
            status=CheckStatus.FAILED if problems else CheckStatus.PASSED,
            expected="; ".join(expected),
            observed=observed,
            reason="; ".join(problems),
            exchanges=concerned,
        )

    def measurements(self) -> list[Measurement]:
        names = list(self.scenario.measure)
        found = scenario_measurements(names, self.exchanges)
        if "overshoot_tokens" in names and self.overshoot:
            found.append(measurement("overshoot_tokens", [float(p.overshoot_tokens) for p in self.overshoot]))
        return found


def _charged(record: UsageRecord) -> int:
    """What a usage record charged: the gateway's own figure, else a success's total tokens."""
    if record.charged is not None:
        return record.charged
    if record.status != "success":
        return 0
    return record.total_tokens or (record.tokens_in or 0) + (record.tokens_out or 0)


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
        ran = [s for s in statuses if s is not CheckStatus.SKIPPED]
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
    missing = needed_capabilities(scenario) - target.capabilities
    if missing:
        return _base_result(
            loaded,
            ScenarioStatus.SKIPPED,
            started_at,
            reason=_missing_reason(missing, target.name),
            duration_s=0.0,
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
        )
        async with asyncio.timeout(_SCENARIO_TIMEOUT_S), target.session(setup) as sut:
            missing = needed_capabilities(scenario) - sut.capabilities
            if missing:
                return _base_result(
                    loaded,
                    ScenarioStatus.SKIPPED,
                    started_at,
                    reason=_missing_reason(missing, target.name),
                    duration_s=round(time.perf_counter() - started, 3),
                )
            play = _Play(scenario, sut, setup, options)
            limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(60.0), limits=limits, trust_env=False
            ) as client:
                await play.play(client)
            observations = await play.observe()
            checks: list[CheckResult] = []
            for name, step in zip(scenario.step_names(), scenario.steps, strict=True):
                if step.expect is not None:
                    mine = [e for e in play.exchanges if e.step == name]
                    checks.extend(chk.expectation_checks(name, step.expect, mine))
            checks.extend(await play.scenario_checks(observations))
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
    return _base_result(
        loaded,
        ScenarioStatus.FAILED if failed else ScenarioStatus.PASSED,
        started_at,
        duration_s=round(time.perf_counter() - started, 3),
        exchanges=play.exchanges,
        checks=checks,
        measurements=measurements,
        overshoot=play.overshoot,
        findings=_findings(scenario, checks, measurements, play.exchanges),
        upstream_calls=len(observations.upstream) if observations.upstream is not None else None,
        log_records=len(observations.logs) if observations.logs is not None else None,
    )


async def run_scenario(
    scenario: Scenario | LoadedScenario | str | Path, options: RunOptions | None = None
) -> ScenarioResult:
    """Run one scenario (a file path, a loaded file, or a ``Scenario`` built in code); return its result."""
    options = options or RunOptions()
    if isinstance(scenario, (str, Path)):
        loaded = load_scenario(Path(scenario))
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
        else load_scenarios([Path(str(p)) for p in paths])
    )
    target = options.resolve_target()
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
