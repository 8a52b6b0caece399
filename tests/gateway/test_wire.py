"""The wire client's chunked decoding: any split of a chunked body decodes to the same bytes, and broken
framing is a ``WireError``; and the client against a real server keeps connections alive."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aigw_fakes.server import FakeGateway
from aigw_harness.gateway.wire import WireError, WirePool, _Chunks

from .conftest import FAKE_ACCOUNT, FAKE_TOKEN, LLAMA_FAST


def chunked(parts: list[bytes], trailer: bytes = b"") -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
    return body + b"0\r\n" + trailer + b"\r\n"


@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    st.sampled_from([b"", b"x-trailer: 1\r\n"]),
)
@example([b"data: {}\n\n"], [3, 4], b"")
def test_any_split_decodes_to_the_same_body(parts: list[bytes], cuts: list[int], trailer: bytes) -> None:
    raw = chunked(parts, trailer)
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    decoder = _Chunks()
    out = b"".join(decoder.feed(piece) for piece in pieces if piece)
    assert out == b"".join(parts)
    assert decoder.done


def test_everything_one_read_brings_comes_out_at_once() -> None:
    decoder = _Chunks()
    assert decoder.feed(chunked([b"one ", b"two ", b"three"])) == b"one two three"
    assert decoder.done


@pytest.mark.parametrize("raw", [b"zz\r\n", b"3\r\nabcX\r\n", b"-1\r\n"])
def test_broken_framing_is_a_wire_error(raw: bytes) -> None:
    with pytest.raises(WireError):
        _Chunks().feed(raw)


async def test_the_client_reads_both_bodies_and_keeps_the_connection(fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "a b c"}})
    pool = WirePool()
    url = f"{fake.base_url}/v1/{FAKE_ACCOUNT}/gw1/workers-ai/{LLAMA_FAST}"
    headers = {"authorization": f"Bearer {FAKE_TOKEN}", "content-type": "application/json"}
    bodies = []
    try:
        for stream in (False, True, False):
            payload = json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": stream})
            response = await pool.request(url, headers, payload.encode())
            assert response.status_code == 200
            bodies.append(await response.aread())
            await response.aclose()
        assert sum(len(idle) for idle in pool._idle.values()) == 1  # one connection served all three
    finally:
        await pool.aclose()
    assert json.loads(bodies[0])["result"]["response"] == "a b c"
    assert bodies[1].rstrip().endswith(b"data: [DONE]")
