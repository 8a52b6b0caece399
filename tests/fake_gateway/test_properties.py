"""Properties, checked with hypothesis: however the fake splits or coalesces its writes, and whatever
line ending it uses, a client decodes the same events; metadata rules; behaviour scripts."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import httpx
import pytest
from fake_helpers import NATIVE, auth, fake_in_thread, gateway_path, make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigw_fakes.behaviour import BehaviourController, BehaviourDocument, CallInfo, StreamFaults, Writes
from aigw_fakes.gateway.metadata import parse_metadata
from aigw_fakes.models.streams import Frame, plan_writes
from aigw_fakes.server import FakeGateway
from aigw_harness.sse import ServerSentEvent, SSEDecoder

RUN = gateway_path(f"workers-ai/{NATIVE}")
FIXED = {"text": "Hello, wörld: a stream in pieces 🚀", "prompt_tokens": 5, "stream": {"padding": False}}


def decode_chunks(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


@pytest.fixture(scope="module")
def threaded_fake() -> Iterator[FakeGateway]:
    with fake_in_thread(make_config()) as fake:
        yield fake


def stream_chunks(fake: FakeGateway, stream: dict[str, object]) -> list[bytes]:
    outcome = {**FIXED, "stream": {**FIXED["stream"], **stream}}  # type: ignore[dict-item]
    headers = {**auth(), "x-aigw-behaviour": json.dumps(outcome)}
    with (
        httpx.Client(base_url=fake.base_url, timeout=10) as client,
        client.stream("POST", RUN, json={"prompt": "x", "stream": True}, headers=headers) as response,
    ):
        return list(response.iter_raw())


writes = st.fixed_dictionaries(
    {},
    optional={
        "coalesce": st.integers(0, 12),
        "split_every": st.integers(1, 64),
        "split_at": st.lists(st.integers(1, 700), max_size=12),
    },
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=writes, ending=st.sampled_from(["lf", "crlf", "cr"]))
def test_any_split_of_the_stream_over_http_yields_the_same_events(
    threaded_fake: FakeGateway, plan: dict[str, object], ending: str
) -> None:
    baseline = decode_chunks(stream_chunks(threaded_fake, {}))
    assert baseline[-1].data == "[DONE]"
    chunks = stream_chunks(threaded_fake, {"writes": plan, "line_ending": ending})
    assert decode_chunks(chunks) == baseline
    split_every = plan.get("split_every")
    if isinstance(split_every, int):
        assert max(len(chunk) for chunk in chunks) <= split_every


FRAMES = [
    Frame('{"response":"a"}', token=True),
    Frame('{"response":"é\\u2028b"}', token=True),
    Frame("[DONE]"),
]


@given(
    plan=writes,
    ending=st.sampled_from(["lf", "crlf", "cr"]),
    cut=st.one_of(st.none(), st.integers(0, 120)),
    client_cuts=st.lists(st.integers(0, 200), max_size=10),
)
def test_planned_writes_keep_bytes_and_events(
    plan: dict[str, object], ending: str, cut: int | None, client_cuts: list[int]
) -> None:
    plain = plan_writes(FRAMES, StreamFaults(), token_delay=0, jitter=0, rng=random.Random(0))
    faults = StreamFaults.model_validate({"writes": plan, "line_ending": ending, "cut_after_bytes": cut})
    planned = plan_writes(FRAMES, faults, token_delay=0, jitter=0, rng=random.Random(0))
    body = b"".join(w.data for w in planned)
    expected = b"".join(w.data for w in plain).replace(
        b"\n", {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}[ending]
    )
    if cut is None:
        assert body == expected
        assert not any(w.cut_after for w in planned)
        pieces = [
            body[a:b]
            for a, b in zip([0, *sorted(client_cuts)], [*sorted(client_cuts), len(body)], strict=True)
        ]
        assert decode_chunks(pieces) == decode_chunks([b"".join(w.data for w in plain)])
    else:
        assert body == expected[:cut]
        assert planned[-1].cut_after


scalar = st.one_of(st.text(max_size=8), st.integers(-(10**9), 10**9), st.booleans(), st.floats(-1e6, 1e6))
value = st.one_of(
    scalar, st.none(), st.dictionaries(st.text(max_size=3), scalar, max_size=2), st.lists(scalar, max_size=2)
)


@given(st.dictionaries(st.text(max_size=10), value, max_size=9))
def test_metadata_rules(document: dict[str, object]) -> None:
    stored = parse_metadata(json.dumps(document))
    if any(v is None or isinstance(v, dict | list) for v in document.values()):
        assert stored is None
    else:
        assert stored == dict(list(document.items())[:5])


@given(
    times=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    open_ended=st.booleans(),
    calls=st.integers(1, 20),
)
def test_scripts_answer_calls_in_order(times: list[int], open_ended: bool, calls: int) -> None:
    script: list[dict[str, object]] = [{"times": t, "tokens": i} for i, t in enumerate(times)]
    if open_ended:
        script.append({"tokens": 99})
    controller = BehaviourController(BehaviourDocument.model_validate({"rules": [{"script": script}]}))
    expected: list[int | None] = [i for i, t in enumerate(times) for _ in range(t)]
    got = [controller.choose(CallInfo(NATIVE)).outcome.tokens for _ in range(calls)]
    tail: int | None = 99 if open_ended else None  # exhausted scripts fall back to the default (tokens unset)
    assert got == (expected + [tail] * calls)[:calls]
    controller.reset()
    assert controller.calls == [0]


def test_writes_model_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Writes.model_validate({"split_every": 0})
