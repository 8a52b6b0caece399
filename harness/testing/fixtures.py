"""The fixtures the ``aigw`` pytest plugin registers.

Each does nothing unless a test requests it, imports its server or client only then, and stops everything
it started at teardown. Configuration, lowest precedence first: the ``aigw_config`` fixture (override it in
a ``conftest.py``), then ``@pytest.mark.aigw(...)`` on the test (the closest marker wins), then the
``--aigw-seed``/``--aigw-time-scale`` flags.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from aigw_harness.errors import HarnessError
from aigw_harness.testing.options import CONFIG_KEYS, OPTIONS_KEY, live_skip_reason

if TYPE_CHECKING:
    from aigw_fakes.server import FakeGateway
    from aigw_harness.gateway.server import ReferenceGateway
    from aigw_harness.gateway.tenants import TenantConfig
    from aigw_harness.scenarios.targets import Capability, SystemUnderTest
    from aigw_harness.testing.scenario_runner import ScenarioRunner
    from aigw_harness.testing.sse_client import SSEClient

__all__ = [
    "DEFAULT_TENANT",
    "aigw_chat_url",
    "aigw_config",
    "aigw_fake",
    "aigw_gateway",
    "aigw_run_scenario",
    "aigw_sse_client",
    "aigw_sut",
    "resolve_config",
]


@pytest.fixture
def aigw_config() -> dict[str, Any]:
    """Settings for the aigw fixtures (keys: see ``CONFIG_KEYS``); override it to change the defaults."""
    return {}


def resolve_config(request: pytest.FixtureRequest, base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (the ``aigw_config`` fixture) < ``@pytest.mark.aigw`` kwargs < ``--aigw-*`` flags."""
    unknown = sorted(set(base) - set(CONFIG_KEYS))
    if unknown:
        raise pytest.UsageError(
            f"AIGW: the aigw_config fixture returned unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(CONFIG_KEYS)}"
        )
    merged = dict(base)
    for marker in reversed(list(request.node.iter_markers("aigw"))):
        merged.update(marker.kwargs)
    options = request.config.stash[OPTIONS_KEY]
    if options.seed is not None:
        merged["seed"] = options.seed
    if options.time_scale is not None:
        merged["time_scale"] = options.time_scale
    return merged


@pytest_asyncio.fixture
async def aigw_sse_client() -> AsyncIterator[SSEClient]:
    """An ``SSEClient`` for streaming ``/chat`` responses and asserting on them; closed at teardown."""
    from aigw_harness.testing.sse_client import SSEClient

    async with SSEClient() as client:
        yield client


@pytest_asyncio.fixture
async def aigw_fake(
    request: pytest.FixtureRequest, aigw_config: dict[str, Any]
) -> AsyncIterator[FakeGateway]:
    """The fake AI Gateway on a loopback port, with the configured behaviour, seed and time scale.

    ``aigw_fake.behaviour.load(document)`` scripts it further, ``aigw_fake.store`` is its request log and
    ``aigw_fake.reset()`` starts it over. The gateways the tenants name exist from the start.
    """
    async with _running_fake(request, resolve_config(request, aigw_config)) as fake:
        yield fake


@pytest_asyncio.fixture
async def aigw_gateway(
    request: pytest.FixtureRequest, aigw_config: dict[str, Any], aigw_fake: FakeGateway
) -> AsyncIterator[ReferenceGateway]:
    """The reference gateway on a loopback port, in front of ``aigw_fake``.

    Configured with the tenants, environment and budget store; with ``clock_start`` its clock is a
    ``ManualClock`` (``aigw_gateway.clock``) that a test moves across UTC day and month boundaries.
    ``aigw_gateway.metrics`` holds the usage records and ``aigw_gateway.ledger`` the budget ledger.
    """
    async with _running_gateway(request, resolve_config(request, aigw_config), aigw_fake) as gateway:
        yield gateway


