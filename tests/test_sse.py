"""The SSE decoder: WHATWG parsing rules, any chunking, and no crash on garbage."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aigw_harness.sse import ServerSentEvent, SSEDecoder, decode_all, encode_comment, encode_event


def feed_in_pieces(body: bytes, cuts: list[int]) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    previous = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(body[previous:cut])
        previous = cut
    events += decoder.feed(body[previous:])
    events += decoder.flush()
    return events, decoder


def test_workers_ai_native_stream() -> None:
    body = (
        b'data: {"response":"Hello","p":"abcdefg"}\n\n'
        b'data: {"response":""}\n\n'
        b'data: {"response":"","usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n'
        b"data: [DONE]\n\n"
    )
    events = decode_all(body)
    assert [e.data for e in events] == [
        '{"response":"Hello","p":"abcdefg"}',
        '{"response":""}',
        '{"response":"","usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}',
        "[DONE]",
    ]
    assert events[-1].is_done_marker()
    assert all(e.event == "message" for e in events)


def test_named_events_ids_and_retry() -> None:
    body = b"event: done\nid: 7\nretry: 1500\ndata: {}\n\ndata: x\n\n"
    first, second = decode_all(body)
    assert first == ServerSentEvent(data="{}", event="done", id="7", retry=1500)
    # The last event id persists; the type and retry do not.
    assert second == ServerSentEvent(data="x", event="message", id="7", retry=None)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_line_endings(ending: bytes) -> None:
    body = b"data: a" + ending + b"data: b" + ending + ending + b": keep-alive" + ending + ending
    decoder = SSEDecoder()
    events = decoder.feed(body) + decoder.flush()
    assert events == [ServerSentEvent(data="a\nb")]
    assert decoder.comments == 1
    assert not decoder.truncated


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    events, _ = feed_in_pieces(b"data: a\r\n\r\ndata: b\r\n\r\n", [8, 9, 10])
    assert [e.data for e in events] == ["a", "b"]


def test_bom_fields_without_colon_and_spaces() -> None:
    body = "\ufeffdata\ndata:  two spaces\nevent\nunknown: x\n\n".encode()
    (event,) = decode_all(body)
    assert event.data == "\n two spaces"
    assert event.event == "message"


def test_bom_only_at_start_of_stream() -> None:
    # A later BOM is part of the field name, which is then unknown and ignored.
    assert decode_all("data: a\n\n\ufeffdata: b\n\n".encode()) == [ServerSentEvent(data="a")]


def test_id_with_nul_is_ignored_and_bad_retry_is_ignored() -> None:
    (event,) = decode_all(b"id: 1\n\nid: a\x00b\nretry: 12a\ndata: x\n\n")
    assert event.id == "1"
    assert event.retry is None


def test_event_without_data_is_not_dispatched() -> None:
    assert decode_all(b"event: ping\n\n:comment\n\n") == []


def test_unterminated_event_is_discarded_and_reported() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: complete\n\ndata: partial") == [ServerSentEvent(data="complete")]
    assert decoder.flush() == []
    assert decoder.truncated


def test_field_line_without_blank_line_is_truncated() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: x\n")
    assert decoder.flush() == []
    assert decoder.truncated


def test_utf8_split_across_chunks() -> None:
    body = 'data: {"response":"😀 é"}\n\n'.encode()
    for cut in range(1, len(body)):
        events, _ = feed_in_pieces(body, [cut])
        assert [e.data for e in events] == ['{"response":"😀 é"}']


def test_invalid_utf8_is_replaced_not_raised() -> None:
    (event,) = decode_all(b"data: \xff\xfe\n\n")
    assert event.data == "\ufffd\ufffd"


def test_encoder_output() -> None:
    assert encode_event('{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event("{}", event="done") == b"event: done\ndata: {}\n\n"
    assert encode_event("a\nb", id="3", retry=10) == b"id: 3\nretry: 10\ndata: a\ndata: b\n\n"
    assert encode_comment("keep-alive") == b": keep-alive\n\n"
    with pytest.raises(ValueError, match="event name cannot contain a line break"):
        encode_event("x", event="a\nb")


# --- properties -------------------------------------------------------------------------------------

_field_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"), max_size=20
)
_events = st.lists(
    st.builds(
        ServerSentEvent,
        data=st.lists(_field_text, min_size=1, max_size=3).map("\n".join),
        event=st.sampled_from(["message", "done", "error"]),
        id=st.just(""),
        retry=st.none(),
    ),
    max_size=8,
)


def _encode(events: list[ServerSentEvent], ending: str) -> bytes:
    out = b"".join(encode_event(e.data, event=None if e.event == "message" else e.event) for e in events)
    return out.replace(b"\n", ending.encode())


@given(events=_events, ending=st.sampled_from(["\n", "\r\n", "\r"]), data=st.data())
@example(events=[ServerSentEvent(data="x")], ending="\r\n", data=None)
def test_any_split_decodes_the_same_events(
    events: list[ServerSentEvent], ending: str, data: st.DataObject | None
) -> None:
    body = _encode(events, ending)
    cuts = [] if data is None else data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    decoded, decoder = feed_in_pieces(body, cuts)
    assert decoded == events
    assert not decoder.truncated


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=10))
def test_garbage_never_crashes(body: bytes, cuts: list[int]) -> None:
    whole = decode_all(body)
    split, _ = feed_in_pieces(body, [c for c in cuts if c <= len(body)])
    assert split == whole
