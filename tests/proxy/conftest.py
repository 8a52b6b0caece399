"""Shared helpers for the proxy tests: generated secrets and SSE flows built with mitmproxy's helpers."""

from __future__ import annotations

import secrets as _secrets
import warnings

import pytest

with warnings.catch_warnings():
    # mitmproxy's addon package imports ldap3, which trips a pyasn1 deprecation at import time.
    warnings.simplefilter("ignore", DeprecationWarning)
    import mitmproxy.master  # noqa: F401
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from aigw_harness.proxy.redaction import Redactor
from aigw_harness.sse import encode_event

SSE_FRAMES = [
    encode_event('{"response":"Hel","p":"abc"}'),
    encode_event('{"response":"lo"}'),
    encode_event('{"response":"","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}'),
    encode_event("[DONE]"),
]


@pytest.fixture
def generated() -> dict[str, str]:
    """Fresh secrets for each test, so that no test can pass by knowing a fixed value."""
    return {
        "CLOUDFLARE_API_TOKEN": _secrets.token_urlsafe(30),
        "AIGW_GATEWAY_TOKEN": _secrets.token_urlsafe(30),
        "CLOUDFLARE_ACCOUNT_ID": _secrets.token_hex(16),
    }


@pytest.fixture
def redactor(generated: dict[str, str]) -> Redactor:
    return Redactor(dict(generated))


def sse_flow(account: str, token: str, gateway_token: str) -> http.HTTPFlow:
    request = tutils.treq(
        method=b"POST",
        path=f"/v1/{account}/my-gw/workers-ai/@cf/meta/llama-3.1-8b-instruct-fp8-fast".encode(),
        headers=http.Headers(
            authorization=f"Bearer {token}",
            **{"cf-aig-authorization": f"Bearer {gateway_token}", "content-type": "application/json"},
        ),
        content=b'{"prompt":"hi","stream":true}',
        timestamp_start=1000.0,
    )
    response = tutils.tresp(
        status_code=200,
        headers=http.Headers(
            **{"content-type": "text/event-stream", "cf-aig-log-id": "01JADMCQQQBWH3NXZ5GCRN98DP"}
        ),
        content=b"",
        timestamp_start=1000.2,
        timestamp_end=None,
    )
    return tflow.tflow(req=request, resp=response)
