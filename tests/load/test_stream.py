"""One answer measured as it arrives: the same figures whatever the network's chunking, contract judged."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.load.stream import AnswerRecorder, outcome_class
from aigw_harness.sse import encode_event

SSE = {"content-type": "text/event-stream", "cache-control": "no-cache"}
SESSION = "11111111-1111-1111-1111-111111111111"


def _compact(body: object) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _token(text: str) -> bytes:
    return encode_event(
        _compact({"sessionId": SESSION, "role": "assistant", "content": text, "tenantId": "load"})
    )


def _done() -> bytes:
    return encode_event(_compact({"done": True, "usage": {"modelId": "m", "tokensIn": 2}}), event="done")


def _error(code: str = "ai_error") -> bytes:
    return encode_event(_compact({"code": code, "message": "AI provider unavailable"}), event="error")


def _record(body: bytes, cuts: list[int], headers: dict[str, str] | None = None, status: int = 200):
    """Feed ``body`` split at ``cuts``, one chunk per 10 ms of a made-up clock starting at 1.0 s."""
    recorder = AnswerRecorder(stream=True, sent_at=1.0)
    recorder.head(status, headers or SSE)
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(body))), len(body)]
    t = 1.0
    for start, end in itertools.pairwise(bounds):
        t += 0.01
        recorder.chunk(body[start:end], t)
    return recorder.finish(t + 0.01)


@given(st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_any_chunking_gives_the_same_tokens_terminal_and_no_violation(cuts: list[int]) -> None:
    body = b"".join([_token("Hé"), _token("llo "), _token("wörld😀"), _done()])
    answer = _record(body, cuts)
    assert answer.tokens == 3
    assert answer.terminal == "done"
    assert answer.violations == []
    assert answer.complete
    assert outcome_class(answer) is None
    assert answer.ttft_ms is not None
    assert 0 < answer.ttft_ms <= answer.duration_ms
    assert len(answer.gaps_ms) == 2


def test_time_to_first_token_is_the_arrival_of_the_first_data_event() -> None:
    recorder = AnswerRecorder(stream=True, sent_at=10.0)
    recorder.head(200, SSE)
    recorder.chunk(b": keep-alive\n\n", 10.2)  # a comment is no token
    recorder.chunk(_token("a"), 10.5)
    recorder.chunk(_token("b"), 10.9)
    recorder.chunk(_done(), 11.0)
    answer = recorder.finish(11.0)
    assert answer.ttft_ms == 500.0
    assert [round(g) for g in answer.gaps_ms] == [400]
    assert answer.duration_ms == 1000.0


def test_an_error_event_is_an_incomplete_answer_with_its_code() -> None:
    answer = _record(_token("par") + _error("ai_error") + _done(), [])
    assert answer.terminal == "error"
    assert answer.error_code == "ai_error"
    assert not answer.complete
    assert outcome_class(answer) == "stream error event ai_error"


def test_a_stream_cut_before_done_is_incomplete_and_breaks_the_contract() -> None:
    answer = _record(_token("a") + _token("b"), [5])
    assert answer.terminal == "none"
    assert not answer.complete
    assert outcome_class(answer) == "stream ended without done"
    assert [v.split(":", 1)[0] for v in answer.violations] == ["terminal-done"]


def test_fields_the_contract_forbids_are_violations() -> None:
    body = b"id: 7\n" + _token("a") + _done()
    answer = _record(body, [])
    assert answer.complete  # the text arrived...
    assert [v.split(":", 1)[0] for v in answer.violations] == ["framing"]  # ...but not as the contract says


def test_a_json_refusal_is_classified_by_status_and_code() -> None:
    recorder = AnswerRecorder(stream=False, sent_at=0.0)
    recorder.head(429, {"content-type": "application/json"})
    recorder.chunk(b'{"ok":false,"error":{"code":"rate_limited","message":"Rate limit exceeded"}}', 0.01)
    answer = recorder.finish(0.02)
    assert not answer.stream
    assert answer.error_code == "rate_limited"
    assert outcome_class(answer) == "HTTP 429 rate_limited"


def test_a_json_answer_is_one_complete_answer() -> None:
    recorder = AnswerRecorder(stream=False, sent_at=0.0)
    recorder.head(200, {"content-type": "application/json"})
    body = {
        "ok": True,
        "data": {"status": "accepted", "sessionId": SESSION, "stream": False, "message": "hi"},
    }
    recorder.chunk(_compact(body).encode(), 0.05)
    answer = recorder.finish(0.05)
    assert answer.complete
    assert answer.terminal == "json"
    assert answer.ttft_ms == answer.duration_ms == 50.0


def test_a_transport_error_is_its_own_class() -> None:
    recorder = AnswerRecorder(stream=True, sent_at=0.0)
    answer = recorder.finish(0.5, transport_error="ConnectionError")
    assert outcome_class(answer) == "transport: ConnectionError"
    assert answer.violations == []


def test_an_answer_longer_than_the_kept_prefix_is_not_a_framing_violation() -> None:
    body = b"".join(_token("x" * 1000) for _ in range(400)) + _done()  # about 460 KiB
    answer = _record(body, list(range(0, len(body), 7000)))
    assert answer.tokens == 400
    assert answer.terminal == "done"
    assert answer.violations == []
