"""Fetch-level steps and the non-chat routes, through HTTP: tenant resolution, body size, /health,
405/404, session routes and their sessionId checks, envelopes and traceId."""

from __future__ import annotations

import pytest

from aigw_fakes.server import FakeGateway
from aigw_harness.gateway import ManualClock

from .conftest import LLAMA, SESSION, GatewayFactory, tenant

JSON = "application/json"


async def test_tenant_required_without_header_host_or_key(start_gateway: GatewayFactory) -> None:
    async with start_gateway() as (_, client):
        response = await client.get("/health")
    assert response.status_code == 400
    assert response.content == b'{"ok":false,"error":{"code":"tenant_required","message":"Tenant required"}}'
    assert response.headers["content-type"] == JSON


async def test_unknown_tenant_header_is_404(start_gateway: GatewayFactory) -> None:
    async with start_gateway() as (_, client):
        response = await client.get("/health", headers={"x-tenant-id": "nobody"})
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error": {"code": "tenant_unknown", "message": "Unknown tenant"}}


@pytest.mark.parametrize(
    ("headers", "tenant"),
    [
        ({"x-tenant-id": "example"}, "example"),
        ({"host": "alpha.local"}, "alpha"),
        ({"host": "alpha.local:8787"}, "alpha"),
        ({"x-api-key": "alpha-key"}, "alpha"),
        # The header wins over the host, and the host over the key.
        ({"x-tenant-id": "example", "host": "alpha.local"}, "example"),
        ({"host": "example.local", "x-api-key": "alpha-key"}, "example"),
    ],
)
async def test_tenant_resolution_order(
    start_gateway: GatewayFactory, headers: dict[str, str], tenant: str
) -> None:
    async with start_gateway() as (_, client):
        response = await client.get("/health", headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["tenantId"] == tenant


async def test_health_reports_environment_and_models(start_gateway: GatewayFactory) -> None:
    env = {
        "ENVIRONMENT": "dev",
        "MODEL_ID": "@cf/meta/llama-3.1-8b-instruct-fast",
        "FALLBACK_MODEL_ID": LLAMA,
    }
    async with start_gateway(env=env) as (_, client):
        response = await client.post("/health", headers={"x-tenant-id": "example"})
    assert response.status_code == 200
    assert response.content == (
        b'{"ok":true,"data":{"status":"ok","tenantId":"example","environment":"dev",'
        b'"modelId":"@cf/meta/llama-3.1-8b-instruct-fast","fallbackModelId":"@cf/meta/llama-3.1-8b-instruct-fp8-fast"}}'
    )
    assert set(response.headers) == {"content-type", "content-length"}


async def test_health_defaults(start_gateway: GatewayFactory) -> None:
    async with start_gateway() as (_, client):
        data = (await client.get("/health", headers={"x-tenant-id": "alpha"})).json()["data"]
    assert data == {
        "status": "ok",
        "tenantId": "alpha",
        "environment": "unknown",
        "modelId": LLAMA,
        "fallbackModelId": LLAMA,
    }


@pytest.mark.parametrize(
    ("headers", "trace"),
    [
        ({"cf-ray": "9ca1680afd1cd6d3", "x-request-id": "req-1"}, "9ca1680afd1cd6d3"),
        ({"x-request-id": "req-1"}, "req-1"),
    ],
)
async def test_trace_id_from_cf_ray_then_request_id(
    start_gateway: GatewayFactory, headers: dict[str, str], trace: str
) -> None:
    async with start_gateway() as (_, client):
        response = await client.get("/health", headers={"x-tenant-id": "alpha", **headers})
    assert response.json()["traceId"] == trace
    assert response.content.endswith(f',"traceId":"{trace}"}}'.encode())
    assert "x-trace-id" not in response.headers


async def test_trace_id_always_mode_uses_x_trace_id_or_a_uuid(start_gateway: GatewayFactory) -> None:
    async with start_gateway(trace_ids="always") as (_, client):
        given = await client.get("/health", headers={"x-tenant-id": "alpha", "x-trace-id": "mine"})
        generated = await client.get("/health", headers={"x-tenant-id": "alpha"})
    assert given.json()["traceId"] == "mine"
    assert len(generated.json()["traceId"]) == 36


async def test_body_size_limit_uses_declared_content_length(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"MAX_REQUEST_BODY_SIZE": "100"}) as (_, client):
        big = await client.post("/chat", headers={"x-tenant-id": "alpha"}, content=b"x" * 101)
        # A GET is never checked, and the check runs before routing, so /health is refused too.
        health = await client.post("/health", headers={"x-tenant-id": "alpha"}, content=b"x" * 101)
        get = await client.request("GET", "/health", headers={"x-tenant-id": "alpha"}, content=b"x" * 101)
    assert big.status_code == 413
    assert big.json()["error"] == {"code": "payload_too_large", "message": "Request body too large"}
    assert health.status_code == 413
    assert get.status_code == 200


