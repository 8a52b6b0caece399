"""A bad-input corpus over every route of the fake, and over the HTTP layer beneath them.

For each case: no 5xx, no hang (every case is bounded in time), no traceback in the body or in the fake's
log, a refusal in one of Cloudflare's envelopes, memory bounded; and after the corpus the fake still
answers a valid request, with the request store and the logs of earlier requests unchanged.

Fixed cases cover each class of bad input (malformed, non-finite or huge numbers, deep nesting, invalid
Unicode, oversized bodies and heads, hostile headers and query strings, stalled heads and bodies, requests
the HTTP parser refuses); hypothesis adds arbitrary JSON bodies for the routes that read JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import resource
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigw_fakes.app import FakeApp
from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_fakes.state.fake import FakeState
from aigw_fakes.state.options import FeatureOptions
from tests.fake_gateway.fake_helpers import fake_in_thread

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "corpus-token"
GATEWAY = "gw-corpus"  # the gateway the corpus names
KEEP = "gw-keep"  # a gateway the corpus never names: its request and log must survive unchanged
NATIVE = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"  # llama-3.1-8b-instruct is retired in the catalogue
CASE_SECONDS = 20.0  # a case that takes longer has hung
RSS_GROWTH_LIMIT_KB = 400 * 1024


def make_config() -> FakeConfig:
    account = AccountConfig(
        id=ACCOUNT, api_tokens=[TOKEN], gateways=[GatewayConfig(id=GATEWAY), GatewayConfig(id=KEEP)]
    )
    return FakeConfig(
        accounts=[account],
        time_scale=0.001,
        head_timeout_s=0.5,
        body_timeout_s=0.5,
        idle_timeout_s=2.0,
    )


def auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


# --- the routes -------------------------------------------------------------------------------------------

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)(\?)?")


def concrete_path(pattern: str, log_id: str) -> str:
    """A path that matches a route's pattern, naming the corpus gateway and a real log of it."""
    values = {
        "account": ACCOUNT,
        "gateway": GATEWAY,
        "model": NATIVE,
        "log": log_id,
        "provider": "workers-ai",
        "run": "",
    }
    path = _GROUP.sub(lambda m: values[m.group(1)], pattern)
    return path.removesuffix("/?")


def all_routes() -> list[tuple[str, str, str]]:
    """(method, pattern, name) for every route of a fake, read from its router."""
    app = FakeApp(FakeState(make_config()))
    return [
        (method, route.pattern.pattern, route.name)
        for route in app.parts.router.routes
        for method in sorted(route.methods)
    ]


def test_concrete_paths_match_their_routes() -> None:
    for _, pattern, name in all_routes():
        assert re.fullmatch(pattern, concrete_path(pattern, "01abc")), name


# --- the corpus -------------------------------------------------------------------------------------------

DEEP = 10_000

