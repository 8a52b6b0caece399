"""The official ``cloudflare`` SDK against the fake: it manages gateways and reads, edits and deletes logs,
and its typed models accept every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import cloudflare
import httpx
import pytest
import pytest_asyncio
from cloudflare.types.ai_gateway import (
    AIGatewayCreateResponse,
    AIGatewayGetResponse,
    AIGatewayListResponse,
    AIGatewayUpdateResponse,
    LogGetResponse,
    LogListResponse,
)

from aigw_fakes.server import FakeGateway

from .support import ACCOUNT, GATEWAY, NATIVE, TOKEN, call


@pytest_asyncio.fixture
async def sdk(fake: FakeGateway) -> AsyncIterator[cloudflare.AsyncCloudflare]:
    async with cloudflare.AsyncCloudflare(
        api_token=TOKEN, base_url=f"{fake.base_url}/client/v4", max_retries=0
    ) as client:
        yield client


async def test_the_sdk_creates_lists_gets_updates_and_deletes_gateways(
    sdk: cloudflare.AsyncCloudflare,
) -> None:
    created = await sdk.ai_gateway.create(
        account_id=ACCOUNT,
        id="made-by-sdk",
        cache_invalidate_on_update=True,
        cache_ttl=None,
        collect_logs=True,
        rate_limiting_interval=60,
        rate_limiting_limit=100,
        rate_limiting_technique="sliding",
        retry_max_attempts=3,
        retry_delay=500,
        retry_backoff="exponential",
    )
    assert isinstance(created, AIGatewayCreateResponse)
    assert (created.id, created.cache_ttl, created.rate_limiting_technique) == ("made-by-sdk", 0, "sliding")
    assert isinstance(created.created_at, datetime)
    assert created.is_default is False

    listed = [gw async for gw in sdk.ai_gateway.list(account_id=ACCOUNT)]
    assert all(isinstance(gw, AIGatewayListResponse) for gw in listed)
    assert {gw.id for gw in listed} == {GATEWAY, "made-by-sdk"}

    updated = await sdk.ai_gateway.update(
        "made-by-sdk",
        account_id=ACCOUNT,
        cache_invalidate_on_update=False,
        cache_ttl=600,
        collect_logs=False,
        rate_limiting_interval=None,
        rate_limiting_limit=None,
        spend_limits={
            "enabled": True,
            "rules": [
                {
                    "id": "per-user",
                    "limit": 0.5,
                    "limit_type": "cost",
                    "window": 3600,
                    "metadata": {"user": {"mode": "partition"}},
                }
            ],
        },
    )
    assert isinstance(updated, AIGatewayUpdateResponse)
    assert updated.cache_ttl == 600
    assert updated.spend_limits is not None
    assert updated.spend_limits.rules is not None
    assert updated.spend_limits.rules[0].limit_type == "cost"

    got = await sdk.ai_gateway.get("made-by-sdk", account_id=ACCOUNT)
    assert isinstance(got, AIGatewayGetResponse)
    assert (got.collect_logs, got.modified_at >= got.created_at) == (False, True)

    await sdk.ai_gateway.delete("made-by-sdk", account_id=ACCOUNT)
    with pytest.raises(cloudflare.NotFoundError) as missing:
        await sdk.ai_gateway.get("made-by-sdk", account_id=ACCOUNT)
    assert missing.value.status_code == 404
    assert "gateway does not exist" in str(missing.value)


async def test_bad_gateway_bodies_are_refused_with_the_field_named(sdk: cloudflare.AsyncCloudflare) -> None:
    with pytest.raises(cloudflare.BadRequestError) as caught:
        await sdk.ai_gateway.update(
            GATEWAY,
            account_id=ACCOUNT,
            cache_invalidate_on_update=False,
            cache_ttl=0,
            collect_logs=True,
            rate_limiting_interval=None,
            rate_limiting_limit=None,
            retry_max_attempts=9,
        )
    assert "retry_max_attempts: Input should be less than or equal to 5" in str(caught.value)


async def test_the_sdk_lists_gets_edits_and_deletes_logs(
    sdk: cloudflare.AsyncCloudflare, client: httpx.AsyncClient
) -> None:
    ids = []
    for user in ("amy", "bob", "cid"):
        response = await call(client, metadata={"user": user, "team": "search"})
        assert response.status_code == 200
        ids.append(response.headers["cf-aig-log-id"])

    page = await sdk.ai_gateway.logs.list(GATEWAY, account_id=ACCOUNT, per_page=2, order_by_direction="asc")
    first = page.result
    assert [log.id for log in first] == ids[:2]
    everything = [log async for log in sdk.ai_gateway.logs.list(GATEWAY, account_id=ACCOUNT, per_page=2)]
    assert [log.id for log in everything] == ids[::-1]  # auto-pagination stops at the empty page
    assert all(isinstance(log, LogListResponse) for log in everything)
    assert everything[0].model == NATIVE
    assert isinstance(everything[0].created_at, datetime)

    bob = [
        log
        async for log in sdk.ai_gateway.logs.list(
            GATEWAY,
            account_id=ACCOUNT,
            filters=[{"key": "metadata.value", "operator": "eq", "value": ["bob"]}],
        )
    ]
    assert [log.id for log in bob] == [ids[1]]

    detail = await sdk.ai_gateway.logs.get(ids[0], account_id=ACCOUNT, gateway_id=GATEWAY)
    assert isinstance(detail, LogGetResponse)
    assert detail.request_size is not None
    assert detail.request_size > 0
    assert detail.response_head_complete is True

    await sdk.ai_gateway.logs.edit(
        ids[0], account_id=ACCOUNT, gateway_id=GATEWAY, feedback=1, score=87, metadata={"reviewed": True}
    )
    edited = (
        await client.get(
            f"/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways/{GATEWAY}/logs/{ids[0]}",
            headers={"authorization": f"Bearer {TOKEN}"},
        )
    ).json()["result"]
    assert (edited["feedback"], edited["score"], edited["metadata"]) == (1, 87.0, {"reviewed": True})

    request_payload = await sdk.ai_gateway.logs.request(ids[0], account_id=ACCOUNT, gateway_id=GATEWAY)
    assert request_payload == {"prompt": "hello"}
    response_payload = await sdk.ai_gateway.logs.response(ids[0], account_id=ACCOUNT, gateway_id=GATEWAY)
    assert isinstance(response_payload, dict)
    assert response_payload["success"] is True

    deleted = await sdk.ai_gateway.logs.delete(
        GATEWAY,
        account_id=ACCOUNT,
        filters=[{"key": "metadata.value", "operator": "neq", "value": ["bob"]}],
    )
    assert deleted.success is True
    remaining = [log.id async for log in sdk.ai_gateway.logs.list(GATEWAY, account_id=ACCOUNT)]
    assert remaining == [ids[1]]

    with pytest.raises(cloudflare.NotFoundError):
        await sdk.ai_gateway.logs.get(ids[0], account_id=ACCOUNT, gateway_id=GATEWAY)


async def test_an_invalid_filter_key_is_a_400_with_code_7001(sdk: cloudflare.AsyncCloudflare) -> None:
    with pytest.raises(cloudflare.BadRequestError) as caught:
        await sdk.ai_gateway.logs.list(
            GATEWAY,
            account_id=ACCOUNT,
            filters=[{"key": "tenant", "operator": "eq", "value": ["a"]}],  # type: ignore[typeddict-item]
        )
    assert caught.value.status_code == 400
    assert "7001" in str(caught.value)
    assert "Invalid enum value. Expected 'id' | 'created_at'" in str(caught.value)


async def test_the_sdk_gets_a_gateway_url(sdk: cloudflare.AsyncCloudflare, fake: FakeGateway) -> None:
    url = await sdk.ai_gateway.urls.get("workers-ai", account_id=ACCOUNT, gateway_id=GATEWAY)
    assert url == f"{fake.base_url}/v1/{ACCOUNT}/{GATEWAY}/workers-ai"


async def test_a_wrong_token_is_refused_with_10000(fake: FakeGateway) -> None:
    async with cloudflare.AsyncCloudflare(
        api_token="not-the-token", base_url=f"{fake.base_url}/client/v4", max_retries=0
    ) as wrong:
        with pytest.raises(cloudflare.AuthenticationError) as caught:
            await wrong.ai_gateway.logs.list(GATEWAY, account_id=ACCOUNT)
    assert "10000" in str(caught.value)


async def test_metadata_is_an_object_as_live_or_text_as_the_sdk_types_say(
    sdk: cloudflare.AsyncCloudflare, client: httpx.AsyncClient
) -> None:
    await call(client, metadata={"user": "amy", "n": 2})
    (log,) = (await sdk.ai_gateway.logs.list(GATEWAY, account_id=ACCOUNT)).result
    assert log.metadata == {"user": "amy", "n": 2}  # type: ignore[comparison-overlap]
    assert (await client.put("/__aigw/features", json={"log_metadata": "text"})).status_code == 200
    (log,) = (await sdk.ai_gateway.logs.list(GATEWAY, account_id=ACCOUNT)).result
    assert log.metadata == '{"user": "amy", "n": 2}'
    assert (
        log.to_dict()["metadata"] == '{"user": "amy", "n": 2}'
    )  # no serializer warning (warnings are errors)
