"""Every row of Cloudflare's error tables, the three body shapes, authentication and routing errors."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from fake_helpers import ACCOUNT, AUTH_GATEWAY, GATEWAY, NATIVE, TOKEN, api_path, auth, gateway_path

from aigw_fakes.server import FakeGateway
from aigw_fakes.wire.errors import GATEWAY_ERRORS, WORKERS_AI_ERRORS, ErrorRow

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

UUID7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


async def scripted(client: httpx.AsyncClient, error: object, stream: bool = False) -> httpx.Response:
    headers = {**auth(), "x-aigw-behaviour": json.dumps({"error": error})}
    return await client.post(
        gateway_path(f"workers-ai/{NATIVE}"), json={"prompt": "x", "stream": stream}, headers=headers
    )


def message_pattern(row: ErrorRow) -> str:
    filled = {"model": NATIVE, "provider": "workers-ai", "path": "/"}
    text = re.escape(row.message)
    for name, value in filled.items():
        text = text.replace(re.escape("{" + name + "}"), re.escape(value))
    return text.replace(re.escape("{detail}"), UUID)


@pytest.mark.parametrize("row", list(WORKERS_AI_ERRORS.values()), ids=lambda r: f"{r.code}-{r.name}")
async def test_workers_ai_error_rows(client: httpx.AsyncClient, row: ErrorRow) -> None:
    response = await scripted(client, row.code)
    assert response.status_code == row.status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors", "success", "result", "messages"]
    assert (body["success"], body["result"], body["messages"]) == (False, {}, [])
    [error] = body["errors"]
    assert list(error) == ["message", "code"]
    assert error["code"] == row.code
    assert re.fullmatch(message_pattern(row), error["message"]), error["message"]
    assert re.fullmatch(UUID7, response.headers["cf-aig-log-id"])


@pytest.mark.parametrize("row", list(GATEWAY_ERRORS.values()), ids=lambda r: f"{r.code}-{r.name}")
async def test_gateway_error_rows(client: httpx.AsyncClient, row: ErrorRow) -> None:
    response = await scripted(client, row.name)
    assert response.status_code == row.status
    body = response.json()
    message = body["message"]
    assert re.fullmatch(message_pattern(row), message), message
    assert body == {
        "success": False,
        "result": [],
        "messages": [],
        "error": [{"code": row.code, "message": message}],
        "name": "AiGatewayError",
        "httpCode": row.status,
        "internalCode": row.code,
        "message": message,
        "description": message,
    }


async def test_error_before_a_stream_is_json_not_sse(client: httpx.AsyncClient) -> None:
    response = await scripted(client, "out_of_capacity", stream=True)
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"] == [
        {"message": "Capacity temporarily exceeded, please try again.", "code": 3040}
    ]
    assert "retry-after" not in response.headers


async def test_overridden_status_message_and_raw_provider_body(client: httpx.AsyncClient) -> None:
    response = await scripted(client, {"code": 3040, "status": 503, "message": "busy"})
    assert response.status_code == 503
    assert response.json()["errors"] == [{"message": "busy", "code": 3040}]
    raw = {"error": {"message": "bad key", "type": "invalid_request_error"}}
    response = await scripted(client, {"status": 401, "body": raw})
    assert response.status_code == 401
    assert response.json() == raw


async def test_scripted_error_is_recorded_with_cost_zero(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    response = await scripted(client, 3040)
    [record] = fake.store.records()
    assert record.id == response.headers["cf-aig-log-id"]
    assert (record.status_code, record.success, record.cost, record.error_code) == (429, False, 0.0, 3040)
    assert record.tokens_in is None


async def test_api_host_authentication_error_body(client: httpx.AsyncClient) -> None:
    for headers in ({}, auth("wrong-token"), {"authorization": TOKEN}):
        response = await client.post(api_path(f"run/{NATIVE}"), json={"prompt": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.content == (
            b'{"result":null,"success":false,"errors":[{"code":10000,"message":"Authentication error"}],'
            b'"messages":[]}'
        )


async def test_api_host_token_of_another_account_is_refused(client: httpx.AsyncClient) -> None:
    path = f"/client/v4/accounts/{'f' * 32}/ai/run/{NATIVE}"
    response = await client.post(path, json={"prompt": "x"}, headers=auth())
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == 10000


GATEWAY_401 = {
    "success": False,
    "result": [],
    "messages": [],
    "error": [{"code": 2009, "message": "Unauthorized"}],
    "name": "AiGatewayError",
    "httpCode": 401,
    "internalCode": 2009,
    "message": "Unauthorized",
    "description": "Unauthorized",
}


async def test_gateway_host_bad_provider_token_is_a_gateway_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        gateway_path(f"workers-ai/{NATIVE}"), json={"prompt": "x"}, headers=auth("nope")
    )
    assert response.status_code == 401
    assert response.json() == GATEWAY_401
    assert "cf-aig-log-id" in response.headers


async def test_authenticated_gateway_needs_cf_aig_authorization(client: httpx.AsyncClient) -> None:
    path = gateway_path(f"workers-ai/{NATIVE}", AUTH_GATEWAY)
    missing = await client.post(path, json={"prompt": "x"}, headers=auth())
    assert missing.status_code == 401
    assert missing.json() == GATEWAY_401
    wrong = await client.post(
        path, json={"prompt": "x"}, headers={**auth(), "cf-aig-authorization": "Bearer no"}
    )
    assert wrong.status_code == 401
    good = {**auth(), "cf-aig-authorization": f"Bearer {TOKEN}"}
    assert (await client.post(path, json={"prompt": "x"}, headers=good)).status_code == 200
    # The gateway token alone also serves as the Workers AI credential.
    only_gateway = {"cf-aig-authorization": f"Bearer {TOKEN}"}
    assert (await client.post(path, json={"prompt": "x"}, headers=only_gateway)).status_code == 200


async def test_unauthenticated_gateway_ignores_cf_aig_authorization(client: httpx.AsyncClient) -> None:
    headers = {**auth(), "cf-aig-authorization": "Bearer anything"}
    response = await client.post(gateway_path(f"workers-ai/{NATIVE}"), json={"prompt": "x"}, headers=headers)
    assert response.status_code == 200


async def test_unknown_gateway_is_2001_and_default_is_created_with_authentication(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        gateway_path(f"workers-ai/{NATIVE}", "nope"), json={"prompt": "x"}, headers=auth()
    )
    assert response.status_code == 400
    assert response.json()["error"] == [{"code": 2001, "message": "gateway does not exist"}]
    default = gateway_path(f"workers-ai/{NATIVE}", "default")
    assert (await client.post(default, json={"prompt": "x"}, headers=auth())).status_code == 401
    authorized = {**auth(), "cf-aig-authorization": f"Bearer {TOKEN}"}
    assert (await client.post(default, json={"prompt": "x"}, headers=authorized)).status_code == 200


async def test_unknown_model(client: httpx.AsyncClient) -> None:
    response = await client.post(
        gateway_path("workers-ai/@cf/meta/no-such-model"), json={"prompt": "x"}, headers=auth()
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"message": "No such model @cf/meta/no-such-model or task", "code": 5007}],
        "success": False,
        "result": {},
        "messages": [],
    }
    body = {"model": "@cf/x/y", "messages": [{"role": "user", "content": "x"}]}
    response = await client.post(api_path("v1/chat/completions"), json=body, headers=auth())
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 5007


async def test_unknown_model_on_compat_is_model_not_found(client: httpx.AsyncClient) -> None:
    body = {"model": "workers-ai/@cf/x/y", "messages": [{"role": "user", "content": "x"}]}
    response = await client.post(gateway_path("compat/chat/completions"), json=body, headers=auth())
    assert response.status_code == 404
    assert response.json()["error"] == [{"code": 7003, "message": "Model not found: workers-ai/@cf/x/y"}]


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    path = f"/client/v4/accounts/{ACCOUNT}/ai/nothing-here"
    response = await client.post(path, json={})
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "errors": [
            {
                "code": 7003,
                "message": f"Could not route to {path}, perhaps your object identifier is invalid?",
            },
            {"code": 7000, "message": "No route for that URI"},
        ],
        "messages": [],
        "result": None,
    }
    response = await client.get(gateway_path(f"workers-ai/{NATIVE}"))
    assert response.status_code == 405
    assert response.json()["errors"] == [{"code": 7001, "message": "Method not allowed"}]
    assert (await client.delete(f"/v1/{ACCOUNT}/{GATEWAY}/elsewhere")).status_code == 400
