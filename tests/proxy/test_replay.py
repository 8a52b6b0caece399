"""The replay app, called directly as ASGI with a fake clock: timing, matching, faults, no-match errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from aigw_harness.proxy.cassette import Cassette, build_cassette
from aigw_harness.proxy.faults import FaultPlan
from aigw_harness.proxy.redaction import Redactor
from aigw_harness.proxy.replay import CassetteLibrary, ReplayApp
from aigw_harness.sse import decode_all
from tests.proxy.conftest import SSE_FRAMES

ACCOUNT = "acct-recorded-0001"


def _cassette(path: str, body: dict[str, Any], frames: list[bytes], status: int = 200) -> Cassette:
    return build_cassette(
        recorded_at="t",
        method="POST",
        path=path,
        request_headers=[("content-type", "application/json")],
        request_body=json.dumps(body).encode(),
        redactor=Redactor({"CLOUDFLARE_ACCOUNT_ID": ACCOUNT}),
        status=status,
        response_headers=[("content-type", "text/event-stream"), ("cf-aig-log-id", "01LOG")],
        head_offset_ms=100,
        chunks=[(200.0 + 50 * i, f) for i, f in enumerate(frames)],
    )


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


async def _call(
    app: ReplayApp, path: str, body: dict[str, Any], time: FakeTime
) -> tuple[int, dict[str, str], list[tuple[float, bytes]]]:
    sent: list[tuple[float, bytes]] = []
    start: dict[str, Any] = {}
    payload = json.dumps(body).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message, at=time.now)
        elif message.get("body"):
            sent.append((time.now, message["body"]))

    scope = {"type": "http", "method": "POST", "path": path, "query_string": b""}
    async with asyncio.timeout(2):
        await app(scope, receive, send)  # type: ignore[arg-type]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers | {"@head": str(start["at"])}, sent


def _library(*cassettes: Cassette, replay_account: str = "acct-replay-0002") -> CassetteLibrary:
    return CassetteLibrary(list(cassettes), Redactor({"CLOUDFLARE_ACCOUNT_ID": replay_account}))


async def test_original_and_scaled_timing() -> None:
    cassette = _cassette(f"/v1/{ACCOUNT}/gw/workers-ai/m", {"stream": True}, SSE_FRAMES)
    for scale, expected_head, expected_chunks in [
        (1.0, 0.1, [0.2, 0.25, 0.3, 0.35]),
        (0.1, 0.01, [0.02, 0.025, 0.03, 0.035]),
    ]:
        time = FakeTime()
        app = ReplayApp(_library(cassette), time_scale=scale, clock=time.clock, sleep=time.sleep)
        status, headers, sent = await _call(
            app, "/v1/acct-replay-0002/gw/workers-ai/m", {"stream": True}, time
        )
        assert status == 200
        assert headers["cf-aig-log-id"] == "01LOG"
        assert float(headers["@head"]) == pytest.approx(expected_head)
        assert [round(at, 6) for at, _ in sent] == pytest.approx(expected_chunks)
        assert b"".join(d for _, d in sent) == b"".join(SSE_FRAMES)


async def test_matching_prefers_equal_bodies_then_recording_order() -> None:
    path = f"/v1/{ACCOUNT}/gw/workers-ai/m"
    first = _cassette(path, {"n": 1}, [SSE_FRAMES[0]])
    second = _cassette(path, {"n": 2}, [SSE_FRAMES[1]])
    library = _library(first, second)
    time = FakeTime()
    app = ReplayApp(library, time_scale=0, clock=time.clock, sleep=time.sleep)
    replay_path = "/v1/acct-replay-0002/gw/workers-ai/m"
    assert (await _call(app, replay_path, {"n": 2}, time))[2][0][1] == SSE_FRAMES[1]
    assert (await _call(app, replay_path, {"n": 9}, time))[2][0][1] == SSE_FRAMES[0]  # next unused
    assert (await _call(app, replay_path, {"n": 2}, time))[2][0][1] == SSE_FRAMES[
        1
    ]  # repeat of an equal body
    assert library.used == [1, 0, 1]
    assert time.sleeps == []


async def test_faults_with_event_delays() -> None:
    cassette = _cassette(f"/v1/{ACCOUNT}/gw/workers-ai/m", {}, SSE_FRAMES)
    time = FakeTime()
    plan = FaultPlan(status=500, cut_after=3, corrupt=frozenset({1}), delay_events={2: 1500.0})
    app = ReplayApp(_library(cassette), time_scale=0, faults=plan, clock=time.clock, sleep=time.sleep)
    status, _, sent = await _call(app, "/v1/acct-replay-0002/gw/workers-ai/m", {}, time)
    assert status == 500
    events = decode_all(b"".join(d for _, d in sent))
    assert events[0].data == '{"response":"Hel","p":"abc"}'
    assert events[1].data == '{"respon'
    assert len(events) == 3  # cut after three events: no [DONE]
    assert time.sleeps == [1.5]
    assert sent[2][0] == pytest.approx(1.5)


async def test_no_match_names_the_nearest_recordings() -> None:
    cassette = _cassette(
        f"/v1/{ACCOUNT}/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct-fp8-fast", {}, SSE_FRAMES
    )
    time = FakeTime()
    app = ReplayApp(_library(cassette), clock=time.clock, sleep=time.sleep)
    status, _, sent = await _call(
        app, "/v1/acct-replay-0002/gw/workers-ai/@cf/meta/llama-3.2-3b-instruct", {}, time
    )
    assert status == 404
    message = json.loads(sent[0][1])["errors"][0]["message"]
    prefix = "/v1/[REDACTED:CLOUDFLARE_ACCOUNT_ID]/gw/workers-ai/@cf/meta"
    assert message == (
        f"AIGW: no cassette matches POST {prefix}/llama-3.2-3b-instruct"
        f"; nearest recorded: POST {prefix}/llama-3.1-8b-instruct-fp8-fast"
    )
