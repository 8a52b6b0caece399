"""The upstream client on its own, over ``httpx.MockTransport``: request shape, metadata limit, error
bodies of both Cloudflare shapes, and a JSON answer to a stream request."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.gateway.upstream import (
    METADATA_LIMIT,
    ChatMessage,
    ErrorClass,
    UpstreamClient,
    UpstreamError,
    gateway_metadata,
)

MESSAGES = [ChatMessage("user", "hi")]


def client_for(handler: httpx.MockTransport, **kwargs: object) -> UpstreamClient:
    return UpstreamClient("https://gw.example", account_id=None, api_token="tok", transport=handler, **kwargs)  # type: ignore[arg-type]


@given(
    st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(st.text(max_size=5), st.integers(), st.none()))
)
def test_metadata_always_keeps_tenant_id_within_the_limit(entries: dict[str, object]) -> None:
    metadata, dropped = gateway_metadata(entries, "tenant-1")
    assert metadata["tenantId"] == "tenant-1"
    assert len(metadata) <= METADATA_LIMIT
    assert all(isinstance(v, str) and v for v in metadata.values())
    kept_in_order = [k for k in entries if k in metadata and k != "tenantId"]
    assert [k for k in metadata if k != "tenantId"] == kept_in_order
    assert set(dropped).isdisjoint(metadata)


def test_metadata_keeps_the_platforms_order() -> None:
    assert list(gateway_metadata({"traceId": "t", "sessionId": "s", "route": "/chat"}, "x")[0]) == [
        "traceId",
        "sessionId",
        "route",
        "tenantId",
    ]
    six = {k: k for k in "abcdef"}
    metadata, dropped = gateway_metadata(six, "x")
    assert list(metadata) == ["a", "b", "c", "d", "tenantId"]
    assert dropped == ["e", "f"]


async def test_stream_request_shape_and_json_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"result": {"response": "whole", "usage": {"prompt_tokens": 3, "completion_tokens": 1}}}
        return httpx.Response(200, json=body, headers={"cf-aig-log-id": "LOG1"})

    upstream = UpstreamClient(
        "https://gw.example/",
        account_id="acct",
        api_token="tok",
        gateway_token="gtok",
        transport=httpx.MockTransport(handler),
    )
    async with upstream.stream(
        account_id="ignored",
        gateway_id="gw",
        model="@cf/m/x",
        messages=MESSAGES,
        metadata={"tenantId": "t"},
        event_id="e1",
    ) as stream:
        frames = [frame async for frame in stream.frames()]
    await upstream.aclose()
    (request,) = seen
    assert str(request.url) == "https://gw.example/v1/acct/gw/workers-ai/@cf/m/x"
    assert json.loads(request.content) == {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    assert request.headers["authorization"] == "Bearer tok"
    assert request.headers["cf-aig-authorization"] == "Bearer gtok"
    assert request.headers["cf-aig-event-id"] == "e1"
    assert request.headers["cf-aig-metadata"] == '{"tenantId":"t"}'
    assert [f.token for f in frames] == ["whole", ""]
    assert frames[-1].done
    assert stream.log_id == "LOG1"
    assert "tok" not in repr(upstream)


@pytest.mark.parametrize(
    ("status", "body", "error_class", "code", "message"),
    [
        (
            401,
            {
                "success": False,
                "result": [],
                "messages": [],
                "error": [{"code": 2009, "message": "Unauthorized"}],
                "name": "AiGatewayError",
                "httpCode": 401,
                "internalCode": 2009,
                "message": "Unauthorized",
            },
            ErrorClass.AUTH,
            2009,
            "Unauthorized",
        ),
        (
            429,
            {"success": False, "errors": [{"code": 3040, "message": "Capacity"}]},
            ErrorClass.RATE_LIMITED,
            3040,
            "Capacity",
        ),
        (
            400,
            {"errors": [{"code": 5007, "message": "No such model"}], "success": False},
            ErrorClass.MODEL,
            5007,
            "No such model",
        ),
        (
            400,
            {"errors": [{"code": 8001, "message": "Invalid input"}], "success": False},
            ErrorClass.INPUT,
            8001,
            "Invalid input",
        ),
        (
            408,
            {"errors": [{"code": 3007, "message": "Request timeout"}]},
            ErrorClass.TIMEOUT,
            3007,
            "Request timeout",
        ),
        (503, "upstream connect error", ErrorClass.SERVER, None, "upstream connect error"),
    ],
)
async def test_error_bodies_become_typed_errors(
    status: int, body: object, error_class: ErrorClass, code: int | None, message: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"cf-aig-log-id": "LOG2", "cf-ai-req-id": "REQ"}
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    upstream = client_for(httpx.MockTransport(handler))
    with pytest.raises(UpstreamError) as raised:
        await upstream.complete(
            account_id="a", gateway_id="g", model="@cf/m", messages=MESSAGES, metadata={}, event_id="e"
        )
    await upstream.aclose()
    error = raised.value
    assert (error.error_class, error.status, error.code, error.message) == (
        error_class,
        status,
        code,
        message,
    )
    assert (error.log_id, error.request_id) == ("LOG2", "REQ")


async def test_connection_failure_is_a_connection_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    upstream = client_for(httpx.MockTransport(handler))
    with pytest.raises(UpstreamError) as raised:
        await upstream.complete(
            account_id="a", gateway_id="g", model="@cf/m", messages=MESSAGES, metadata={}, event_id="e"
        )
    await upstream.aclose()
    assert raised.value.error_class is ErrorClass.CONNECTION
    assert "gw.example" not in str(raised.value)
