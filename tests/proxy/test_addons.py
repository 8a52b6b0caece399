"""The record and fault addons, driven through mitmproxy's test helpers without a running proxy."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow

from aigw_harness.proxy.cassette import load_cassette
from aigw_harness.proxy.faults import FaultInjector, FaultPlan, SSEEventFilter
from aigw_harness.proxy.record import Recorder
from aigw_harness.proxy.redaction import Redactor
from aigw_harness.sse import decode_all
from tests.proxy.conftest import SSE_FRAMES, sse_flow


class _Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _joined(produced: bytes | list[bytes]) -> bytes:
    if isinstance(produced, bytes):
        return produced
    # An empty bytes chunk would be written as the chunked-encoding terminator: never produce one.
    assert all(produced), produced
    return b"".join(produced)


def _feed(stream: object, frames: list[bytes], clock: _Clock | None = None) -> bytes:
    out = b""
    for frame in frames:
        if clock is not None:
            clock.now += 0.05
        out += _joined(stream(frame))  # type: ignore[operator]
    return out + _joined(stream(b""))  # type: ignore[operator]


async def test_recorder_writes_a_redacted_cassette_with_chunk_offsets(
    tmp_path: Path, generated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in generated.items():
        monkeypatch.setenv(name, value)
    clock = _Clock(1000.2)
    recorder = Recorder(clock=clock)
    with taddons.context(recorder) as tctx:
        tctx.configure(recorder, aigw_cassette_dir=str(tmp_path))
        flow = sse_flow(
            generated["CLOUDFLARE_ACCOUNT_ID"],
            generated["CLOUDFLARE_API_TOKEN"],
            generated["AIGW_GATEWAY_TOKEN"],
        )
        recorder.responseheaders(flow)
        assert flow.response is not None
        passed = _feed(flow.response.stream, SSE_FRAMES, clock)
        assert passed == b"".join(SSE_FRAMES)  # recording does not change the stream
        recorder.response(flow)
    [path] = recorder.written
    text = path.read_text()
    for value in generated.values():
        assert value not in text
    cassette = load_cassette(path)
    assert cassette.request.header("authorization") == "Bearer [REDACTED:authorization]"
    assert cassette.request.header("cf-aig-authorization") == "Bearer [REDACTED:cf-aig-authorization]"
    assert cassette.request.path.startswith("/v1/[REDACTED:CLOUDFLARE_ACCOUNT_ID]/my-gw/")
    assert [round(c.offset_ms) for c in cassette.chunks] == [250, 300, 350, 400]
    assert cassette.response is not None
    assert round(cassette.response.head_offset_ms) == 200
    assert [e.data for e in decode_all(cassette.body())][-1] == "[DONE]"
    assert cassette.complete


async def test_recorder_only_streams_event_streams(tmp_path: Path) -> None:
    recorder = Recorder()
    with taddons.context(recorder) as tctx:
        tctx.configure(recorder, aigw_cassette_dir=str(tmp_path))
        flow = tflow.tflow(resp=True)
        recorder.responseheaders(flow)
        assert flow.response is not None
        assert not flow.response.stream
        recorder.response(flow)
    cassette = load_cassette(recorder.written[0])
    assert cassette.body() == b"message"
    assert len(cassette.chunks) == 1


async def test_recorder_keeps_a_failed_exchange_as_incomplete(
    tmp_path: Path, generated: dict[str, str]
) -> None:
    recorder = Recorder()
    with taddons.context(recorder) as tctx:
        tctx.configure(recorder, aigw_cassette_dir=str(tmp_path))
        recorder.set_redactor(Redactor(dict(generated)))
        flow = tflow.tflow(err=True)
        assert flow.error is not None
        flow.error.msg = f"connection reset talking to {generated['CLOUDFLARE_ACCOUNT_ID']}"
        recorder.error(flow)
    cassette = load_cassette(recorder.written[0])
    assert not cassette.complete
    assert cassette.response is None
    assert cassette.error == "connection reset talking to [REDACTED:CLOUDFLARE_ACCOUNT_ID]"


async def test_recorder_rejects_a_file_as_directory(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    recorder = Recorder()
    with taddons.context(recorder) as tctx, pytest.raises(exceptions.OptionsError, match="not a directory"):
        tctx.configure(recorder, aigw_cassette_dir=str(target))


def _events(plan: FaultPlan, frames: list[bytes] = SSE_FRAMES) -> list[str]:
    return [e.data for e in decode_all(_feed(SSEEventFilter(plan), frames))]


def test_filter_cut_drop_and_corrupt() -> None:
    assert _events(FaultPlan(cut_after=2)) == ['{"response":"Hel","p":"abc"}', '{"response":"lo"}']
    assert _events(FaultPlan(drop=frozenset({1, 3}))) == [
        '{"response":"Hel","p":"abc"}',
        '{"response":"","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}',
    ]
    corrupted = _events(FaultPlan(corrupt=frozenset({0, 3})))
    with pytest.raises(json.JSONDecodeError):
        json.loads(corrupted[0])
    assert corrupted[3] == "[DO"


def test_filter_is_independent_of_chunking() -> None:
    whole = b"".join(SSE_FRAMES)
    byte_by_byte = [whole[i : i + 1] for i in range(len(whole))]
    plan = FaultPlan(drop=frozenset({0}), cut_after=3)
    assert _events(plan, byte_by_byte) == _events(plan)


async def test_injector_replaces_status_and_filters_selected_streams() -> None:
    injector = FaultInjector()
    with taddons.context(injector) as tctx:
        tctx.configure(injector, aigw_fault_status=503, aigw_fault_cut_after=1, aigw_fault_path="workers-ai")
        flow = sse_flow("acct-000000", "token-000000", "gwtok-000000")
        await injector.responseheaders(flow)
        assert flow.response is not None
        assert flow.response.status_code == 503
        assert [e.data for e in decode_all(_feed(flow.response.stream, SSE_FRAMES))] == [
            '{"response":"Hel","p":"abc"}'
        ]
        other = tflow.tflow(resp=True)
        await injector.responseheaders(other)
        assert other.response is not None
        assert other.response.status_code == 200
    assert injector.applied == 1


async def test_injector_and_recorder_chain_so_the_cassette_keeps_what_upstream_sent(tmp_path: Path) -> None:
    injector, recorder = FaultInjector(), Recorder()
    with taddons.context(recorder, injector) as tctx:
        tctx.configure(recorder, aigw_cassette_dir=str(tmp_path))
        tctx.configure(injector, aigw_fault_drop="0")
        flow = sse_flow("acct-000000", "token-000000", "gwtok-000000")
        recorder.responseheaders(flow)
        await injector.responseheaders(flow)
        assert flow.response is not None
        sent = _feed(flow.response.stream, SSE_FRAMES)
        recorder.response(flow)
    assert len(decode_all(sent)) == 3
    assert len(decode_all(load_cassette(recorder.written[0]).body())) == 4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aigw_fault_drop": "1,x"}, "aigw_fault_drop: 'x' is not an event index"),
        ({"aigw_fault_status": 42}, "status must be between 100 and 599, not 42"),
        ({"aigw_fault_path": "("}, "aigw_fault_path: not a regular expression"),
        ({"aigw_fault_delay_events": "2:100"}, "the proxy cannot wait between events"),
    ],
)
async def test_injector_rejects_bad_options(options: dict[str, object], message: str) -> None:
    injector = FaultInjector()
    with taddons.context(injector) as tctx, pytest.raises(exceptions.OptionsError, match=message):
        tctx.configure(injector, **options)


@given(cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
@example(cuts=[1, 2, 3])
def test_filter_result_does_not_depend_on_chunk_boundaries(cuts: list[int]) -> None:
    whole = b"".join(SSE_FRAMES).replace(b"\n", b"\r\n")
    points = sorted({c % (len(whole) + 1) for c in cuts} | {0, len(whole)})
    chunks = [whole[a:b] for a, b in itertools.pairwise(points) if b > a]
    plan = FaultPlan(drop=frozenset({1}), corrupt=frozenset({0}), cut_after=3)
    assert _events(plan, chunks) == _events(plan)
