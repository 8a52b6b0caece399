"""The upstream client on its own, over ``httpx.MockTransport``: request shape, metadata limit, error
bodies of both Cloudflare shapes, and a JSON answer to a stream request."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.gateway.tokens import Frame
from aigw_harness.gateway.upstream import (
    METADATA_LIMIT,
    AttemptLimits,
    ChatMessage,
    ErrorClass,
    UpstreamClient,
    UpstreamError,
    UpstreamRequest,
    classify_error,
    gateway_metadata,
    retry_after_seconds,
)

MESSAGES = [ChatMessage("user", "hi")]


def upstream_call(*, stream: bool = False, metadata: dict[str, str] | None = None) -> UpstreamRequest:
    return UpstreamRequest("ignored", "gw", "@cf/m/x", MESSAGES, metadata or {}, "e1", stream)


async def read_all(upstream: UpstreamClient, call: UpstreamRequest) -> list[Frame]:
    async with upstream.open(call, AttemptLimits()) as answer:
        return [frame async for batch in answer.batches() for frame in batch]


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
    async with upstream.open(
        upstream_call(stream=True, metadata={"tenantId": "t"}), AttemptLimits()
    ) as answer:
        frames = [frame async for batch in answer.batches() for frame in batch]
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
    assert answer.log_id == "LOG1"
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
        await read_all(upstream, upstream_call())
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
        await read_all(upstream, upstream_call())
    await upstream.aclose()
    assert raised.value.error_class is ErrorClass.CONNECTION
    assert "gw.example" not in str(raised.value)


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (400, 8007, "AiError: AiError: Input prompt contains NSFW content (x)", ErrorClass.CONTENT_FILTER),
        (400, None, "content_filter: the output was flagged", ErrorClass.CONTENT_FILTER),
        (400, None, "This model's maximum context length is 8192 tokens", ErrorClass.CONTEXT_LENGTH),
        (413, 3006, "Request is too large", ErrorClass.INPUT),
        (400, 5007, "No such model @cf/x or task", ErrorClass.MODEL),
        (503, None, "flagged upstream outage", ErrorClass.SERVER),
    ],
)
def test_refusals_are_classified_by_cause(
    status: int, code: int | None, message: str, expected: ErrorClass
) -> None:
    assert classify_error(status, code, message) is expected


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("3", 0.0) == 3.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:00:10 GMT", 4.0) == 6.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:00:10 GMT", 40.0) == 0.0
    for invalid in (None, "", "soon", "nan", "inf", "Thu, 01 Jan 1970 00:00:10"):
        assert retry_after_seconds(invalid, 0.0) is None


async def test_retry_after_reaches_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"errors": [{"code": 3040, "message": "busy"}]}, headers={"retry-after": "2"}
        )

    upstream = client_for(httpx.MockTransport(handler))
    with pytest.raises(UpstreamError) as raised:
        await read_all(upstream, upstream_call())
    await upstream.aclose()
    assert (raised.value.error_class, raised.value.retry_after) == (ErrorClass.RATE_LIMITED, 2.0)


def test_a_model_id_cannot_change_where_the_call_goes() -> None:
    upstream = UpstreamClient("https://gw.example", account_id=None, api_token=None)
    assert upstream.url("a", "g", "@cf/x?y=1#z") == "https://gw.example/v1/a/g/workers-ai/@cf/x%3Fy%3D1%23z"
    assert upstream.url("a", "g", "@cf/é\r\n") == "https://gw.example/v1/a/g/workers-ai/@cf/%C3%A9%0D%0A"
    for bad in ("../../admin", "@cf/./x", "@cf//x", ""):
        with pytest.raises(UpstreamError) as raised:
            upstream.url("a", "g", bad)
        assert raised.value.error_class is ErrorClass.MODEL
