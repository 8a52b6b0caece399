"""Expectations on recorded exchanges: matchers, SSE sequence properties, agreement between sources."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.report.results import CheckStatus, EventRecord, Exchange
from aigw_harness.scenarios.checks import Observations, agreement_check, expectation_checks, get_path, match
from aigw_harness.scenarios.model import AgreementCheck, Expect, Match
from aigw_harness.scenarios.targets import UpstreamCall, UsageRecord


def sse_exchange(rid: str, frames: list[tuple[str, dict[str, object]]], *, gap: float = 50.0) -> Exchange:
    raw = ""
    events = []
    for index, (name, payload) in enumerate(frames):
        data = json.dumps(payload, separators=(",", ":"))
        raw += (f"event: {name}\n" if name != "message" else "") + f"data: {data}\n\n"
        events.append(EventRecord(t_ms=100 + index * gap, event=name, data=data))
    return Exchange(
        id=rid, step="s", started_ms=0, status=200, stream=True, events=events, raw_stream=raw,
        headers={"content-type": "text/event-stream"}, trace_id=f"{rid}-t", ttft_ms=100,
    )  # fmt: skip


GOOD = [
    ("message", {"content": "Hel", "role": "assistant"}),
    ("message", {"content": "lo", "role": "assistant"}),
    ("message", {"content": "!", "role": "assistant"}),
    ("done", {"done": True, "usage": {"modelId": "m", "tokensIn": 2, "tokensOut": 3}}),
]
CONTRACT = Expect.model_validate(
    {
        "status": 200,
        "sse": {
            "data_events": 3,
            "terminal_done": True,
            "nothing_after_done": True,
            "error_event": False,
            "framing": True,
            "events_json": True,
            "content": "Hello!",
            "data": {"role": "assistant"},
            "done": {"usage.tokensOut": 3},
            "progressive": True,
        },
    }
)


def statuses(exchanges: list[Exchange]) -> dict[str, CheckStatus]:
    return {c.id.removeprefix("s."): c.status for c in expectation_checks("s", CONTRACT, exchanges)}


def test_a_well_formed_stream_passes_every_property() -> None:
    assert set(statuses([sse_exchange("r1", GOOD)]).values()) == {CheckStatus.PASSED}


def test_each_broken_property_is_caught_and_names_the_request() -> None:
    after_done = sse_exchange("r2", [*GOOD, ("message", {"content": "late", "role": "assistant"})])
    two_done = sse_exchange("r3", [*GOOD, ("done", {"done": True})])
    with_error = sse_exchange("r4", [*GOOD[:3], ("error", {"code": "ai_error"}), GOOD[3]])
    buffered = sse_exchange("r5", GOOD, gap=0.0)
    result = statuses([after_done])
    assert result["sse.nothing_after_done"] is CheckStatus.FAILED
    assert result["sse.terminal_done"] is CheckStatus.FAILED
    assert statuses([two_done])["sse.terminal_done"] is CheckStatus.FAILED
    assert statuses([with_error])["sse.error_event"] is CheckStatus.FAILED
    assert statuses([buffered])["sse.progressive"] is CheckStatus.FAILED
    checks = {c.id: c for c in expectation_checks("s", CONTRACT, [sse_exchange("ok", GOOD), after_done])}
    failed = checks["s.sse.nothing_after_done"]
    assert failed.exchanges == ["r2", "ok"]
    assert failed.reason == "1 of 2 responses: r2 1 event(s) after done #4: #5 message"


def test_framing_rejects_id_fields_and_tolerates_crlf() -> None:
    # The stream contract (aigw_harness.stream_contract) tolerates what EventSource does: CRLF line ends.
    exchange = sse_exchange("r6", GOOD)
    exchange.raw_stream = (exchange.raw_stream or "").replace("\n", "\r\n")
    assert statuses([exchange])["sse.framing"] is CheckStatus.PASSED
    exchange.raw_stream = "id: 1\n" + (exchange.raw_stream or "")
    assert statuses([exchange])["sse.framing"] is CheckStatus.FAILED


def test_non_compact_json_is_caught() -> None:
    exchange = sse_exchange("r7", GOOD)
    exchange.events[0] = EventRecord(
        t_ms=100, event="message", data='{"content": "Hel", "role": "assistant"}'
    )
    assert statuses([exchange])["sse.events_json"] is CheckStatus.FAILED


def test_transport_failures_fail_every_expectation() -> None:
    broken = Exchange(id="r8", step="s", started_ms=0, transport_error="ConnectError")
    assert set(statuses([broken]).values()) == {CheckStatus.FAILED}


def test_match_conditions() -> None:
    assert match(Match(equals=5), "5") is None  # header values are text
    assert match(Match(equals=5), 6) == "expected 5, got 6"
    assert match(Match(present=False), None) is None
    assert match(Match(one_of=[200, 429]), 502) == "expected one of [200, 429], got 502"
    assert match(Match(min=1, max=2), "x") == 'expected a number, got "x"'
    assert match(Match(regex="^a"), "abc") is None
    assert get_path({"a": [{"b": 1}]}, "a.0.b") == 1


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_min_max_agrees_with_arithmetic(value: int, low: int, high: int) -> None:
    holds = match(Match(min=low, max=high), value) is None
    assert holds == (low <= value <= high)


def test_agreement_names_the_disagreeing_request_and_sources() -> None:
    ok = sse_exchange("r1", GOOD)
    wrong = sse_exchange("r2", GOOD)
    observations = Observations(
        exchanges=[ok, wrong],
        metrics=[
            UsageRecord("t", "m", "success", 2, 3, 5, 1.0, trace_id="r1-t"),
            UsageRecord("t", "m", "success", 2, 4, 6, 1.0, trace_id="r2-t"),
        ],
        by_trace={"r1-t": [UpstreamCall("u1", "workers-ai/m", 200, tokens_in=2, tokens_out=3)]},
    )
    spec = AgreementCheck(sources=["stream", "metrics", "upstream"], fields=["model", "tokens_out"])
    result = agreement_check("agree", "", spec, observations)
    assert result.status is CheckStatus.FAILED
    assert result.exchanges[0] == "r2"
    assert "r2 model: {'stream': 'm', 'metrics': 'm', 'upstream': 'no record'}" in result.reason
    assert "r2 tokens_out: {'stream': 3, 'metrics': 4, 'upstream': 'no record'}" in result.reason


_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["message", "done", "error", "other"]),
        st.one_of(
            st.text(max_size=30),
            st.builds(json.dumps, st.dictionaries(st.sampled_from(["content", "usage", "done", "code"]),
                                                  st.one_of(st.none(), st.integers(), st.text(max_size=5),
                                                            st.lists(st.integers(), max_size=2)))),
        ),
        st.floats(0, 1e6, allow_nan=False),
    ),
    max_size=12,
)  # fmt: skip


@given(_EVENTS, st.text(max_size=200), st.booleans())
def test_checks_never_raise_on_arbitrary_streams(
    events: list[tuple[str, str, float]], raw: str, disconnected: bool
) -> None:
    exchange = Exchange(
        id="r",
        step="s",
        started_ms=0,
        status=200,
        stream=True,
        raw_stream=raw,
        disconnected=disconnected,
        trace_id="r-t",
        events=[EventRecord(t_ms=t, event=name, data=data) for name, data, t in events],
    )
    results = expectation_checks("s", CONTRACT, [exchange])
    assert len(results) == 11
    observations = Observations(exchanges=[exchange], metrics=[], logs=[], upstream=[])
    spec = AgreementCheck(sources=["stream", "response", "metrics"], fields=["model", "tokens_in", "status"])
    assert agreement_check("a", "", spec, observations).status in (CheckStatus.PASSED, CheckStatus.FAILED)