BAD_BODIES: dict[str, bytes] = {
    "empty": b"",
    "truncated": b'{"prompt": "x"',
    "not-json": b"hello there",
    "nan": b'{"prompt": "x", "max_tokens": NaN, "default": {"ttfb_ms": NaN}}',
    "infinity": b'{"prompt": "x", "temperature": Infinity, "default": {"ttfb_ms": Infinity}}',
    "minus-infinity": b'{"prompt": "x", "temperature": -Infinity}',
    "overflowing-float": b'{"prompt": "x", "temperature": 1e400, "default": {"ttfb_ms": 1e400}}',
    "huge-integer": b'{"prompt": "x", "max_tokens": 18446744073709551617, "seed": 18446744073709551617}',
    "integer-10k-digits": b'{"prompt": "x", "max_tokens": ' + b"9" * 10_000 + b"}",
    "deep-array": b"[" * DEEP + b"]" * DEEP,
    "deep-object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep-messages": b'{"messages": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "lone-surrogate": b'{"prompt": "hi \\ud800", "messages": [{"role": "user", "content": "\\udfff"}]}',
    "surrogate-key": b'{"\\ud800": 1, "prompt": "x"}',
    "invalid-utf8": b'{"prompt": "\xff\xfe\xc3"}',
    "nul": b'{"prompt": "a\\u0000b"}\x00',
    "array": b"[1, 2, 3]",
    "string": b'"just a string"',
    "number": b"12345678901234567890123",
    "wrong-types": b'{"prompt": 5, "messages": {"role": 1}, "stream": "yes", "max_tokens": "many"}',
    "yaml-tags": b"default: !!python/object/apply:os.system ['true']\n",
    "yaml-alias-bomb-small": b'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\nd: [*c,*c]\n',
    "yaml-inf": b"default:\n  ttfb_ms: .inf\n  tokens: .nan\n",
    "yaml-huge-int": b"seed: 99999999999999999999999999\ndefault:\n  tokens: 1e30\n",
    "yaml-nul": b'default:\n  text: "a\x00b"\n',
    "yaml-deep": b"a: " + b"[" * 2_000 + b"]" * 2_000 + b"\n",
    "behaviour-huge-delay": b'{"default": {"ttfb_ms": 1e300, "token_delay_ms": 1e300}}',
    "behaviour-huge-tokens": b'{"default": {"tokens": 1000000000000}}',
    "behaviour-bad-error-body": b'{"default": {"error": {"status": 500, "body": {"x": 1e400}}}}',
    "features-infinite": b'{"log_visibility_delay": Infinity, "spend_visibility_lag": 1e400}',
    "features-huge": b'{"cache_max_entries": 18446744073709551617}',
    "patch-nan": b'{"feedback": NaN, "score": Infinity}',
    "gateway-settings-huge": b'{"id": "x", "cache_ttl": 1e400, "rate_limiting_limit": 18446744073709551617}',
    "universal-nan": b'[{"provider": "workers-ai", "endpoint": "' + NATIVE.encode() + b'", "headers": {},'
    b' "query": {"prompt": "x", "max_tokens": NaN}, "config": {"requestTimeout": Infinity}}]',
}

BAD_HEADERS: dict[str, dict[str, str | bytes]] = {
    "behaviour-nan": {"x-aigw-behaviour": '{"ttfb_ms": NaN}'},
    "behaviour-infinity-yaml": {"x-aigw-behaviour": "ttfb_ms: .inf"},
    "behaviour-huge-int": {"x-aigw-behaviour": '{"tokens": 18446744073709551617}'},
    "behaviour-deep": {"x-aigw-behaviour": "[" * 5_000 + "]" * 5_000},
    "behaviour-surrogate": {"x-aigw-behaviour": '{"text": "\\ud800"}'},
    "behaviour-yaml-tag": {"x-aigw-behaviour": "!!python/name:os.system"},
    "behaviour-not-latin": {"x-aigw-behaviour": "text: caf\xe9 \u00ff".encode("latin-1")},
    "metadata-nan": {"cf-aig-metadata": '{"user": NaN, "n": 1e400}'},
    "metadata-deep": {"cf-aig-metadata": '{"a":' * 3_000 + "1" + "}" * 3_000},
    "custom-cost-infinite": {"cf-aig-custom-cost": '{"total_cost": Infinity}'},
    "timeouts-absurd": {
        "cf-aig-request-timeout": "1e400",
        "cf-aig-max-attempts": "18446744073709551617",
        "cf-aig-retry-delay": "NaN",
        "cf-aig-cache-ttl": "-99999999999999999999999",
    },
    "non-ascii-values": {"x-request-id": "é✓".encode(), "cf-aig-event-id": b"\xff\xfe"},
    "long-header": {"x-filler": "a" * 20_000},
    "bad-authorization": {"authorization": ("Bearer " + "\u00e9" * 50).encode()},
}

