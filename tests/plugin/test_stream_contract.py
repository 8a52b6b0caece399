"""The contract rules as functions: properties over generated streams, and no crash on garbage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from aigw_harness.sse import ServerSentEvent, SSEDecoder
from aigw_harness.testing import stream_contract as rules

from .streams import compact, done, error, token


@dataclass
class Recorded:
    raw: bytes
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    sse_events: list[ServerSentEvent] = field(default_factory=list)
    truncated: bool = False

    @classmethod
    def of(cls, raw: bytes, **kwargs: Any) -> Recorded:
        decoder = SSEDecoder()
        events = decoder.feed(raw) + decoder.flush()
        return cls(raw=raw, sse_events=events, truncated=decoder.truncated, **kwargs)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(json_values)
def test_compact_json_is_recognised_and_spaced_json_is_not(value: Any) -> None:
    stream = Recorded.of(b"data: " + compact(value).encode() + b"\n\n")
    assert rules.check_events_json(stream) == []
    spaced = json.dumps(value, indent=1, ensure_ascii=False)
    if spaced != compact(value):
        stream = Recorded.of(b"data: " + spaced.replace("\n", " ").encode() + b"\n\n")
        assert [v.rule for v in rules.check_events_json(stream)] == ["json"]


@given(st.lists(st.text(min_size=1, max_size=6), max_size=5), st.booleans())
def test_platform_streams_keep_every_rule(contents: list[str], failed: bool) -> None:
    raw = b"".join(token(c) for c in contents) + (error() if failed else b"") + done({"tokensOut": 1})
    assert rules.check_contract(Recorded.of(raw)) == []


@given(st.lists(st.sampled_from([token("a"), error(), done()]), min_size=1, max_size=6))
def test_order_rules_agree_with_a_direct_reading(pieces: list[bytes]) -> None:
    stream = Recorded.of(b"".join(pieces))
    names = [event.event for event in stream.sse_events]
    one_terminal = names.count("done") == 1 and names[-1] == "done"
    assert (rules.check_one_terminal_done(stream) == []) == one_terminal
    first_done = names.index("done") if "done" in names else len(names)
    assert (rules.check_nothing_after_done(stream) == []) == (first_done >= len(names) - 1)


@given(st.binary(max_size=300), st.integers(100, 599), st.text(max_size=30))
@example(b"data: {\n\ndata: [1,\n\nevent: done\ndata: null\n\n", 200, "text/event-stream")
@example(b'event: error\ndata: {"code":1}\n\nevent: done\ndata: {"done":"x","usage":[]}\n\n', 200, "")
def test_garbage_is_judged_without_crashing(raw: bytes, status: int, content_type: str) -> None:
    stream = Recorded.of(raw, status_code=status, headers={"content-type": content_type})
    violations = rules.check_contract(stream)
    assert all(isinstance(v, rules.Violation) and v.rule and v.message for v in violations)
    if status != 200:
        assert [v.rule for v in violations] == ["status"]
