"""Frames of both stream shapes, usage without double counting, and the platform's estimates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.gateway.tokens import (
    UsageTracker,
    estimate_tokens_from_messages,
    estimate_tokens_from_text,
    extract_text,
    interpret_event,
    utf16_len,
)
from aigw_harness.sse import ServerSentEvent


def frame(data: str):  # type: ignore[no-untyped-def]
    return interpret_event(ServerSentEvent(data=data))


def test_utf16_lengths_and_estimates() -> None:
    assert utf16_len("😀") == 2
    assert utf16_len("\ud800") == 1  # a lone surrogate, as JSON can carry
    assert estimate_tokens_from_text("") == 0
    assert estimate_tokens_from_text("a") == 1
    assert estimate_tokens_from_text("hello") == 2
    assert estimate_tokens_from_text("😀😀") == 1
    assert estimate_tokens_from_messages(["hello", "a", ""]) == 3  # per-message rounding


def test_native_frames() -> None:
    assert frame('{"response":"tok","p":"abc"}').token == "tok"
    assert frame("[DONE]").done
    usage = frame('{"response":"","usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}')
    assert usage.cumulative
    assert (usage.usage.input_tokens, usage.usage.output_tokens, usage.usage.total_tokens) == (7, 2, 9)  # type: ignore[union-attr]
    error = frame('{"errors":[{"code":3040,"message":"busy"}]}')
    assert (error.error, error.error_code) == ("busy", 3040)
    assert frame('{"response":"').error is not None
    assert frame("[1,2]").error is not None


def test_chat_completion_frames() -> None:
    chunk = frame(
        '{"choices":[{"delta":{"content":"x","reasoning_content":null},"finish_reason":null}],"usage":{"completion_tokens":1}}'
    )
    assert (chunk.token, chunk.cumulative, chunk.finished) == ("x", False, False)
    assert frame('{"choices":[{"delta":{"reasoning_content":"think"}}]}').token == ""
    assert frame('{"choices":[{"delta":{},"finish_reason":"stop"}]}').finished
    assert frame('{"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":1}}').usage is not None


def test_string_and_boolean_usage_fields_are_not_trusted() -> None:
    tracker = UsageTracker()
    tracker.add_frame(
        frame('{"response":"hi","usage":{"input_tokens":"5","prompt_tokens":true,"total_tokens":42}}')
    )
    counts = tracker.counts(estimated_input=3)
    assert (counts.tokens_in, counts.in_estimated) == (3, True)
    assert (counts.tokens_out, counts.out_estimated) == (1, True)
    assert counts.tokens_total == 4  # the reported total is not mixed with estimates


@given(
    increments=st.lists(st.integers(0, 50), max_size=20),
    cumulative=st.none() | st.tuples(st.integers(0, 500), st.integers(0, 500)),
)
def test_cumulative_usage_replaces_increments(
    increments: list[int], cumulative: tuple[int, int] | None
) -> None:
    tracker = UsageTracker()
    for n in increments:
        tracker.add_frame(
            frame(f'{{"choices":[{{"delta":{{"content":"t"}}}}],"usage":{{"completion_tokens":{n}}}}}')
        )
    if cumulative is not None:
        tracker.add_frame(
            frame(
                f'{{"response":"","usage":{{"prompt_tokens":{cumulative[0]},"completion_tokens":{cumulative[1]}}}}}'
            )
        )
    counts = tracker.counts(estimated_input=11)
    if cumulative is not None:
        assert (counts.tokens_in, counts.tokens_out) == cumulative
    elif increments:
        assert counts.tokens_out == sum(increments)
        assert counts.in_estimated
    else:
        assert counts.out_estimated
    assert counts.tokens_total == counts.tokens_in + counts.tokens_out


def test_extract_text_from_results() -> None:
    assert extract_text({"response": "a"}) == "a"
    assert extract_text({"choices": [{"message": {"content": "b"}}]}) == "b"
    assert extract_text("c") == "c"
    assert extract_text({"response": ""}) == ""
    assert extract_text({}) == ""