async def test_chunked_body_is_not_size_checked(start_gateway: GatewayFactory) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b"{not json" + b" " * 200

    async with start_gateway(env={"MAX_REQUEST_BODY_SIZE": "100"}) as (_, client):
        response = await client.post("/chat", headers={"x-tenant-id": "alpha"}, content=chunks())
    assert response.json()["error"]["code"] == "invalid_json"


async def test_chat_rejects_other_methods(start_gateway: GatewayFactory) -> None:
    async with start_gateway() as (_, client):
        response = await client.get("/chat", headers={"x-tenant-id": "alpha"})
    assert response.status_code == 405
    assert response.json()["error"] == {"code": "method_not_allowed", "message": "Method not allowed"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("POST", f"/chat/{SESSION}/history"), ("GET", f"/chat/{SESSION}"), ("GET", "/")],
)
async def test_not_found(start_gateway: GatewayFactory, method: str, path: str) -> None:
    async with start_gateway() as (_, client):
        response = await client.request(method, path, headers={"x-tenant-id": "alpha"})
    assert response.status_code == 404
    assert response.content == b'{"ok":false,"error":{"code":"not_found","message":"Not found"}}'


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/chat/not-a-uuid/history", "Invalid sessionId"),
        ("DELETE", "/chat/{11111111-1111-1111-1111-111111111111}", "Invalid sessionId"),
        ("DELETE", "/chat/11111111111111111111111111111111", "Invalid sessionId"),
        ("GET", "/chat//history", "Missing sessionId"),
    ],
)
async def test_session_routes_check_the_session_id(
    start_gateway: GatewayFactory, method: str, path: str, message: str
) -> None:
    async with start_gateway() as (_, client):
        response = await client.request(method, path, headers={"x-tenant-id": "alpha"})
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid_request", "message": message}


async def test_history_then_delete(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "Hello", "tokens": 1}})
    headers = {"x-tenant-id": "example"}
    async with start_gateway() as (_, client):
        chat = await client.post(
            "/chat", headers=headers, json={"sessionId": SESSION, "message": "hello", "stream": False}
        )
        assert chat.status_code == 200
        history = (await client.get(f"/chat/{SESSION}/history", headers=headers)).json()["data"]
        other_tenant = (await client.get(f"/chat/{SESSION}/history", headers={"x-tenant-id": "alpha"})).json()
        cleared = await client.delete(f"/chat/{SESSION}", headers=headers)
        after = (await client.get(f"/chat/{SESSION}/history", headers=headers)).json()["data"]
    assert history["sessionId"] == SESSION
    assert [(m["role"], m["content"]) for m in history["messages"]] == [
        ("user", "hello"),
        ("assistant", "Hello"),
    ]
    assert history["messages"][1]["tokenCount"] == 1
    assert other_tenant["data"]["messages"] == []
    assert cleared.json() == {"ok": True, "data": {"sessionId": SESSION, "cleared": True}}
    assert after["messages"] == []


async def test_history_is_pruned_by_retention_and_count(
    start_gateway: GatewayFactory, fake: FakeGateway, clock: ManualClock
) -> None:
    fake.behaviour.load({"default": {"text": "ok", "tokens": 1}})
    short = tenant(sessionRetentionDays=1, maxMessagesPerSession=3)
    headers = {"x-tenant-id": "t1"}
    async with start_gateway(tenants_dir=None, tenants=[short]) as (_, client):
        for text in ("one", "two"):
            await client.post(
                "/chat", headers=headers, json={"sessionId": SESSION, "message": text, "stream": False}
            )
            clock.advance(1)
        kept = (await client.get(f"/chat/{SESSION}/history", headers=headers)).json()["data"]["messages"]
        clock.advance(2 * 86400)
        expired = (await client.get(f"/chat/{SESSION}/history", headers=headers)).json()["data"]["messages"]
    assert [m["content"] for m in kept] == ["ok", "two", "ok"]  # the newest three
    assert expired == []


async def test_streaming_trace_header_in_always_mode(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    async with start_gateway(trace_ids="always") as (_, client):
        response = await client.post(
            "/chat",
            headers={"x-tenant-id": "example", "x-trace-id": "abc"},
            json={"sessionId": SESSION, "message": "hi"},
        )
    assert response.headers["x-trace-id"] == "abc"
    assert b'"traceId":"abc"' in response.content
