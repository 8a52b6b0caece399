"""The fixtures, used as a user's contract tests would use them, and their cleanup."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from aigw_fakes.server import FakeGateway
from aigw_harness.gateway.server import ReferenceGateway
from aigw_harness.testing import SSEClient
from aigw_harness.testing.fixtures import DEFAULT_TENANT

SESSION = "11111111-1111-1111-1111-111111111111"
BUDGETED = {
    **DEFAULT_TENANT,
    "tenantId": "alpha",
    "aiGatewayId": "alpha-gateway",
    "tokenBudget": {"daily": 50000, "monthly": 1000000},
    "allowedHosts": ["alpha.local"],
}


def chat(message: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"sessionId": SESSION, "message": message, **extra}


@pytest.mark.aigw(behaviour={"default": {"tokens": 6, "token_delay_ms": 4}}, seed=3)
async def test_a_stream_through_the_reference_gateway_keeps_the_contract(
    aigw_gateway: ReferenceGateway, aigw_fake: FakeGateway, aigw_sse_client: SSEClient
) -> None:
    url = f"{aigw_gateway.base_url}/chat"
    async with aigw_sse_client.stream(url, json=chat(), headers={"x-tenant-id": "example"}) as stream:
        await stream.read()

    stream.assert_contract()
    stream.assert_progressive()
    assert len(stream.data_events) == 6
    assert stream.done["usage"]["tokensOut"] == 6
    assert stream.headers["x-tenant-id"] == "example"
    assert len(aigw_fake.store) == 1
    assert aigw_fake.config.seed == 3
    [record] = aigw_gateway.metrics.records
    assert (record.status, record.tokens_out, record.gateway_id) == ("success", 6, "example-gateway")


@pytest.mark.aigw(behaviour={"default": {"tokens": 20, "stream": {"cut_after_events": 3}}})
async def test_a_cut_upstream_is_an_error_event_then_done(
    aigw_gateway: ReferenceGateway, aigw_sse_client: SSEClient
) -> None:
    url = f"{aigw_gateway.base_url}/chat"
    async with aigw_sse_client.stream(url, json=chat(), headers={"x-tenant-id": "example"}) as stream:
        await stream.read()

    stream.assert_contract()
    stream.assert_error_event(code="ai_error", message="AI provider unavailable")
    assert [e.event for e in stream.events][-2:] == ["error", "done"]


async def test_behaviour_can_be_scripted_during_the_test(
    aigw_gateway: ReferenceGateway, aigw_fake: FakeGateway, aigw_sse_client: SSEClient
) -> None:
    aigw_fake.behaviour.load({"default": {"error": "out_of_capacity"}})
    url = f"{aigw_gateway.base_url}/chat"
    async with aigw_sse_client.stream(url, json=chat(), headers={"x-tenant-id": "example"}) as stream:
        await stream.read()

    stream.assert_contract()
    stream.assert_error_event(code="ai_error")
    assert [r.status_code for r in aigw_fake.store.records()] == [429]


@pytest.mark.aigw(
    tenants=[BUDGETED],
    budget_store="kv",
    environment={"MAX_MESSAGE_LENGTH": "5"},
    clock_start="2026-02-07T23:59:59Z",
)
async def test_tenants_environment_budget_store_and_clock_apply(
    aigw_gateway: ReferenceGateway, aigw_sse_client: SSEClient
) -> None:
    assert aigw_gateway.settings.budget_store == "kv"
    assert aigw_gateway.clock.now() == datetime(2026, 2, 7, 23, 59, 59, tzinfo=UTC).timestamp()
    async with httpx.AsyncClient(base_url=aigw_gateway.base_url) as client:
        health = (await client.get("/health", headers={"x-tenant-id": "alpha"})).json()
        too_long = await client.post("/chat", json=chat("too long"), headers={"x-tenant-id": "alpha"})
    assert health["data"]["tenantId"] == "alpha"
    refusal = {"ok": False, "error": {"code": "invalid_request", "message": "Message too long"}}
    assert too_long.json() == refusal

    async with aigw_sse_client.stream(
        f"{aigw_gateway.base_url}/chat", json=chat("hi"), headers={"x-tenant-id": "alpha"}
    ) as stream:
        await stream.read()
    stream.assert_contract()
    charged = aigw_gateway.ledger.usage()
    assert charged["alpha:token-usage:daily:2026-02-07"] == stream.done["usage"]["totalTokens"]


def test_every_server_is_stopped_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        URLS = []

        @pytest.mark.asyncio
        async def test_uses_both(aigw_gateway, aigw_fake):
            URLS.extend([aigw_gateway.base_url, aigw_fake.base_url])

        def test_they_are_gone():
            import socket
            from urllib.parse import urlsplit

            assert len(URLS) == 2
            for url in URLS:
                parts = urlsplit(url)
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection((parts.hostname, parts.port), timeout=2).close()
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_fixtures_work_in_strict_mode_with_a_configured_default(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def aigw_config():
            return {"behaviour": "behaviour.yaml", "time_scale": 0.5}
        """
    )
    pytester.makefile(".yaml", behaviour="default: {tokens: 2, token_delay_ms: 1}\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_default_from_conftest(aigw_gateway, aigw_fake, aigw_sse_client):
            assert aigw_fake.config.time_scale == 0.5
            body = {"sessionId": "11111111-1111-1111-1111-111111111111", "message": "hi"}
            async with aigw_sse_client.stream(
                aigw_gateway.base_url + "/chat", json=body, headers={"x-tenant-id": "example"}
            ) as stream:
                await stream.read()
            stream.assert_contract()
            assert len(stream.data_events) == 2
        """
    )
    pytester.runpytest("--asyncio-mode=strict").assert_outcomes(passed=1)


def test_an_unknown_tenant_name_says_where_it_looked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.aigw(tenants=["beta"])
        @pytest.mark.asyncio
        async def test_x(aigw_gateway):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*AIGW: tenant 'beta' of the aigw configuration is not found (no --aigw-tenants DIR was given)"]
    )


def test_a_tenants_folder_is_found_next_to_the_test_file(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("tenants")
    (folder / "alpha.json").write_text(json.dumps(BUDGETED))
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def aigw_config():
            return {"tenants": "tenants"}
        """
    )
    pytester.makepyfile(
        """
        import httpx
        import pytest

        @pytest.mark.asyncio
        async def test_alpha(aigw_gateway):
            async with httpx.AsyncClient(base_url=aigw_gateway.base_url) as client:
                health = await client.get("/health", headers={"x-tenant-id": "alpha"})
            assert health.json()["data"]["tenantId"] == "alpha"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_mistake_in_the_behaviour_names_the_field(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.aigw(behaviour={"default": {"tokns": 3}})
        @pytest.mark.asyncio
        async def test_x(aigw_chat_url):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_x _*",
            "AIGW: the aigw behaviour: 1 problem",
            "  the aigw behaviour: default.tokns: Extra inputs are not permitted",
            "*= short test summary info =*",
        ]
    )
