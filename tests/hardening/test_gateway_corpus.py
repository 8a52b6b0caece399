"""Bad input over every route of the reference gateway: no 5xx, no hang, no traceback, the platform's
envelope, and afterwards the gateway still serves and its sessions, ledger and metrics are intact.

Fixed cases cover each class of mistake (bodies, strings that are not valid Unicode, numbers JSON does not
have, nesting, headers, methods, paths, sizes); a hypothesis property sends generated JSON to ``/chat``.
Each case is bounded in time by the client's timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_harness.gateway import GatewaySettings, ManualClock, ReferenceGateway, Timeouts

TENANTS = Path(__file__).resolve().parents[2] / "scenarios" / "tenants"
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "corpus-token-000000000000000000"
SESSION = "33333333-3333-3333-3333-333333333333"
EXAMPLE = {"x-tenant-id": "example"}
CLIENT_TIMEOUT = 10.0  # a case that takes longer has hung


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ((b"x-tenant-id", b"example"),)


def chat(body: str | bytes, *headers: tuple[bytes, bytes]) -> Case:
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    name = raw[:40].decode("latin-1")
    return Case(
        f"POST /chat {name!r}",
        "POST",
        "/chat",
        raw,
        ((b"x-tenant-id", b"example"), (b"content-type", b"application/json"), *headers),
    )


def message(value: str) -> str:
    return '{"sessionId":"%s","message":%s,"stream":false}' % (SESSION, value)  # noqa: UP031 - raw JSON text


CASES: list[Case] = [
    # bodies that are not the schema
    chat(b""),
    chat(b"{"),
    chat(b"null"),
    chat(b"[]"),
    chat(b'"text"'),
    chat(b"\xff\xfe\x00garbage"),
    chat(b"[" * 10000 + b"]" * 10000),
    chat(b'{"a":' * 5000 + b"1" + b"}" * 5000),
    chat('{"sessionId":"%s","message":"x","stream":NaN}' % SESSION),  # noqa: UP031
    chat(message("Infinity")),
    chat(message("1e999")),
    chat(message(str(2**70))),
    chat(message("-0")),
    chat(message('"\\u0000"')),
    chat(message('"\\ud800"')),
    chat(message('"\\udfff\\ud800 backwards"')),
    chat('{"sessionId":"%s","message":"ok","modelId":"\\ud83d"}' % SESSION),  # noqa: UP031
    chat('{"sessionId":"%s","message":"ok","userId":"\\udc00"}' % SESSION),  # noqa: UP031
    chat('{"sessionId":"\\ud800","message":"ok"}'),
    chat(message('"' + "x" * 10001 + '"')),
    chat(message('"' + "😀" * 5001 + '"')),
    chat(message("true")),
    chat('{"sessionId":"%s","message":"ok","stream":"false"}' % SESSION),  # noqa: UP031
    chat('{"sessionId":"%s","message":"ok","modelId":""}' % SESSION),  # noqa: UP031
    # model ids that must not steer the upstream URL
    chat('{"sessionId":"%s","message":"ok","stream":false,"modelId":"../../admin"}' % SESSION),  # noqa: UP031
    chat('{"sessionId":"%s","message":"ok","stream":false,"modelId":"@cf/x?y=1#z"}' % SESSION),  # noqa: UP031
    chat('{"sessionId":"%s","message":"ok","stream":false,"modelId":"@cf/x\\r\\ny"}' % SESSION),  # noqa: UP031
    chat('{"sessionId":"%s","message":"ok","stream":false,"modelId":"%s"}' % (SESSION, "m" * 5000)),  # noqa: UP031
    chat('{"sessionId":"%s","message":"ok","stream":false,"modelId":"@cf/é/ü"}' % SESSION),  # noqa: UP031
    # headers
    chat(message('"ok"'), (b"x-request-id", "trace-é".encode())),
    chat(message('"ok"'), (b"x-request-id", b"\xff\xfe")),
    chat(message('"ok"'), (b"cf-ray", "ray-ü".encode())),
    chat(message('"ok"'), (b"x-user-id", b"\xc3\x28")),
    chat(message('"ok"'), (b"x-trace-id", b"\x80")),
    Case("tenant header not UTF-8", "GET", "/health", None, ((b"x-tenant-id", b"\xff"),)),
    Case("api key not UTF-8", "GET", "/health", None, ((b"x-api-key", b"\xc3\x28"),)),
    Case("no tenant", "GET", "/health", None, ()),
    # methods and paths
    *[Case(f"{m} /chat", m, "/chat", b"{}") for m in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS")],
    *[Case(f"{m} /health", m, "/health") for m in ("GET", "POST", "DELETE", "OPTIONS")],
    Case("history bad id", "GET", "/chat/not-a-uuid/history"),
    Case("history empty id", "GET", "/chat//history"),
    Case("history encoded surrogate", "GET", "/chat/%ED%A0%80/history"),
    Case("history NUL", "GET", "/chat/%00/history"),
    Case("history wrong method", "POST", f"/chat/{SESSION}/history", b"{}"),
    Case("delete bad id", "DELETE", "/chat/%FF%FE"),
    Case("delete empty", "DELETE", "/chat/"),
    Case("long path", "GET", "/" + "a" * 8000),
    Case("dot segments", "GET", "/chat/../health"),
    Case("unknown", "GET", "/__aigw/behaviour"),
]


@pytest_asyncio.fixture(loop_scope="module")
async def served() -> AsyncIterator[tuple[FakeGateway, ReferenceGateway, httpx.AsyncClient]]:
    account = AccountConfig(
        id=ACCOUNT,
        api_tokens=[TOKEN],
        gateways=[GatewayConfig(id=g) for g in ("example-gateway", "alpha-gateway")],
    )
    clock = ManualClock(datetime(2026, 2, 7, 12, 0, tzinfo=UTC))
    async with FakeGateway.running(FakeConfig(accounts=[account], time_scale=0.01)) as fake:
        fake.behaviour.load({"default": {"text": "fine"}})
        settings = GatewaySettings.for_upstream(
            fake.base_url,
            account_id=ACCOUNT,
            api_token=TOKEN,
            tenants_dir=TENANTS,
            clock=clock,
            timeouts=Timeouts(request_head=0.5, request_body=0.5),
        )
        async with (
            ReferenceGateway.running(settings) as gw,
            httpx.AsyncClient(base_url=gw.base_url, timeout=CLIENT_TIMEOUT) as client,
        ):
            yield fake, gw, client


def _check_refusal(case: str, response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code == 502, (case, response.status_code)
    assert b"Traceback" not in response.content, case
    content_type = response.headers.get("content-type", "")
    if content_type == "text/event-stream":
        assert response.content.rstrip().split(b"\n\n")[-1].startswith(b"event: done"), case
        return
    assert content_type == "application/json", (case, content_type, response.content[:200])
    body = json.loads(response.content)
    if response.status_code == 200:
        assert body["ok"] is True, case
    else:
        assert body["ok"] is False, case
        assert set(body["error"]) == {"code", "message"}, (case, body)


async def _send(client: httpx.AsyncClient, case: Case) -> httpx.Response:
    return await client.request(case.method, case.path, content=case.body, headers=list(case.headers))


@pytest.mark.asyncio(loop_scope="module")
async def test_bad_input_over_every_route(
    served: tuple[FakeGateway, ReferenceGateway, httpx.AsyncClient],
) -> None:
    fake, gw, client = served
    before = await client.post(
        "/chat", headers=EXAMPLE, json={"sessionId": SESSION, "message": "keep me", "stream": False}
    )
    assert before.status_code == 200
    for case in CASES:
        response = await _send(client, case)
        _check_refusal(case.name, response)

    # The gateway still serves, and what it stored is intact.
    after = await client.post("/chat", headers=EXAMPLE, json={"sessionId": SESSION, "message": "still here"})
    assert after.status_code == 200
    assert after.content.endswith(b"\n\n")
    history = (await client.get(f"/chat/{SESSION}/history", headers=EXAMPLE)).json()
    contents = [m["content"] for m in history["data"]["messages"]]
    assert contents[:2] == ["keep me", "fine"]
    assert contents[-2:] == ["still here", "fine"]
    assert all(isinstance(c, str) for c in contents)
    view = gw.ledger.view()
    assert view.in_flight == {}
    assert view.write_failures == 0
    assert all(r.status != "pending" and r.http_status is not None for r in gw.metrics.records)
    assert not [r.error_detail for r in gw.metrics.records if "internal error" in (r.error_detail or "")]
    # No model id steered a call away from the model path: every failed attempt is a model problem the
    # upstream (or the gateway) named, never a missing gateway reached by a rewritten path.
    attempts = [a for r in gw.metrics.records for a in r.attempts]
    assert all(a.error_class in (None, "model") for a in attempts), {a.error_class for a in attempts}
    assert all(r.path.startswith(f"/v1/{ACCOUNT}/example-gateway/workers-ai/") for r in fake.store.records())


RAW_CASES = [
    ("not HTTP", b"GARBAGE\r\n\r\n", 400),
    ("bad request line", b"GET /health HTTP/9.9 extra\r\nhost: x\r\n\r\n", 400),
    ("bad header name", b"GET /health HTTP/1.1\r\nho st: x\r\n\r\n", 400),
    ("head never ends", b"GET /health HTTP/1.1\r\nhost: x\r\nx-tenant-id: example\r\n", 408),
    (
        "body never ends",
        b'POST /chat HTTP/1.1\r\nhost: x\r\nx-tenant-id: example\r\ncontent-length: 100\r\n\r\n{"se',
        408,
    ),
    ("head too large", b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ("HTTP/1.1 without host", b"GET /health HTTP/1.1\r\nx-tenant-id: example\r\n\r\n", 400),
]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("name", "raw", "status"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
async def test_http_layer_refusals_use_the_platforms_envelope(
    served: tuple[FakeGateway, ReferenceGateway, httpx.AsyncClient], name: str, raw: bytes, status: int
) -> None:
    _, gw, client = served
    host, port = gw.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        async with asyncio.timeout(CLIENT_TIMEOUT):
            answer = await reader.read()  # the server answers and closes: no hang
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), (name, head[:80])
    assert b"content-type: application/json" in head.lower(), name
    envelope = json.loads(body)
    assert envelope["ok"] is False, name
    assert set(envelope["error"]) == {"code", "message"}, name
    assert (await client.get("/health", headers=EXAMPLE)).status_code == 200  # still serving


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
PAYLOADS = (
    st.fixed_dictionaries(
        {},
        optional={
            "sessionId": st.just(SESSION) | st.text(max_size=40),
            "message": st.text(max_size=50) | JSON_VALUES,
            "modelId": st.text(max_size=30) | JSON_VALUES,
            "userId": st.text(max_size=10) | JSON_VALUES,
            "stream": st.booleans() | JSON_VALUES,
        },
    )
    | JSON_VALUES
)


@pytest.mark.asyncio(loop_scope="module")
async def test_generated_chat_bodies(served: tuple[FakeGateway, ReferenceGateway, httpx.AsyncClient]) -> None:
    _, gw, client = served
    seen: list[Any] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(PAYLOADS)
    def collect(payload: Any) -> None:
        seen.append(payload)

    collect()
    for payload in seen:
        raw = json.dumps(payload, ensure_ascii=True).encode()
        response = await client.post(
            "/chat", headers={**EXAMPLE, "content-type": "application/json"}, content=raw
        )
        _check_refusal(repr(payload)[:80], response)
    assert gw.ledger.view().in_flight == {}
