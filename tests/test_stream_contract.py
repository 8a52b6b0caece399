"""One stream contract, two faces: the pytest helpers and the scenario checks judge every stream alike.

Streams are generated with the platform's tolerated variations (LF, CRLF and CR line ends, keep-alive
comments, no space after the colon, escaped or literal non-ASCII) and with breakages (foreign fields,
spaced JSON, events after done, a missing done, an unfinished last event), then cut into arbitrary chunks
and received by both faces through real HTTP clients on a mock transport.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aigw_harness import stream_contract as contract
from aigw_harness.report.results import Exchange
from aigw_harness.scenarios.checks import expectation_checks
from aigw_harness.scenarios.exchange import PreparedRequest, perform
from aigw_harness.scenarios.model import Expect
from aigw_harness.sse import decode_all
from aigw_harness.testing import stream_contract as pytest_face
from aigw_harness.testing.sse_client import SSEClient

SESSION = "11111111-1111-1111-1111-111111111111"
HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
# The sse expectations that are contract rules, and the rule each one is.
EXPECTATION_RULES = {
    "sse.framing": "framing",
    "sse.events_json": "json",
    "sse.terminal_done": "terminal-done",
    "sse.nothing_after_done": "after-done",
}
CONTRACT_EXPECT = Expect.model_validate(
    {"sse": {"framing": True, "events_json": True, "terminal_done": True, "nothing_after_done": True}}
)


@dataclass(frozen=True)
class Frame:
    """One event as a writer might put it on the wire."""

    name: str | None
    body: object
    spaced: bool = False  # JSON with spaces after separators: not compact
    ascii_escaped: bool = False  # non-ASCII written as \\uXXXX: allowed


def token(content: str) -> Frame:
    body = {"sessionId": SESSION, "role": "assistant", "content": content, "tenantId": "example"}
    return Frame(None, body)


DONE = Frame("done", {"done": True, "usage": {"modelId": "@cf/m", "tokensIn": 2, "tokensOut": 1}})
ERROR = Frame("error", {"code": "ai_error", "message": "AI provider unavailable"})


@dataclass(frozen=True)
class Wire:
    """How the frames are written: line ends, comments, the space after the colon, extra fields.

    Line ends vary per event (one event's lines share one), as a CR followed by an LF would be one CRLF."""

    line_ends: Sequence[str]
    comments: Sequence[bool]
    space: Sequence[bool]
    foreign_field: str | None = None
    unfinished: bool = False  # the last event has no closing blank line

    def encode(self, frames: Sequence[Frame]) -> bytes:
        out: list[str] = []
        end = "\n"

        def line(text: str) -> None:
            out.append(text + end)

        for index, frame in enumerate(frames):
            end = self.line_ends[index % len(self.line_ends)]
            if self.comments[index % len(self.comments)]:
                line(": keep-alive")
            colon = ": " if self.space[index % len(self.space)] else ":"
            if self.foreign_field is not None and index == 0:
                line(f"{self.foreign_field}{colon}1")
            if frame.name is not None:
                line(f"event{colon}{frame.name}")
            separators = (", ", ": ") if frame.spaced else (",", ":")
            data = json.dumps(frame.body, separators=separators, ensure_ascii=frame.ascii_escaped)
            line(f"data{colon}{data}")
            if not (self.unfinished and index == len(frames) - 1):
                line("")
        return "".join(out).encode("utf-8")


contents = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
frames_strategy = st.lists(
    st.one_of(
        contents.map(token),
        st.builds(
            Frame,
            st.sampled_from([None, "done", "error", "ping"]),
            st.sampled_from([{"done": True}, {"code": "x", "message": "y"}, [1], "é"]),
            st.booleans(),
            st.booleans(),
        ),
        st.just(DONE),
        st.just(ERROR),
    ),
    max_size=6,
)
wires = st.builds(
    Wire,
    st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=3),
    st.lists(st.booleans(), min_size=1, max_size=3),
    st.lists(st.booleans(), min_size=1, max_size=3),
    st.sampled_from([None, None, None, "id", "retry", "x-extra"]),
    st.booleans(),
)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """``body`` cut at arbitrary points (possibly inside a UTF-8 character or between CR and LF)."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=8)))
    points = [0, *[c for c in cuts if c < len(body)], len(body)]
    return [body[a:b] for a, b in itertools.pairwise(points) if b > a]


def transport(chunks: Sequence[bytes]) -> httpx.MockTransport:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=HEADERS, content=body())

    return httpx.MockTransport(handler)


async def through_pytest_face(chunks: Sequence[bytes]) -> set[str]:
    async with (
        SSEClient(transport=transport(chunks)) as client,
        client.stream("http://sut.test/chat", json={}) as stream,
    ):
        await stream.read()
    return {violation.rule for violation in pytest_face.check_contract(stream)}


async def through_scenario_face(chunks: Sequence[bytes]) -> tuple[Exchange, set[str]]:
    request = PreparedRequest(
        id="r0001", step="s", index=0, concurrency=1, method="POST", path="/chat", tenant="example",
        headers={}, content=b"{}", body={}, trace_id="r0001", disconnect_after_events=None, timeout_s=10,
    )  # fmt: skip
    async with httpx.AsyncClient(transport=transport(chunks)) as client:
        exchange = await perform(client, "http://sut.test", request, started=0.0, time_scale=1.0)
    checks = expectation_checks("s", CONTRACT_EXPECT, [exchange])
    failed = {EXPECTATION_RULES[c.id.removeprefix("s.")] for c in checks if c.status.value == "failed"}
    return exchange, failed


def judged_whole(body: bytes) -> set[str]:
    record = contract.StreamRecord(200, HEADERS, body, decode_all(body))
    return {violation.rule for violation in contract.check_contract(record)}


async def both_faces(chunks: Sequence[bytes]) -> tuple[set[str], set[str]]:
    by_pytest = await through_pytest_face(chunks)
    _, by_scenarios = await through_scenario_face(chunks)
    return by_pytest, by_scenarios


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), frames_strategy, wires)
@example(None, [token("hé"), DONE], Wire(["\r\n"], [True], [False])).via("CRLF, keep-alives, data:{...}")
def test_both_faces_accept_and_reject_the_same_streams(
    data: st.DataObject | None, frames: list[Frame], wire: Wire
) -> None:
    body = wire.encode(frames)
    chunks = data.draw(chunked(body)) if data is not None else [body]
    by_pytest, by_scenarios = asyncio.run(both_faces(chunks))
    whole = judged_whole(body)
    # However the body was cut, each face reaches the verdict of reading it whole ...
    assert by_pytest == whole
    # ... and the scenario checks break exactly the rules the pytest helpers name (those they express).
    assert by_scenarios == whole & set(EXPECTATION_RULES.values())


@settings(deadline=None)  # each example is two HTTP exchanges on a mock transport: no timing to judge
@given(st.data(), st.lists(contents, max_size=4), wires.filter(lambda w: w.foreign_field is None))
def test_tolerated_variations_of_a_platform_stream_pass_both_faces(
    data: st.DataObject, tokens: list[str], wire: Wire
) -> None:
    wire = Wire(wire.line_ends, wire.comments, wire.space)
    frames = [token(text) for text in tokens]
    frames += [Frame(f.name, f.body, ascii_escaped=data.draw(st.booleans())) for f in (ERROR, DONE)]
    body = wire.encode(frames)
    assert asyncio.run(both_faces(data.draw(chunked(body)))) == (set(), set())


def test_each_breakage_is_named_by_both_faces() -> None:
    plain = Wire(["\n"], [False], [True])
    cases = {
        "framing": plain.encode([token("a"), DONE]).replace(b"data: {", b"id: 7\ndata: {", 1),
        "json": Wire(["\n"], [False], [True]).encode([Frame(None, token("a").body, spaced=True), DONE]),
        "terminal-done": plain.encode([token("a")]),
        "after-done": plain.encode([token("a"), DONE]) + b"data: late\n",
    }
    for rule, body in cases.items():
        by_pytest, by_scenarios = asyncio.run(both_faces([body]))
        assert rule in by_pytest, (rule, by_pytest)
        assert rule in by_scenarios, (rule, by_scenarios)


def test_an_unfinished_last_event_is_a_framing_violation_unless_the_client_left() -> None:
    body = Wire(["\n"], [False], [True], unfinished=True).encode([token("a"), DONE])
    record = contract.StreamRecord(200, HEADERS, body, decode_all(body))
    assert [v.message for v in contract.check_framing(record)] == [
        "the stream ended inside an event (no closing blank line)"
    ]
    left = contract.StreamRecord(200, HEADERS, body, decode_all(body), client_closed=True)
    assert contract.check_framing(left) == []


def test_a_prefix_kept_by_the_runner_is_not_judged_on_its_end() -> None:
    body = Wire(["\n"], [False], [True]).encode([token("a"), token("b"), DONE])
    exchange = Exchange(
        id="r1", step="s", started_ms=0, status=200, stream=True, headers=HEADERS,
        raw_stream=body[:20].decode(), events=[],
    )  # fmt: skip
    exchange.events = asyncio.run(through_scenario_face([body]))[0].events
    record = contract.exchange_record(exchange)
    assert not record.raw_complete
    assert contract.check_framing(record) == []


def test_nan_is_not_json_and_escaping_is_the_writers_choice() -> None:
    def verdict(data: str) -> list[str]:
        record = contract.StreamRecord(200, HEADERS, b"", [decode_all(f"data:{data}\n\n".encode())[0]])
        return [v.message for v in contract.check_events_json(record)]

    assert verdict('{"a":"\\u00e9\\/"}') == []
    assert verdict('{"a":"é/"}') == []
    assert verdict('{"a":NaN}') == ["event #1 data is not JSON: '{\"a\":NaN}'"]
    assert verdict('{"a": 1}') == ["event #1 data is JSON but not compact: '{\"a\": 1}'"]