@pytest_asyncio.fixture
async def aigw_sut(
    request: pytest.FixtureRequest, aigw_config: dict[str, Any]
) -> AsyncIterator[SystemUnderTest]:
    """The system under test for this test, from the session's target (``--aigw-target``,
    ``--aigw-sut-url``, ``--aigw-target-option``): by default the reference gateway on the fake; with
    ``--aigw-target worker`` your Worker in workerd with ``env.AI`` on the fake; with ``--aigw-sut-url``
    any deployment. ``aigw_sut.chat_url`` serves ``/chat``; ``aigw_sut.upstream`` scripts the upstream when
    it is the fake.

    The configured behaviour is loaded into the upstream; ``requires`` (capability names) skips the test
    with the reason where the target cannot give them, as a scenario is skipped.
    """
    from aigw_harness.scenarios.runner import CAPABILITY_WORDS, RunOptions
    from aigw_harness.scenarios.targets import Capability, ScenarioSetup

    options = request.config.stash[OPTIONS_KEY]
    reason = live_skip_reason(options)
    if reason is not None:
        pytest.skip(reason)
    config = resolve_config(request, aigw_config)
    required = _capabilities(config.get("requires", ()))
    behaviour = config.get("behaviour")
    if behaviour is not None:
        required.add(Capability.UPSTREAM_CONTROL)
    run = RunOptions(
        target=options.target,
        sut_url=options.sut_url,
        seed=int(config.get("seed", 0)),
        time_scale=float(config.get("time_scale", 1.0)),
        tenants_dir=options.tenants_dir or RunOptions().tenants_dir,
        extra=dict(options.target_options),
    )
    unavailable: str | None = None
    try:
        target = run.resolve_target()
    except HarnessError as exc:
        unavailable = str(exc)  # failed outside the handler, so that no traceback is chained to it
    if unavailable is not None:
        pytest.fail(f"AIGW: {unavailable}", pytrace=False)

    def skip_if_missing(have: frozenset[Capability]) -> None:
        missing = sorted(required - have)
        if missing:
            words = "; ".join(CAPABILITY_WORDS[c] for c in missing)
            pytest.skip(f"target {target.name!r} cannot give {', '.join(missing)} ({words})")

    skip_if_missing(target.capabilities)
    setup = ScenarioSetup(
        scenario_id=request.node.name,
        tenants=[tenant.model_dump(by_alias=True) for tenant in _tenants(request, config)],
        environment=dict(config.get("environment") or {}),
        budget_store=config.get("budget_store", "atomic"),
        clock_start=_instant(config.get("clock_start")),
        upstream=None,
        seed=run.seed,
        time_scale=run.time_scale,
    )
    async with target.session(setup) as sut:
        skip_if_missing(sut.capabilities)
        if behaviour is not None and sut.upstream is not None:
            await sut.upstream.reset()
            await sut.upstream.load_behaviour(_behaviour_document(request, behaviour))
        yield sut


@pytest.fixture
def aigw_chat_url(aigw_sut: SystemUnderTest) -> str:
    """The base URL serving ``/chat`` of ``aigw_sut``: what a contract test of your Worker talks to."""
    return aigw_sut.chat_url


@asynccontextmanager
async def _running_fake(
    request: pytest.FixtureRequest, config: Mapping[str, Any]
) -> AsyncIterator[FakeGateway]:
    from aigw_fakes.config import (
        DEFAULT_ACCOUNT_ID,
        DEFAULT_API_TOKEN,
        AccountConfig,
        FakeConfig,
        GatewayConfig,
    )
    from aigw_fakes.server import FakeGateway

    gateways = sorted({tenant.ai_gateway_id for tenant in _tenants(request, config)})
    account = AccountConfig(
        id=DEFAULT_ACCOUNT_ID,
        api_tokens=[DEFAULT_API_TOKEN],
        gateways=[GatewayConfig(id=gateway) for gateway in gateways],
    )
    fake_config = FakeConfig(
        accounts=[account], seed=int(config.get("seed", 0)), time_scale=float(config.get("time_scale", 1.0))
    )
    behaviour = config.get("behaviour")
    document = _behaviour_document(request, behaviour) if behaviour is not None else None
    async with FakeGateway.running(config=fake_config) as fake:
        if document is not None:
            fake.behaviour.load(document)
        yield fake


@asynccontextmanager
async def _running_gateway(
    request: pytest.FixtureRequest, config: Mapping[str, Any], fake: FakeGateway
) -> AsyncIterator[ReferenceGateway]:
    from aigw_harness.gateway.clock import ManualClock, SystemClock
    from aigw_harness.gateway.server import ReferenceGateway
    from aigw_harness.gateway.settings import GatewaySettings

    start = _instant(config.get("clock_start"))
    settings = GatewaySettings.for_upstream(
        fake.base_url,
        account_id=fake.account_id,
        api_token=fake.api_token,
        tenants=_tenants(request, config),
        env=dict(config.get("environment") or {}),
        budget_store=config.get("budget_store", "atomic"),
        clock=ManualClock(start) if start is not None else SystemClock(),
    )
    async with ReferenceGateway.running(settings) as gateway:
        yield gateway


