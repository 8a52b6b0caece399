"""Scripted behaviour through HTTP: per-call scripts, timing, errors and every mid-stream fault."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import httpx
import pytest
from fake_helpers import GATEWAY, NATIVE, SMALL, TOKEN, api_path, auth, gateway_path, make_config, read_stream

from aigw_fakes.datafiles import DataFileError
from aigw_fakes.server import FakeGateway
from aigw_fakes.state.fake import FakeState
from aigw_harness.sse import decode_all

RUN = gateway_path(f"workers-ai/{NATIVE}")
STREAM = {"prompt": "x", "stream": True}


def behaviour(**outcome: object) -> dict[str, str]:
    return {"x-aigw-behaviour": json.dumps(outcome)}


async def status_of(client: httpx.AsyncClient, path: str = RUN, **outcome: object) -> int:
    headers = {**auth(), **(behaviour(**outcome) if outcome else {})}
    response = await client.post(path, json={"prompt": "x"}, headers=headers)
    return response.status_code


async def test_script_per_model_per_call_then_default(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    fake.behaviour.load(
        {
            "default": {"tokens": 2},
            "models": {NATIVE: [{"times": 2, "error": 3040}, {"times": 1, "error": "timeout"}]},
        }
    )
    assert [await status_of(client) for _ in range(4)] == [429, 429, 408, 200]
    assert await status_of(client, gateway_path(f"workers-ai/{SMALL}")) == 200
    assert fake.behaviour.calls == [4]
    labels = [r.behaviour for r in fake.store.records()]
    assert labels == [
        "rule 0 step 0 (call 1)",
        "rule 0 step 0 (call 2)",
        "rule 0 step 1 (call 3)",
        "default",
        "default",
    ]


async def test_rules_match_on_gateway_stream_and_globs(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    fake.behaviour.load(
        {
            "rules": [
                {"match": {"model": "@cf/meta/*", "stream": True}, "script": [{"error": 3040}]},
                {"match": {"gateway": "other-*"}, "script": [{"error": 3007}]},
            ]
        }
    )
    streamed = await client.post(RUN, json=STREAM, headers=auth())
    assert streamed.status_code == 429
    assert await status_of(client) == 200


async def test_header_outcome_merges_over_the_scripted_step(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    fake.behaviour.load({"default": {"tokens": 3, "stream": {"padding": False}}})
    read = await read_stream(client, RUN, STREAM, behaviour(stream={"done": False}))
    assert read.data()[-1] != "[DONE]"
    assert all("p" not in frame for frame in read.json_events())
    assert len([f for f in read.json_events() if f.get("response")]) == 3


async def test_time_to_first_byte_and_recorded_durations(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    # time_scale 0.001: 60 s scripted is 60 ms of real time; the store reports scripted time.
    read = await read_stream(client, RUN, STREAM, behaviour(ttfb_ms=60_000, tokens=2))
    assert read.chunks[0][0] >= 0.055
    [record] = fake.store.records()
    assert record.ttfb_ms is not None
    assert 60_000 <= record.ttfb_ms < 200_000
    assert record.duration_ms >= record.ttfb_ms
    assert record.complete


async def test_inter_token_delay_paces_events(client: httpx.AsyncClient) -> None:
    read = await read_stream(client, RUN, STREAM, behaviour(token_delay_ms=25_000, tokens=4))
    token_times = [t for t, chunk in read.chunks if b'"p":' in chunk]
    assert len(token_times) == 4
    gaps = [b - a for a, b in itertools.pairwise(token_times)]
    assert all(gap >= 0.02 for gap in gaps), gaps


async def test_request_timeout_applies_to_the_first_byte(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    slow = {**auth(), **behaviour(ttfb_ms=5_000_000), "cf-aig-request-timeout": "100000"}
    response = await client.post(RUN, json={"prompt": "x"}, headers=slow)
    assert response.status_code == 408
    assert response.json()["errors"] == [{"message": "Request timeout", "code": 3007}]
    # Once the first byte is out, a slow stream is not cut by the timeout.
    paced = {**behaviour(ttfb_ms=10_000, token_delay_ms=40_000, tokens=3), "cf-aig-request-timeout": "50000"}
    read = await read_stream(client, RUN, STREAM, paced)
    assert read.status == 200
    assert read.data()[-1] == "[DONE]"
    assert fake.store.records()[0].status_code == 408


async def test_cut_after_events(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    read = await read_stream(client, RUN, STREAM, behaviour(tokens=6, stream={"cut_after_events": 3}))
    assert read.error is not None
    assert len(read.events) == 3
    assert not any(e.is_done_marker() for e in read.events)
    [record] = fake.store.records()
    assert record.cut
    assert record.status_code == 200
    # The server keeps serving after a cut.
    assert (await client.post(RUN, json={"prompt": "x"}, headers=auth())).status_code == 200


async def test_cut_after_bytes_streamed_and_not(client: httpx.AsyncClient) -> None:
    read = await read_stream(client, RUN, STREAM, behaviour(tokens=6, stream={"cut_after_bytes": 50}))
    assert read.error is not None
    assert len(read.body) == 50
    headers = {**auth(), **behaviour(stream={"cut_after_bytes": 20})}
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(RUN, json={"prompt": "x"}, headers=headers)


async def test_stall_pauses_between_events(client: httpx.AsyncClient) -> None:
    read = await read_stream(
        client, RUN, STREAM, behaviour(tokens=4, stream={"stall": {"after_events": 2, "seconds": 60}})
    )
    # The bytes after the stall cannot leave the server before it ends (60 s x the test time scale), however
    # late a loaded machine reads the chunks before it; a gap between reads would depend on the reader.
    assert read.chunks[-1][0] >= 0.06
    assert read.data()[-1] == "[DONE]"


async def test_malformed_frame(client: httpx.AsyncClient) -> None:
    read = await read_stream(
        client, RUN, STREAM, behaviour(tokens=3, stream={"malformed_frame": {"after_events": 1}})
    )
    assert read.events[1].data == '{"response":"'
    with pytest.raises(json.JSONDecodeError):
        json.loads(read.events[1].data)
    assert read.data()[-1] == "[DONE]"


async def test_error_frame_ends_the_stream(client: httpx.AsyncClient) -> None:
    read = await read_stream(
        client, RUN, STREAM, behaviour(tokens=5, stream={"error_frame": {"after_events": 2}})
    )
    assert len(read.events) == 3
    assert json.loads(read.events[-1].data) == {
        "errors": [{"message": "Capacity temporarily exceeded, please try again.", "code": 3040}]
    }
    assert read.error is None


async def test_missing_usage_frame_and_done(client: httpx.AsyncClient) -> None:
    read = await read_stream(
        client, RUN, STREAM, behaviour(tokens=2, stream={"usage_frame": False, "done": False})
    )
    assert read.data() == [read.events[0].data, read.events[1].data, '{"response":""}']
    assert read.error is None


async def test_keepalive_comments(client: httpx.AsyncClient) -> None:
    outcome = {"tokens": 4, "stream": {"keepalive": {"before_first": 2, "every_events": 2}}}
    read = await read_stream(client, RUN, STREAM, behaviour(**outcome))
    assert read.body.startswith(b": keep-alive\n\n: keep-alive\n\ndata: ")
    assert read.comments == 2 + 7 // 2  # 4 tokens, empty, usage, [DONE]: 7 events


@pytest.mark.parametrize(("ending", "raw"), [("crlf", b"\r\n\r\n"), ("cr", b"\r\r")])
async def test_line_endings_decode_to_the_same_events(
    client: httpx.AsyncClient, ending: str, raw: bytes
) -> None:
    fixed = {"text": "one two three", "stream": {"padding": False}}
    plain = await read_stream(client, RUN, STREAM, behaviour(**fixed))
    other = await read_stream(
        client, RUN, STREAM, behaviour(**{**fixed, "stream": {"padding": False, "line_ending": ending}})
    )
    assert raw in other.body
    assert other.body.replace(raw, b"\n\n") == plain.body
    assert other.events == plain.events


async def test_split_writes_reach_the_client_as_small_chunks(client: httpx.AsyncClient) -> None:
    read = await read_stream(client, RUN, STREAM, behaviour(tokens=3, stream={"writes": {"split_every": 7}}))
    assert max(len(chunk) for _, chunk in read.chunks) <= 7
    assert [e.data for e in decode_all(read.body)] == read.data()
    assert read.data()[-1] == "[DONE]"


async def test_coalesced_writes(client: httpx.AsyncClient) -> None:
    outcome = {"tokens": 5, "token_delay_ms": 5_000, "stream": {"writes": {"coalesce": 0}}}
    read = await read_stream(client, RUN, STREAM, behaviour(**outcome))
    assert len(read.chunks) == 1
    assert len(read.events) == 8


async def test_behaviour_file_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "behaviour.yaml"
    path.write_text(f'models:\n  "{NATIVE}":\n    - times: 1\n      error: out_of_capacity\n')
    config = make_config(behaviour_file=str(path))
    async with FakeGateway.running(config) as fake, httpx.AsyncClient(base_url=fake.base_url) as http:
        assert await status_of(http) == 429
        assert await status_of(http) == 200
        fake.reset()
        assert await status_of(http) == 429


def test_behaviour_file_with_mistakes_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "behaviour.yaml"
    path.write_text("default:\n  stream:\n    cut_after_events: -1\n    line_ending: unix\n")
    with pytest.raises(DataFileError) as caught:
        FakeState(make_config(behaviour_file=str(path)))
    message = str(caught.value)
    assert f"{path}:3: default.stream.cut_after_events:" in message
    assert f"{path}:4: default.stream.line_ending:" in message


async def test_api_host_through_a_gateway_is_scripted_and_logged(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    fake.behaviour.load({"rules": [{"match": {"gateway": GATEWAY}, "script": [{"error": 3040}]}]})
    direct = await client.post(api_path(f"run/{NATIVE}"), json={"prompt": "x"}, headers=auth())
    assert direct.status_code == 200
    assert "cf-aig-log-id" not in direct.headers
    routed = await client.post(
        api_path(f"run/{NATIVE}"), json={"prompt": "x"}, headers={**auth(), "cf-aig-gateway-id": GATEWAY}
    )
    assert routed.status_code == 429
    assert "cf-aig-log-id" in routed.headers
    assert [r.gateway_id for r in fake.store.records()] == [None, GATEWAY]
    assert TOKEN not in json.dumps([r.to_json() for r in fake.store.records()])


async def test_client_disconnect_during_a_stall_ends_the_response(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    # A 10-minute scripted stall (600 ms at this time scale); the client leaves after the first event.
    outcome = {"tokens": 3, "stream": {"stall": {"after_events": 1, "seconds": 600}}}
    headers = {**auth(), **behaviour(**outcome)}
    async with client.stream("POST", RUN, json=STREAM, headers=headers) as response:
        async for _ in response.aiter_raw():
            break
    for _ in range(100):
        if fake.store.records()[0].complete:
            break
        await asyncio.sleep(0.005)
    [record] = fake.store.records()
    assert record.complete
    assert record.cut
    assert record.duration_ms < 600_000


async def test_concurrent_paced_streams_all_complete(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    outcome = {"tokens": 5, "ttfb_ms": 20_000, "token_delay_ms": 10_000, "jitter_ms": 5_000}
    reads = await asyncio.gather(*(read_stream(client, RUN, STREAM, behaviour(**outcome)) for _ in range(30)))
    assert all(read.data()[-1] == "[DONE]" for read in reads)
    assert all(len([f for f in read.json_events() if f.get("response")]) == 5 for read in reads)
    records = fake.store.records()
    assert len(records) == 30
    assert all(r.complete and not r.cut and r.status_code == 200 for r in records)
    assert len({r.id for r in records}) == 30