BAD_QUERIES: dict[str, str] = {
    "filters-nan": "filters=" + '[{"key":"cost","operator":"gt","value":[NaN]}]',
    "filters-deep": "filters=" + "[" * 3_000 + "]" * 3_000,
    "pages-absurd": "page=1e400&per_page=-99999999999999999999999&order_by=%ff",
    "bodies-and-junk": "bodies=%ff%fe&meta_info=" + "x" * 5_000,
}


@dataclass
class Case:
    name: str
    method: str
    path: str
    headers: dict[str, str | bytes]
    content: bytes


def corpus(log_id: str) -> list[Case]:
    cases: list[Case] = []
    for method, pattern, route in all_routes():
        path = concrete_path(pattern, log_id)
        if route == "control reset":
            continue  # it empties the store by design; it has its own test below
        for name, content in BAD_BODIES.items():
            headers: dict[str, str | bytes] = {**auth(), "content-type": "application/json"}
            cases.append(Case(f"{route} body {name}", method, path, headers, content))
        for name, extra in BAD_HEADERS.items():
            content = b'{"prompt": "x"}'
            cases.append(Case(f"{route} headers {name}", method, path, {**auth(), **extra}, content))
        for name, query in BAD_QUERIES.items():
            cases.append(Case(f"{route} query {name}", method, f"{path}?{query}", auth(), b""))
    return cases


# --- what every answer must be ----------------------------------------------------------------------------


def assert_well_refused(case: str, status: int, body: bytes) -> None:
    assert status < 500, f"{case}: {status} {body[:300]!r}"
    assert b"Traceback" not in body, f"{case}: a traceback in the body"
    if status < 400:
        return
    try:
        document = json.loads(body)
    except ValueError:
        pytest.fail(f"{case}: {status} with a body that is not JSON: {body[:300]!r}")
    assert isinstance(document, dict), f"{case}: {document!r}"
    assert document.get("success") is False, f"{case}: {document!r}"
    errors = document.get("errors") or document.get("error")
    assert isinstance(errors, list), f"{case}: no errors in {document!r}"
    assert errors, f"{case}: no errors in {document!r}"
    for error in errors:
        assert isinstance(error.get("code"), int), case
        assert isinstance(error.get("message"), str), case