@pytest_asyncio.fixture
async def aigw_run_scenario(request: pytest.FixtureRequest) -> AsyncIterator[ScenarioRunner]:
    """Run a scenario from a test: ``result = await aigw_run_scenario("scenarios/x.yaml")``.

    Runs against the session's target (``--aigw-target``, the embedded fake by default). A failed
    scenario fails the test with its failed expectations and their evidence, a skipped one skips it;
    pass ``check=False`` to get the result without either.
    """
    from aigw_harness.testing.scenario_runner import ScenarioRunner

    yield ScenarioRunner(request.config.stash[OPTIONS_KEY], request.path.parent)


DEFAULT_TENANT: dict[str, Any] = {
    "tenantId": "example",
    "accountId": "example-account",
    "aiGatewayId": "example-gateway",
    "aiModels": {
        "chat": "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
        "embeddings": "@cf/baai/bge-base-en-v1.5",
    },
    "vectorizeNamespace": "example",
    "rateLimit": {"perMinute": 60, "burst": 20},
    "featureFlags": {},
    "allowedHosts": ["example.local"],
    "apiKeys": [],
}
"""The platform's ``example`` tenant: used when no tenants are configured."""


def _tenants(request: pytest.FixtureRequest, config: Mapping[str, Any]) -> list[TenantConfig]:
    """``tenants``: a folder of tenant files, or a list of tenant documents and names of files in
    ``--aigw-tenants``; without it, ``--aigw-tenants`` itself, else ``DEFAULT_TENANT``."""
    from aigw_harness.gateway.tenants import TenantConfig, load_tenants

    folder = request.config.stash[OPTIONS_KEY].tenants_dir
    given = config.get("tenants")
    if given is None:
        return load_tenants(folder) if folder is not None else [TenantConfig.model_validate(DEFAULT_TENANT)]
    if isinstance(given, (str, Path)):
        place = Path(given)
        return load_tenants(place if place.is_absolute() else request.path.parent / place)
    tenants: list[TenantConfig] = []
    for entry in given:
        if isinstance(entry, Mapping):
            tenants.append(TenantConfig.model_validate(dict(entry)))
            continue
        named = [t for t in (load_tenants(folder) if folder is not None else []) if t.tenant_id == entry]
        if not named:
            where = f"in {folder}" if folder is not None else "(no --aigw-tenants DIR was given)"
            raise pytest.UsageError(f"AIGW: tenant {entry!r} of the aigw configuration is not found {where}")
        tenants += named
    return tenants


def _instant(value: Any) -> datetime | None:
    """``clock_start`` as an aware datetime: a datetime, or ISO 8601 text such as 2026-02-07T23:59:59Z."""
    if value is None or isinstance(value, datetime):
        instant = value
    else:
        try:
            instant = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise pytest.UsageError(f"AIGW: clock_start {value!r} is not an ISO 8601 instant") from None
    if instant is not None and instant.tzinfo is None:
        raise pytest.UsageError(f"AIGW: clock_start {value!r} needs a time zone, for example ...T00:00:00Z")
    return instant


def _capabilities(names: Any) -> set[Capability]:
    from aigw_harness.scenarios.targets import Capability

    known = {c.value: c for c in Capability}
    unknown = sorted(str(n) for n in names if n not in known)
    if unknown:
        raise pytest.UsageError(
            f"AIGW: requires names unknown capabilities {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return {known[n] for n in names}


def _behaviour_document(request: pytest.FixtureRequest, behaviour: Any) -> dict[str, Any]:
    """A behaviour document as a mapping (what an upstream control takes), validated by the fake's model."""
    from aigw_fakes.behaviour import BehaviourDocument
    from aigw_fakes.datafiles import DataFileError, load_model, parse_model, validate_data

    value = _relative(request, behaviour)
    try:
        if isinstance(value, Mapping):
            document = validate_data(dict(value), BehaviourDocument, "the aigw behaviour")
        elif isinstance(value, Path):
            document = load_model(value, BehaviourDocument)
        else:
            document = parse_model(str(value), BehaviourDocument, "the aigw behaviour")
    except DataFileError as exc:
        mistake = str(exc)
    else:
        return document.model_dump(mode="json", exclude_unset=True)
    pytest.fail(f"AIGW: {mistake}", pytrace=False)


def _relative(request: pytest.FixtureRequest, value: Any) -> Any:
    """A relative file path is taken from the test file's folder; documents pass through."""
    if isinstance(value, Path) and not value.is_absolute():
        return request.path.parent / value
    if isinstance(value, str) and value.endswith((".yaml", ".yml", ".json")) and "\n" not in value:
        path = Path(value)
        return path if path.is_absolute() else request.path.parent / path
    return value
