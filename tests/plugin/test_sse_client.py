"""The SSE client helper: recording with arrival times, and the /chat contract assertions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigw_harness.sse import encode_comment, encode_event
from aigw_harness.testing import StreamContractError
from aigw_harness.testing.sse_client import ChatStream

from .streams import SESSION, done, error, platform_stream, streaming_client, token

URL = "http://sut.test/chat"
BODY = {"sessionId": SESSION, "message": "hello", "stream": True}


async def record(chunks: list[bytes], **kwargs: object) -> ChatStream:
    client = streaming_client(chunks, **kwargs)  # type: ignore[arg-type]
    async with client, client.stream(URL, json=BODY) as stream:
        await stream.read()
    return stream


async def test_records_events_with_arrival_times_and_derived_values() -> None:
    stream = await record(platform_stream("Hel", "lo"), delay_s=0.02)

    assert [e.event for e in stream.events] == ["message", "message", "done"]
    assert stream.content == "Hello"
    assert stream.done == {
        "done": True,
        "usage": {"modelId": "@cf/meta/llama-3.1-8b-instruct-fp8-fast", "tokensIn": 2, "tokensOut": 2},
    }
    assert stream.error is None
    times = [e.t_ms for e in stream.events]
    assert times == sorted(times)
    assert stream.ttft_ms == times[0] >= 15
    assert len(stream.gaps_ms) == 1
    assert stream.gaps_ms[0] >= 15
    assert stream.finished
    assert not stream.closed_early
    assert stream.transport_error is None
    stream.assert_contract()
    stream.assert_one_terminal_done()
    stream.assert_nothing_after_done()
    stream.assert_no_error_event()
    stream.assert_progressive()


async def test_iterating_yields_events_as_they_arrive_and_resumes() -> None:
    client = streaming_client(platform_stream("a", "b", "c"))
    async with client, client.stream(URL, json=BODY) as stream:
        seen = []
        async for event in stream:
            seen.append(event.json()["content"])
            break
        assert not stream.finished
        rest = [event.event async for event in stream]
    assert seen == ["a"]
    assert rest == ["message", "message", "done"]
    stream.assert_contract()


async def test_leaving_the_block_early_closes_the_connection_and_keeps_what_arrived() -> None:
    client = streaming_client(platform_stream("a", "b", "c"), delay_s=0.01)
    async with client, client.stream(URL, json=BODY) as stream:
        async for _ in stream:
            break
    assert stream.closed_early
    assert [e.event for e in stream.events] == ["message"]
    with pytest.raises(StreamContractError) as failure:
        stream.assert_one_terminal_done()
    assert "terminal-done: no done event among 1 events" in str(failure.value)
    assert "closed early by the client" in str(failure.value)
    with pytest.raises(RuntimeError) as misuse:
        await stream.read()
    assert str(misuse.value) == "The stream was closed; read it inside its 'async with' block."


async def test_asserting_before_reading_is_a_misuse() -> None:
    async with streaming_client(platform_stream("a")) as client, client.stream(URL, json=BODY) as stream:
        with pytest.raises(RuntimeError) as misuse:
            stream.assert_contract()
        await stream.read()
    assert str(misuse.value) == (
        "The stream has not been read to its end; call 'await stream.read()' before asserting on it."
    )


async def test_error_event_assertions() -> None:
    stream = await record([token("par"), token("tial"), error(), done()])

    stream.assert_contract()
    stream.assert_error_event(code="ai_error", message="AI provider unavailable")
    assert stream.error == {"code": "ai_error", "message": "AI provider unavailable"}
    with pytest.raises(StreamContractError) as wrong_code:
        stream.assert_error_event(code="rate_limited")
    assert "error-event: code is 'ai_error', expected 'rate_limited'" in str(wrong_code.value)
    with pytest.raises(StreamContractError) as unexpected:
        stream.assert_no_error_event()
    assert "error-event: error event #3" in str(unexpected.value)


async def test_missing_error_event_is_reported() -> None:
    stream = await record(platform_stream("ok"))
    with pytest.raises(StreamContractError) as failure:
        stream.assert_error_event()
    assert str(failure.value).splitlines()[:2] == [
        "AIGW: the stream has no error event of the expected shape",
        "  - error-event: no error event",
    ]


async def test_failure_message_lists_every_violation_and_the_events() -> None:
    chunks = [
        token("a"),
        encode_event('{"code":"ai_error"}', event="error"),
        token("late"),
        done(),
        encode_event('{"done":true}', event="done"),
    ]
    stream = await record(chunks)
    with pytest.raises(StreamContractError) as failure:
        stream.assert_contract()
    message = str(failure.value)
    rules = [v.rule for v in failure.value.violations]
    assert rules == ["order", "order", "terminal-done", "after-done", "error-shape"]
    assert message.splitlines()[0] == "AIGW: the stream breaks the /chat contract"
    assert "  - order: token event(s) at #3 after the error #2" in message
    assert "  - order: the error #2 is not directly followed by done" in message
    assert "  - terminal-done: 2 done events (at #4, #5); expected one" in message
    assert "  - after-done: 1 event(s) after done #4: #5 done" in message
    assert "  - error-shape: error #2: missing message" in message
    assert "POST http://sut.test/chat -> 200 text/event-stream; 5 event(s)" in message
    assert "#3   +" in message
    assert 'message  {"sessionId"' in message


async def test_framing_and_json_rules() -> None:
    chunks = [
        b"id: 7\ndata: " + json.dumps({"sessionId": SESSION}).encode() + b"\n\n",
        encode_comment("keep-alive"),
        b"retry: 10\n",
        done(),
    ]
    stream = await record(chunks)
    with pytest.raises(StreamContractError) as failure:
        stream.assert_contract()
    message = str(failure.value)
    assert "framing: field 'id' on line 1; only data: and event: are sent" in message
    assert "framing: field 'retry' on line 6; only data: and event: are sent" in message
    assert "json: event #1 data is JSON but not compact" in message
    assert "token-shape: event #1: missing role, content, tenantId" in message
    assert "keep-alive" not in message.split("POST")[0]


async def test_a_cut_connection_is_recorded_not_raised() -> None:
    stream = await record([token("a"), b'data: {"sess'], cut=True)
    assert stream.finished
    assert stream.transport_error == (
        "RemoteProtocolError: peer closed connection without sending complete message body"
    )
    assert stream.truncated
    with pytest.raises(StreamContractError) as failure:
        stream.assert_contract()
    message = str(failure.value)
    assert "connection: the connection failed mid-stream (RemoteProtocolError" in message
    assert "framing: the stream ended inside an event (no closing blank line)" in message
    assert "terminal-done: no done event among 1 events" in message


async def test_a_non_200_answer_is_judged_on_its_status() -> None:
    body = b'{"ok":false,"error":{"code":"rate_limited","message":"Rate limit exceeded"}}'
    stream = await record([body], status=429, headers={"content-type": "application/json"})
    with pytest.raises(StreamContractError) as failure:
        stream.assert_contract()
    assert [str(v) for v in failure.value.violations] == [
        "status: HTTP 429; a stream is always answered with 200"
    ]
    assert '  body: {"ok":false,"error":{"code":"rate_limited"' in str(failure.value)


async def test_wrong_content_type_and_done_shape() -> None:
    chunks = [token("a"), encode_event('{"done":"yes","usage":{"tokensIn":true}}', event="done")]
    stream = await record(chunks, headers={"content-type": "application/json"})
    with pytest.raises(StreamContractError) as failure:
        stream.assert_contract()
    assert [str(v) for v in failure.value.violations] == [
        "content-type: 'application/json'; expected text/event-stream",
        'done-shape: done #2: done is "yes", expected a boolean',
    ]


async def test_progressive_needs_tokens_spread_over_time() -> None:
    stream = await record([b"".join(platform_stream("a", "b", "c"))])
    with pytest.raises(StreamContractError) as failure:
        stream.assert_progressive()
    assert "progressive: all 3 token events arrived in one read" in str(failure.value)
    stream.assert_contract()


@st.composite
def split_platform_stream(draw: st.DrawFn) -> tuple[list[str], bool, list[bytes]]:
    contents = draw(st.lists(st.text(min_size=1, max_size=8), max_size=6))
    failed = draw(st.booleans())
    body = b"".join(token(c) for c in contents) + (error() if failed else b"") + done()
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return contents, failed, [p for p in pieces if p]


@settings(max_examples=60, deadline=None)
@given(split_platform_stream())
async def test_any_chunking_of_a_valid_stream_keeps_the_contract(
    case: tuple[list[str], bool, list[bytes]],
) -> None:
    contents, failed, chunks = case
    stream = await record(chunks)
    stream.assert_contract()
    assert stream.content == "".join(contents)
    assert (stream.error is not None) == failed


@settings(max_examples=40, deadline=None)
@given(split_platform_stream(), st.sampled_from([token("x"), error(), done()]))
async def test_anything_after_done_is_reported(
    case: tuple[list[str], bool, list[bytes]], extra: bytes
) -> None:
    _, _, chunks = case
    stream = await record([*chunks, extra])
    with pytest.raises(StreamContractError) as failure:
        stream.assert_nothing_after_done()
    assert [v.rule for v in failure.value.violations] == ["after-done"]
