"""``aigw load``: drive a system under test with Locust, then read what it billed and charged.

The data flow:

    profile ─► target.session(setup) ─► SUT (/chat) ◄── Locust users (a separate process, or a master
                     │                                   with workers on this or other machines)
                     ├─ sampler: billed (upstream store) vs charged (ledger) while the load runs
                     └─ afterwards: Locust's final stats + the upstream's store + the ledger
                                    ─► aigw_harness.load.analysis ─► Results ─► results.json and the report

Locust runs on gevent and patches the standard library when imported, so it never runs inside this
(asyncio) process: it is a child process, awaited with ``asyncio.create_subprocess_exec`` while this
process's event loop keeps serving the embedded target. Every child is stopped when the run ends, normally
or not.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aigw_fakes.datafiles import DataFileError, validate_data
from aigw_harness.errors import ConfigError
from aigw_harness.gateway.tenants import TenantConfig
from aigw_harness.load.analysis import BudgetSample, LoadFacts, read_locust_stats, read_user_counts
from aigw_harness.load.profile import LoadProfile, load_profile
from aigw_harness.scenarios.loader import resolve_tenant_entries
from aigw_harness.scenarios.targets import ScenarioSetup, SystemUnderTest, TargetOptions, load_target

__all__ = ["LOCUSTFILE", "LoadOptions", "default_profile_path", "locust_command", "run_load", "run_worker"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
_PROFILES = Path(__file__).with_name("profiles")


def default_profile_path() -> Path:
    return _PROFILES / "default.yaml"


@dataclass(frozen=True, slots=True)
class LoadOptions:
    out_dir: Path
    profile_path: Path = field(default_factory=default_profile_path)
    users: int = 10
    spawn_rate: float = 10.0
    duration_s: float = 10.0
    target: str = "fake"
    target_options: TargetOptions = field(default_factory=TargetOptions)
    processes: int = 0
    """Local Locust worker processes (Locust's ``--processes``); 0 runs the users in one process."""
    master: bool = False
    """Run Locust as a master that waits for ``expect_workers`` workers (``aigw load --worker`` elsewhere)."""
    expect_workers: int = 1
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557
    sample_interval_s: float = 1.0


def locust_command(
    *,
    host: str | None,
    users: int | None = None,
    spawn_rate: float | None = None,
    duration_s: float | None = None,
    out_prefix: Path | None = None,
    processes: int = 0,
    master: bool = False,
    expect_workers: int = 1,
    master_bind_host: str = "127.0.0.1",
    master_bind_port: int = 5557,
    worker_of: tuple[str, int] | None = None,
) -> list[str]:
    """The Locust command line for a headless run, a master, or a worker (``worker_of=(host, port)``)."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--skip-log-setup"]
    if worker_of is not None:
        command += ["--worker", "--master-host", worker_of[0], "--master-port", str(worker_of[1])]
        if processes:
            command += ["--processes", str(processes)]
        return command
    if host is None or out_prefix is None or users is None or duration_s is None:
        raise ValueError("a headless run needs host, users, duration_s and out_prefix")
    command += [
        "--headless",
        "--host",
        host,
        "--users",
        str(users),
        "--spawn-rate",
        f"{spawn_rate or users:g}",
        "--stop-timeout",
        "10",
        "--only-summary",
        "--csv",
        str(out_prefix),
        "--csv-full-history",
        "--json-file",
        str(out_prefix),
        "--exit-code-on-error",
        "0",
    ]
    if not master:
        command += [
            "--run-time",
            f"{max(1, round(duration_s))}s",
        ]  # a master stops itself: see the locustfile
    if master:
        command += [
            "--master",
            "--expect-workers",
            str(expect_workers),
            "--master-bind-host",
            master_bind_host,
            "--master-bind-port",
            str(master_bind_port),
        ]
    elif processes:
        command += ["--processes", str(processes)]
    return command


def _require_locust() -> None:
    if importlib.util.find_spec("locust") is None:
        raise ConfigError(
            "aigw load needs Locust, which is not installed here: pip install 'aigw-harness[load]'"
        )


def _environment(profile_path: Path, master_duration_s: float | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["AIGW_LOAD_PROFILE"] = str(profile_path.resolve())
    if master_duration_s is not None:
        env["AIGW_LOAD_MASTER_DURATION_S"] = f"{master_duration_s:g}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


async def _wait_process(command: Sequence[str], env: dict[str, str], log: Path) -> int:
    """Run a child process to its end; if this coroutine is cancelled, the child is stopped first."""
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=asyncio.subprocess.STDOUT
        )
        try:
            return await process.wait()
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


class _Sampler:
    """Billed (upstream store) against charged (ledger) every interval while the load runs."""

    def __init__(self, sut: SystemUnderTest, tenants: Sequence[str], interval: float) -> None:
        self._sut = sut
        self._tenants = tenants
        self._interval = interval
        self.samples: list[BudgetSample] = []

    async def run(self, started: float, until: asyncio.Event) -> None:
        while not until.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), timeout=self._interval)
            sample = await self.sample(time.perf_counter() - started)
            if sample is not None:
                self.samples.append(sample)

    async def sample(self, t_s: float) -> BudgetSample | None:
        if self._sut.upstream is None:
            return None
        calls = await self._sut.upstream.requests()
        billed = sum((c.tokens_in or 0) + (c.tokens_out or 0) for c in calls if c.status == 200)
        charged: int | None = None
        if self._sut.ledger is not None:
            now = self._sut.clock.now() if self._sut.clock is not None else datetime.now(UTC)
            charged = 0
            for tenant in self._tenants:
                charged += await self._sut.ledger.used(tenant, "daily", now)
        return BudgetSample(t_s=round(t_s, 3), upstream_calls=len(calls), billed=billed, charged=charged)


def _setup(profile: LoadProfile, options: LoadOptions) -> ScenarioSetup:
    source = str(options.profile_path)
    tenants = resolve_tenant_entries(
        [mix.tenant for mix in profile.tenants], options.target_options.tenants_dir, source
    )
    for index, document in enumerate(tenants):  # a mistake is the profile's, named before anything starts
        try:
            validate_data(document, TenantConfig, f"{source}: tenants[{index}].tenant")
        except DataFileError as exc:
            raise ConfigError(str(exc)) from None
    return ScenarioSetup(
        scenario_id=f"load.{profile.name}",
        tenants=tenants,
        environment=profile.environment,
        budget_store=profile.budget_store,
        clock_start=None,
        upstream=profile.upstream,
        seed=options.target_options.seed,
        time_scale=options.target_options.time_scale,
    )


async def run_load(options: LoadOptions) -> LoadFacts:
    """Start the target, run Locust against it, and gather every fact the analysis needs."""
    _require_locust()
    profile = load_profile(options.profile_path)
    setup = _setup(profile, options)
    target = load_target(options.target, options.target_options)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    prefix = options.out_dir / "locust"
    started_at = datetime.now(UTC)
    async with target.session(setup) as sut:
        command = locust_command(
            host=sut.chat_url,
            users=options.users,
            spawn_rate=options.spawn_rate,
            duration_s=options.duration_s,
            out_prefix=prefix,
            processes=options.processes,
            master=options.master,
            expect_workers=options.expect_workers,
            master_bind_host=options.master_bind_host,
            master_bind_port=options.master_bind_port,
        )
        sampler = _Sampler(sut, profile.tenant_ids(), options.sample_interval_s)
        done = asyncio.Event()
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            group.create_task(sampler.run(started, done))
            try:
                env = _environment(options.profile_path, options.duration_s if options.master else None)
                code = await _wait_process(command, env, prefix.with_suffix(".log"))
            finally:
                done.set()
        wall_s = time.perf_counter() - started
        final = await sampler.sample(wall_s)
        calls = await sut.upstream.requests() if sut.upstream is not None else None
        records = await sut.metrics.records() if sut.metrics is not None else None
        budgets = _daily_budgets(setup.tenants)
        used: dict[str, int] = {}
        if sut.ledger is not None:
            now = sut.clock.now() if sut.clock is not None else datetime.now(UTC)
            for tenant in profile.tenant_ids():
                used[tenant] = await sut.ledger.used(tenant, "daily", now)
        description = sut.description or options.target
    if code != 0:
        raise ConfigError(f"Locust exited with status {code}; its log is {prefix.with_suffix('.log')}")
    return LoadFacts(
        profile=profile,
        profile_path=str(options.profile_path),
        target=options.target,
        sut=description,
        users=options.users,
        spawn_rate=options.spawn_rate,
        duration_s=options.duration_s,
        wall_s=wall_s,
        started_at=started_at,
        stats=read_locust_stats(prefix),
        user_counts=read_user_counts(prefix),
        samples=[*sampler.samples, *([final] if final is not None else [])],
        upstream_calls=calls,
        usage_records=records,
        ledger_used=used if sut.ledger is not None else None,
        daily_budgets=budgets,
        seed=options.target_options.seed,
    )


def _daily_budgets(tenants: Sequence[dict[str, object]]) -> dict[str, int]:
    budgets: dict[str, int] = {}
    for document in tenants:
        tenant_id = document.get("tenantId")
        budget = document.get("tokenBudget")
        if isinstance(tenant_id, str) and isinstance(budget, dict):
            daily = budget.get("daily")
            if isinstance(daily, int):
                budgets[tenant_id] = daily
    return budgets


async def run_worker(
    profile_path: Path, master_host: str, master_port: int, processes: int, log: Path
) -> int:
    """A Locust worker process for a master elsewhere (``aigw load --master`` on the other machine)."""
    _require_locust()
    load_profile(profile_path)  # a mistake is reported here, not by every worker greenlet
    command = locust_command(host=None, worker_of=(master_host, master_port), processes=processes)
    log.parent.mkdir(parents=True, exist_ok=True)
    return await _wait_process(command, _environment(profile_path), log)
