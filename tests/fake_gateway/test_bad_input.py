"""Bad requests get Cloudflare's status and body, never a traceback, and the server keeps serving."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fake_helpers import NATIVE, api_path, auth, gateway_path, make_config, serving

from aigw_fakes.server import FakeGateway

RUN = gateway_path(f"workers-ai/{NATIVE}")
INVALID = r"AiError: AiError: Invalid input \([0-9a-f-]{36}\)"


async def still_serving(client: httpx.AsyncClient) -> None:
    response = await client.post(RUN, json={"prompt": "still there?"}, headers=auth())
    assert response.status_code == 200


def assert_invalid_input(response: httpx.Response) -> None:
    assert response.status_code == 400
    body = response.json()
    assert (body["success"], body["result"], body["messages"]) == (False, {}, [])
    [error] = body["errors"]
    assert error["code"] == 8001
    assert re.fullmatch(INVALID, error["message"]), error["message"]


@pytest.mark.parametrize(
    "content",
    [b"{", b"not json", b'{"prompt": "x",}', b"[1, 2]", b'"just a string"', b"\xff\xfe"],
    ids=["truncated", "text", "trailing-comma", "array", "string", "binary"],
)
async def test_malformed_json(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(RUN, content=content, headers={**auth(), "content-type": "application/json"})
    assert_invalid_input(response)
    await still_serving(client)


async def test_empty_body_is_an_incomplete_request(client: httpx.AsyncClient) -> None:
    response = await client.post(RUN, content=b"", headers=auth())
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"message": "Request is missing headers or body: body", "code": 3003}
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": "x", "messages": [{"role": "user", "content": "x"}]},
        {"prompt": ""},
        {"messages": []},
        {"messages": "hello"},
        {"messages": [{"content": "no role"}]},
        {"prompt": "x", "stream": "yes"},
    ],
    ids=[
        "neither",
        "both",
        "empty-prompt",
        "no-messages",
        "messages-not-list",
        "message-without-role",
        "stream-str",
    ],
)
async def test_missing_both_or_malformed_input(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    assert_invalid_input(await client.post(RUN, json=body, headers=auth()))
    await still_serving(client)


async def test_openai_body_without_model_or_messages(client: httpx.AsyncClient) -> None:
    path = api_path("v1/chat/completions")
    assert_invalid_input(
        await client.post(path, json={"messages": [{"role": "user", "content": "x"}]}, headers=auth())
    )
    assert_invalid_input(await client.post(path, json={"model": NATIVE, "prompt": "x"}, headers=auth()))


async def test_json_with_another_content_type_is_accepted(client: httpx.AsyncClient) -> None:
    # curl -d sends application/x-www-form-urlencoded; Workers AI reads the JSON anyway.
    headers = {**auth(), "content-type": "application/x-www-form-urlencoded"}
    response = await client.post(RUN, content=b'{"prompt":"x"}', headers=headers)
    assert response.status_code == 200


async def test_multipart_is_invalid_input(client: httpx.AsyncClient) -> None:
    response = await client.post(RUN, files={"prompt": ("p.txt", b"x")}, headers=auth())
    assert_invalid_input(response)


async def test_oversized_body_is_413_and_the_server_keeps_serving() -> None:
    async with serving(make_config(max_body_bytes=1000)) as (_, http):
        response = await http.post(RUN, json={"prompt": "x" * 2000}, headers=auth())
        assert response.status_code == 413
        assert response.json()["errors"] == [{"message": "Request is too large", "code": 3006}]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"x" * 100

        response = await http.post(RUN, content=chunks(), headers=auth())
        assert response.status_code == 413
        await still_serving(http)


async def test_invalid_metadata_is_ignored_by_default(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    for value in ("not json", "[1,2]", '"text"'):
        headers = {**auth(), "cf-aig-metadata": value}
        assert (await client.post(RUN, json={"prompt": "x"}, headers=headers)).status_code == 200
    assert [r.metadata for r in fake.store.records()] == [None, None, None]


async def test_invalid_metadata_can_be_refused() -> None:
    config = make_config()
    config.fidelity.invalid_metadata = "reject"
    async with serving(config) as (_, http):
        response = await http.post(
            RUN, json={"prompt": "x"}, headers={**auth(), "cf-aig-metadata": "not json"}
        )
        assert response.status_code == 400
        assert response.json()["error"] == [{"code": 2002, "message": "cf-aig-metadata: not valid JSON"}]


async def test_garbage_paths_and_methods(client: httpx.AsyncClient) -> None:
    for method, path in [("GET", "/"), ("PATCH", "/v1"), ("POST", "/v1/a/b/c/d"), ("PUT", "/__aigw/reset")]:
        response = await client.request(method, path)
        assert response.status_code in (400, 405)
        assert response.json()["success"] is False
    await still_serving(client)


async def test_lone_surrogates_in_input_are_answered(client: httpx.AsyncClient) -> None:
    content = b'{"prompt": "\\ud800 broken"}'
    response = await client.post(RUN, content=content, headers=auth())
    assert response.status_code == 200
    bad_text = {**auth(), "x-aigw-behaviour": '{"text": "\\udc00"}'}
    response = await client.post(RUN, json={"prompt": "x"}, headers=bad_text)
    assert response.status_code == 400
    assert "lone surrogate" in response.json()["errors"][0]["message"]