def assert_valid_json(case: str, body: bytes) -> None:
    """What the fake sends as JSON is JSON (no NaN, no Infinity)."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{case}: {name} in the answer")

    json.loads(body, parse_constant=refuse)


def max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- the tests --------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[FakeGateway, httpx.AsyncClient]]:
    async with (
        FakeGateway.running(make_config()) as fake,
        httpx.AsyncClient(base_url=fake.base_url, timeout=CASE_SECONDS) as http,
    ):
        yield fake, http


async def valid_call(http: httpx.AsyncClient, gateway: str) -> str:
    path = f"/v1/{ACCOUNT}/{gateway}/workers-ai/{NATIVE}"
    response = await http.post(path, json={"prompt": "a valid request"}, headers=auth())
    assert response.status_code == 200, response.text
    return response.headers["cf-aig-log-id"]


async def stored(http: httpx.AsyncClient, log_id: str) -> tuple[Any, Any]:
    """The store's record and the Logs API's log for ``log_id`` on the kept gateway."""
    requests = (await http.get("/__aigw/requests")).json()["result"]
    [record] = [r for r in requests if r["id"] == log_id]
    path = f"/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways/{KEEP}/logs/{log_id}"
    log = await http.get(path, headers=auth())
    assert log.status_code == 200, log.text
    return record, log.json()["result"]


async def test_every_route_refuses_bad_input_well_and_keeps_serving(
    served: tuple[FakeGateway, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, http = served
    kept = await valid_call(http, KEEP)
    before = await stored(http, kept)
    target_log = await valid_call(http, GATEWAY)
    cases = corpus(target_log)
    assert len(cases) > 1000  # every route, every class
    rss_before = max_rss_kb()
    with caplog.at_level(logging.WARNING):
        for case in cases:
            async with asyncio.timeout(CASE_SECONDS):
                response = await http.request(
                    case.method, case.path, headers=case.headers, content=case.content
                )
            assert_well_refused(case.name, response.status_code, response.content)
            if response.headers.get("content-type", "").startswith("application/json"):
                assert_valid_json(case.name, response.content)
    assert max_rss_kb() - rss_before < RSS_GROWTH_LIMIT_KB
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == []
    # Anything a case loaded that was valid is put back, then the fake must still serve and remember.
    assert (await http.put("/__aigw/behaviour", content=b"{}")).status_code == 200
    defaults = FeatureOptions().model_dump()
    assert (await http.put("/__aigw/features", json=defaults)).status_code == 200
    assert (await http.get("/__aigw/behaviour")).json()["result"]["document"] == {}
    await valid_call(http, KEEP)
    assert await stored(http, kept) == before


async def test_a_ten_megabyte_behaviour_is_refused_at_once_and_the_fake_keeps_serving(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    kept = await valid_call(http, KEEP)
    huge = b"default:\n  text: '" + b"x" * (10 * 1024 * 1024) + b"'\n"
    async with asyncio.timeout(CASE_SECONDS):
        response = await http.put("/__aigw/behaviour", content=huge)
    assert response.status_code == 413
    assert_well_refused("10 MB behaviour", response.status_code, response.content)
    async with asyncio.timeout(CASE_SECONDS):
        await valid_call(http, KEEP)
    assert [record.id for record in fake.store.records()][:1] == [kept]
    assert len(fake.store.records()) == 2


async def test_get_behaviour_is_valid_json_whatever_was_offered(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    _, http = served
    for name in ("nan", "infinity", "overflowing-float", "huge-integer", "yaml-inf", "yaml-huge-int"):
        response = await http.put("/__aigw/behaviour", content=BAD_BODIES[name])
        assert response.status_code == 400, name
        assert_well_refused(name, response.status_code, response.content)
        shown = await http.get("/__aigw/behaviour")
        assert shown.status_code == 200
        assert_valid_json(name, shown.content)


async def test_reset_with_bad_input_still_resets_and_answers_well(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    for name, content in BAD_BODIES.items():
        await valid_call(http, KEEP)
        response = await http.post("/__aigw/reset", content=content, headers=auth())
        assert_well_refused(f"reset {name}", response.status_code, response.content)
        assert response.status_code == 200
        assert fake.store.records() == []


# --- the HTTP layer, over raw sockets ---------------------------------------------------------------------

RAW_CASES: dict[str, bytes] = {
    "garbage": b"GARBAGE\r\n\r\n",
    "bad-method-chars": b"G(E)T / HTTP/1.1\r\nhost: x\r\n\r\n",
    "bad-version": b"GET / HTTP/9.9\r\nhost: x\r\n\r\n",
    "no-host": b"GET /__aigw/behaviour HTTP/1.1\r\n\r\n",
    "bad-header-name": b"GET / HTTP/1.1\r\nhost: x\r\nbad header: 1\r\n\r\n",
    "nul-in-header": b"GET / HTTP/1.1\r\nhost: x\r\nx-a: a\x00b\r\n\r\n",
    "bad-content-length": b"POST /run HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n",
    "negative-content-length": b"POST /run HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n",
    "huge-content-length": b"POST /run HTTP/1.1\r\nhost: x\r\ncontent-length: " + b"9" * 40 + b"\r\n\r\n",
    "cl-and-te": b"POST /run HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
    "bad-chunk": b"POST /run HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "head-too-large-whole": b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 100_000 + b"\r\n\r\n",
    "stalled-head": b"GET /__aigw/behaviour HTTP/1.1\r\nhost: x\r\n",
    "stalled-body": b"PUT /__aigw/behaviour HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{",
    "stalled-model-body": (
        f"POST /v1/{ACCOUNT}/{GATEWAY}/workers-ai/{NATIVE} HTTP/1.1\r\nhost: x\r\n"
        f"authorization: Bearer {TOKEN}\r\ncontent-length: 1000\r\n\r\n"
    ).encode()
    + b'{"prompt": ',
    "nothing": b"",
}


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes the connection (bounded by the case's deadline)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


def parse_raw_response(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        decoded = bytearray()
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            decoded += rest[:size]
            body = rest[size + 2 :]
        body = bytes(decoded)
    return status, body


@pytest.mark.parametrize("name", sorted(RAW_CASES))
async def test_the_http_layer_refuses_in_cloudflare_envelopes_and_never_holds_a_connection(
    served: tuple[FakeGateway, httpx.AsyncClient], name: str
) -> None:
    fake, http = served
    kept = await valid_call(http, KEEP)
    port = int(fake.base_url.rsplit(":", 1)[1])
    async with asyncio.timeout(CASE_SECONDS):
        answer = await raw_exchange(port, RAW_CASES[name])
    if answer:  # a connection that sent nothing, or only part of a head, may simply be closed
        status, body = parse_raw_response(answer)
        assert 400 <= status < 500, (name, answer[:300])
        assert_well_refused(name, status, body)
    else:
        assert name in {"nothing"}, f"{name}: closed without an answer"
    await valid_call(http, KEEP)
    assert fake.store.records()[0].id == kept


async def test_a_head_sent_in_pieces_past_the_limit_is_refused(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, _ = served
    port = int(fake.base_url.rsplit(":", 1)[1])
    async with asyncio.timeout(CASE_SECONDS):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n")
        try:
            for _ in range(100):
                writer.write(b"x-filler: " + b"a" * 1_000 + b"\r\n")
                await writer.drain()
        except ConnectionError:
            pass  # the server refused and closed while the head was still coming
        answer = await reader.read()
        writer.close()
    status, body = parse_raw_response(answer)
    assert status == 431
    assert_well_refused("head in pieces", status, body)


# --- hypothesis: arbitrary JSON at the routes that read JSON ----------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
model_like = st.fixed_dictionaries(
    {},
    optional={
        "prompt": json_values,
        "messages": json_values,
        "stream": json_values,
        "max_tokens": json_values,
        "temperature": json_values,
        "model": st.just(NATIVE) | json_values,
    },
)


@pytest.fixture(scope="module")
def threaded_fake() -> Iterator[tuple[FakeGateway, httpx.Client, str]]:
    with (
        fake_in_thread(make_config()) as fake,
        httpx.Client(base_url=fake.base_url, timeout=CASE_SECONDS) as http,
    ):
        response = http.post(
            f"/v1/{ACCOUNT}/{GATEWAY}/workers-ai/{NATIVE}", json={"prompt": "x"}, headers=auth()
        )
        yield fake, http, response.headers["cf-aig-log-id"]


def _json_routes(log_id: str) -> list[tuple[str, str]]:
    skip = {"control behaviour put", "control features put", "control reset"}  # they change the fake's state
    return [
        (method, concrete_path(pattern, log_id))
        for method, pattern, name in all_routes()
        if method in {"POST", "PUT", "PATCH"} and name not in skip
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=model_like | json_values, route_index=st.integers(min_value=0, max_value=1_000))
def test_arbitrary_json_never_breaks_a_route(
    threaded_fake: tuple[FakeGateway, httpx.Client, str], document: Any, route_index: int
) -> None:
    _, http, log_id = threaded_fake
    routes = _json_routes(log_id)
    method, path = routes[route_index % len(routes)]
    content = json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")
    response = http.request(
        method, path, content=content, headers={**auth(), "content-type": "application/json"}
    )
    assert_well_refused(f"{method} {path}", response.status_code, response.content)
    if response.headers.get("content-type", "").startswith("application/json"):
        assert_valid_json(f"{method} {path}", response.content)
