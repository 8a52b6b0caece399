"""The url target against a deployment whose upstream is our fake: scripting and logs over HTTP."""

from __future__ import annotations

from pathlib import Path

from aigw_fakes.config import DEFAULT_ACCOUNT_ID, DEFAULT_API_TOKEN, AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.datafiles import parse_model
from aigw_fakes.server import FakeGateway
from aigw_harness.gateway.server import GatewaySettings, ReferenceGateway
from aigw_harness.report.results import CheckStatus, ScenarioStatus
from aigw_harness.scenarios.model import Scenario
from aigw_harness.scenarios.runner import RunOptions, run_scenario

TENANTS = Path(__file__).parents[2] / "scenarios" / "tenants"


def url_options(gateway: ReferenceGateway, fake: FakeGateway) -> RunOptions:
    """The url target on ``gateway``, scripting the fake that stands behind it."""
    extra = {"upstream_url": fake.base_url, "account_id": fake.account_id, "api_token": fake.api_token}
    return RunOptions(target="url", sut_url=gateway.base_url, extra=extra)


SCRIPTED = parse_model(
    """
id: t.url
title: fallback on a deployment
area: fallback
description: d
requires: [upstream_control, gateway_logs]
upstream:
  default: {tokens: 4}
  models: {"@cf/meta/llama-3.1-8b-instruct-fp8-fast": [{error: out_of_capacity}]}
steps:
  - name: chat
    request: {tenant: example, model: "@cf/meta/llama-3.1-8b-instruct-fp8-fast", stream: false}
    expect: {status: 502}
checks:
  - {id: calls, upstream_calls: {count: 1, statuses: [429], gateway_id: example-gateway}}
  - {id: logs, logs: {count: 1, metadata: {tenantId: example}, fields: {status_code: 429}}}
""",
    Scenario,
)


async def test_scripted_scenario_runs_on_a_deployment_whose_upstream_is_the_fake() -> None:
    account = AccountConfig(
        id=DEFAULT_ACCOUNT_ID, api_tokens=[DEFAULT_API_TOKEN], gateways=[GatewayConfig(id="example-gateway")]
    )
    async with FakeGateway.running(config=FakeConfig(accounts=[account], time_scale=0.05)) as fake:
        settings = GatewaySettings.for_upstream(
            fake.base_url, account_id=fake.account_id, api_token=fake.api_token, tenants_dir=TENANTS
        )
        async with ReferenceGateway.running(settings) as gateway:
            options = url_options(gateway, fake)
            result = await run_scenario(SCRIPTED, options)
    assert result.status is ScenarioStatus.PASSED, [c.reason for c in result.checks]
    assert {c.id: c.status for c in result.checks}["logs"] is CheckStatus.PASSED
    (exchange,) = result.exchanges
    assert len(exchange.log_ids) == 1


async def test_without_the_fake_scripted_scenarios_are_skipped() -> None:
    result = await run_scenario(SCRIPTED, RunOptions(target="url", sut_url="http://127.0.0.1:9"))
    assert result.status is ScenarioStatus.SKIPPED
    assert "upstream_control" in result.reason


async def test_a_state_probe_gives_the_ledger_of_a_deployment() -> None:
    from datetime import UTC, datetime

    import httpx
    import pytest

    from aigw_harness.errors import ConfigError
    from aigw_harness.scenarios.targets import Capability, TargetOptions
    from aigw_harness.scenarios.url_target import ProbeLedger, UrlTarget

    seen: list[str] = []

    def probe(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if "gamma" in request.url.path:
            return httpx.Response(404)
        return httpx.Response(200, text='{"used": 42}' if "monthly" in request.url.path else "17")

    pattern = "http://sut.invalid/__usage/{tenant}/{period}/{date}"
    target = UrlTarget(TargetOptions(sut_url="http://127.0.0.1:9", extra={"ledger_url": pattern}))
    assert target.capabilities == {Capability.LEDGER, Capability.SESSIONS}
    at = datetime(2026, 2, 7, 12, tzinfo=UTC)
    async with httpx.AsyncClient(transport=httpx.MockTransport(probe)) as client:
        ledger = ProbeLedger(client, pattern)
        got = [
            await ledger.used("alpha", "daily", at),
            await ledger.used("alpha", "monthly", at),
            await ledger.used("gamma", "daily", at),
        ]
    assert got == [17, 42, 0]
    assert seen[:2] == ["/__usage/alpha/daily/2026-02-07", "/__usage/alpha/monthly/2026-02"]
    with pytest.raises(ConfigError, match="ledger_url="):
        UrlTarget(TargetOptions(sut_url="http://127.0.0.1:9", extra={"ledger_url": "http://x/{who}"}))


REFERENCED = parse_model(
    """
id: t.url-models
title: the fallback a deployment is configured with
area: fallback
description: d
tenants: [example]
upstream:
  default: {tokens: 4}
  models: {"primary:example": [{error: out_of_capacity}]}
steps:
  - name: chat
    request: {tenant: example, stream: false}
    expect: {status: 200, headers: {x-model-id: {model: "fallback:example"}}}
checks:
  - {id: calls, upstream_calls: {models: [{model: "primary:example"}, {model: "fallback:example"}]}}
""",
    Scenario,
)


async def test_without_its_configuration_a_deployment_s_models_are_read_from_health() -> None:
    fast, small = "@cf/meta/llama-3.1-8b-instruct-fast", "@cf/meta/llama-3.2-3b-instruct"
    account = AccountConfig(
        id=DEFAULT_ACCOUNT_ID, api_tokens=[DEFAULT_API_TOKEN], gateways=[GatewayConfig(id="example-gateway")]
    )
    async with FakeGateway.running(config=FakeConfig(accounts=[account], time_scale=0.05)) as fake:
        results = []
        for env in (
            {"MODEL_ID": fast, "FALLBACK_MODEL_ID": small},
            {"MODEL_ID": fast, "FALLBACK_MODEL_ID": fast},
        ):
            settings = GatewaySettings.for_upstream(
                fake.base_url,
                account_id=fake.account_id,
                api_token=fake.api_token,
                tenants_dir=TENANTS,
                env=env,
            )
            async with ReferenceGateway.running(settings) as gateway:
                options = url_options(gateway, fake)
                results.append(await run_scenario(REFERENCED, options))
    served, without = results
    assert served.status is ScenarioStatus.PASSED, [c.reason for c in served.checks]
    calls = next(c for c in served.checks if c.id == "calls")
    assert calls.observed["models"] == [fast, small]
    # The same model stands by as serves: no fallback to expect, so the scenario does not apply.
    assert without.status is ScenarioStatus.NOT_APPLICABLE
    assert without.reason == (
        f"not applicable: fallback:example (the SUT has no fallback for example: /health reports modelId "
        f"{fast}, fallbackModelId {fast}, the fallback is the primary, so there is no fallback call)"
    )
