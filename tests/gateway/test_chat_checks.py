"""/chat checks before the upstream call, in the platform's order: JSON, schema, length, model and
allow-list, rate limit, budget. Each answer is checked byte for byte with its header set."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aigw_fakes.server import FakeGateway

from .conftest import LLAMA, LLAMA_FAST, SESSION, GatewayFactory, tenant

ALPHA = {"x-tenant-id": "alpha"}
EXAMPLE = {"x-tenant-id": "example"}
LARGE_BODIES = {"MAX_REQUEST_BODY_SIZE": "200000"}  # 5000 emoji are 60 kB of JSON escapes


def body(**fields: Any) -> dict[str, Any]:
    return {"sessionId": SESSION, "message": "hello", "stream": False, **fields}


async def test_invalid_json(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    async with start_gateway() as (gw, client):
        for raw in (b"", b"{", b'{"a":NaN}', b"\xff\xfe"):
            response = await client.post("/chat", headers=ALPHA, content=raw)
            assert response.status_code == 400, raw
            assert (
                response.content == b'{"ok":false,"error":{"code":"invalid_json","message":"Invalid JSON"}}'
            )
    assert fake.store.records() == []
    assert [r.error_code for r in gw.metrics.records] == ["invalid_json"] * 4


@pytest.mark.parametrize(
    "payload",
    [
        [],
        None,
        "text",
        {"message": "hi"},
        {"sessionId": SESSION},
        {"sessionId": "not-a-uuid", "message": "hi"},
        {"sessionId": "{11111111-1111-1111-1111-111111111111}", "message": "hi"},
        {"sessionId": "11111111111111111111111111111111", "message": "hi"},
        {"sessionId": SESSION + "\n", "message": "hi"},
        {"sessionId": SESSION, "message": ""},
        {"sessionId": SESSION, "message": 5},
        {"sessionId": SESSION, "message": "x" * 10001},
        {"sessionId": SESSION, "message": "😀" * 5001},
        {"sessionId": SESSION, "message": "hi", "modelId": ""},
        {"sessionId": SESSION, "message": "hi", "modelId": None},
        {"sessionId": SESSION, "message": "hi", "stream": None},
        {"sessionId": SESSION, "message": "hi", "stream": "false"},
        {"sessionId": SESSION, "message": "hi", "userId": ""},
    ],
)
async def test_invalid_request(start_gateway: GatewayFactory, payload: Any) -> None:
    async with start_gateway(env=LARGE_BODIES) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, content=json.dumps(payload))
    assert response.status_code == 400
    assert response.content == b'{"ok":false,"error":{"code":"invalid_request","message":"Invalid request"}}'


@pytest.mark.parametrize(
    "payload",
    [
        {"sessionId": "00000000-0000-0000-0000-000000000000", "message": "   ", "stream": False},
        {"sessionId": SESSION.upper(), "message": "😀" * 5000, "stream": False},
        {"sessionId": SESSION, "message": "hi", "stream": False, "unknown": [1, 2]},
    ],
)
async def test_valid_edge_requests(start_gateway: GatewayFactory, payload: Any) -> None:
    async with start_gateway(env=LARGE_BODIES) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=payload)
    assert response.status_code == 200, response.text


async def test_message_length_counts_utf16_units(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"MAX_MESSAGE_LENGTH": "4"}) as (_, client):
        fits = await client.post("/chat", headers=EXAMPLE, json=body(message="😀😀"))
        too_long = await client.post("/chat", headers=EXAMPLE, json=body(message="😀😀a"))
    assert fits.status_code == 200
    assert too_long.status_code == 400
    assert too_long.json()["error"] == {"code": "invalid_request", "message": "Message too long"}


async def test_model_not_allowed_for_request_and_default(start_gateway: GatewayFactory) -> None:
    async with start_gateway() as (_, client):
        requested = await client.post(
            "/chat", headers=ALPHA, json=body(modelId="@cf/meta/llama-3.2-3b-instruct")
        )
    restricted = tenant(featureFlags={"modelAllowList": True}, allowedModels=[LLAMA_FAST])
    async with start_gateway(tenants_dir=None, tenants=[restricted]) as (gw, client):
        default = await client.post("/chat", headers={"x-tenant-id": "t1"}, json=body())
    for response in (requested, default):
        assert response.status_code == 403
        assert response.content == (
            b'{"ok":false,"error":{"code":"model_not_allowed","message":"Requested model is not allowed"}}'
        )
        assert "x-ratelimit-limit" not in response.headers
    decision = gw.metrics.last.selection[0]
    assert decision["layer"] == "tenant"
    assert "allowedModels" in str(decision["reason"])


async def test_allow_list_off_sends_any_model(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=body(modelId="@cf/acme/anything"))
    # No chat-model check: the id goes upstream, which answers that there is no such model, and the
    # tenant's default model (the fallback) serves.
    assert [r.model for r in fake.store.records()] == ["@cf/acme/anything", LLAMA]
    assert response.status_code == 200
    assert response.headers["x-model-id"] == LLAMA
    assert gw.metrics.last.attempts[0].error_class == "model"


async def test_rate_limit_headers_and_429(start_gateway: GatewayFactory, clock: Any) -> None:
    limited = tenant(rateLimit={"perMinute": 2, "burst": 1})
    async with start_gateway(tenants_dir=None, tenants=[limited]) as (_, client):
        headers = {"x-tenant-id": "t1"}
        first = await client.post("/chat", headers=headers, json=body())
        clock.advance(1)
        second = await client.post("/chat", headers=headers, json=body())
        third = await client.post("/chat", headers=headers, json=body())
        other_user = await client.post("/chat", headers={**headers, "x-user-id": "u2"}, json=body())
        body_user_wins = await client.post(
            "/chat", headers={**headers, "x-user-id": "u2"}, json=body(userId="u3")
        )
        clock.advance(60)
        later = await client.post("/chat", headers=headers, json=body())
    now_ms = int(clock.now() * 1000)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert second.headers["x-ratelimit-remaining"] == "0"
    assert third.status_code == 429
    assert third.content == b'{"ok":false,"error":{"code":"rate_limited","message":"Rate limit exceeded"}}'
    assert third.headers["x-ratelimit-remaining"] == "0"
    # The newest active timestamp plus the window, in epoch milliseconds.
    assert int(third.headers["x-ratelimit-reset"]) == now_ms - 60_000 + 60_000
    assert other_user.status_code == 200
    assert body_user_wins.headers["x-ratelimit-remaining"] == "1"
    assert later.status_code == 200


async def test_budget_exceeded_daily_then_monthly(start_gateway: GatewayFactory) -> None:
    small = tenant(tokenBudget={"daily": 10, "monthly": 12})
    async with start_gateway(tenants_dir=None, tenants=[small]) as (gw, client):
        headers = {"x-tenant-id": "t1"}
        ok = await client.post("/chat", headers=headers, json=body())  # charges 7 (reported usage)
        daily = await client.post("/chat", headers=headers, json=body(message="x" * 20))
    assert ok.status_code == 200
    assert daily.status_code == 429
    assert daily.content == (
        b'{"ok":false,"error":{"code":"budget_exceeded","message":"Daily token budget exceeded"}}'
    )
    assert "x-ratelimit-limit" not in daily.headers
    assert gw.metrics.last.budget_window == "daily"

    monthly_only = tenant(tokenBudget={"monthly": 3})
    async with start_gateway(tenants_dir=None, tenants=[monthly_only]) as (_, client):
        response = await client.post("/chat", headers={"x-tenant-id": "t1"}, json=body(message="x" * 13))
    assert response.json()["error"]["message"] == "Monthly token budget exceeded"


async def test_budget_allows_reaching_the_limit_exactly(start_gateway: GatewayFactory) -> None:
    exact = tenant(tokenBudget={"daily": 2})
    async with start_gateway(tenants_dir=None, tenants=[exact]) as (_, client):
        response = await client.post("/chat", headers={"x-tenant-id": "t1"}, json=body(message="12345678"))
    assert response.status_code == 200


async def test_refused_budget_turn_is_not_stored(start_gateway: GatewayFactory) -> None:
    tiny = tenant(tokenBudget={"daily": 1})
    async with start_gateway(tenants_dir=None, tenants=[tiny]) as (_, client):
        headers = {"x-tenant-id": "t1"}
        refused = await client.post("/chat", headers=headers, json=body(message="x" * 8))
        history = (await client.get(f"/chat/{SESSION}/history", headers=headers)).json()["data"]["messages"]
    assert refused.status_code == 429
    assert history == []


async def test_check_order_json_before_schema_before_length_before_model(
    start_gateway: GatewayFactory,
) -> None:
    env = {"MAX_MESSAGE_LENGTH": "2"}
    async with start_gateway(env=env) as (_, client):
        bad_schema_long = await client.post(
            "/chat", headers=ALPHA, json={"sessionId": "x", "message": "long", "modelId": "not-allowed"}
        )
        long_bad_model = await client.post(
            "/chat", headers=ALPHA, json=body(message="long", modelId="not-allowed")
        )
    assert bad_schema_long.json()["error"]["message"] == "Invalid request"
    assert long_bad_model.json()["error"]["message"] == "Message too long"


async def test_history_limit_and_estimate_include_history(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "Hello"}})
    async with start_gateway(env={"MAX_MESSAGE_COUNT": "2"}) as (gw, client):
        for text in ("one", "two", "three"):
            await client.post("/chat", headers=EXAMPLE, json=body(message=text))
    sent = json.loads(fake.store.records()[-1].request_body)["messages"]
    # The two newest history messages, oldest first, then the new one.
    assert [m["content"] for m in sent] == ["two", "Hello", "three"]
    assert gw.metrics.last.estimated_tokens_in == 1 + 2 + 2
