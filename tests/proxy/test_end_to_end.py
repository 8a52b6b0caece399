"""mitmproxy in reverse-proxy mode on loopback in front of the fake: record, fault, then replay."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import httpx

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_harness.proxy.cassette import load_cassettes
from aigw_harness.proxy.mitm import ProxySettings, running_proxy
from aigw_harness.proxy.redaction import Redactor
from aigw_harness.proxy.replay import CassetteLibrary, running_replay
from aigw_harness.sse import decode_all


async def test_record_through_the_proxy_then_replay(tmp_path: Path, generated: dict[str, str]) -> None:
    config = FakeConfig(
        accounts=[
            AccountConfig(
                id=generated["CLOUDFLARE_ACCOUNT_ID"],
                api_tokens=[generated["CLOUDFLARE_API_TOKEN"]],
                gateways=[GatewayConfig(id="gw")],
            )
        ],
        time_scale=0.01,
    )
    redactor = Redactor(dict(generated))
    path = f"/v1/{generated['CLOUDFLARE_ACCOUNT_ID']}/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct-fp8-fast"
    headers = {
        "authorization": f"Bearer {generated['CLOUDFLARE_API_TOKEN']}",
        "cf-aig-authorization": f"Bearer {generated['AIGW_GATEWAY_TOKEN']}",
        "cf-aig-metadata": json.dumps({"tenantId": "t1"}),
    }
    body = {"stream": True, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6}
    async with FakeGateway.running(config) as fake:
        settings = ProxySettings(
            upstreams=[fake.base_url], cassette_dir=tmp_path, fault_options={"aigw_fault_cut_after": 2}
        )
        async with (
            running_proxy(settings, redactor) as ([proxy], recorder, injector),
            httpx.AsyncClient(base_url=proxy, timeout=5) as http,
        ):
            streamed = await http.post(path, json=body, headers=headers)
            plain = await http.post(path, json=body | {"stream": False}, headers=headers)
    # The client saw the fault (two events, no [DONE]); the cassette kept what the upstream sent.
    assert streamed.status_code == 200
    events = decode_all(streamed.content)
    assert len(events) == 2
    assert all(json.loads(e.data)["response"] for e in events)
    assert plain.json()["result"]["usage"]["completion_tokens"] == 6
    assert injector.applied == 2
    assert len(recorder.written) == 2
    texts = [file.read_text() for file in recorder.written]
    for value in generated.values():
        assert all(value not in text for text in texts)
    [(_, stream_cassette), (_, json_cassette)] = load_cassettes(tmp_path)
    assert decode_all(stream_cassette.body())[-1].data == "[DONE]"
    assert len(stream_cassette.chunks) >= 2
    offsets = [c.offset_ms for c in stream_cassette.chunks]
    assert offsets == sorted(offsets)
    assert stream_cassette.request.header("cf-aig-authorization") == "Bearer [REDACTED:cf-aig-authorization]"
    assert json_cassette.response is not None
    assert json_cassette.response.header("content-type") == "application/json"

    # Replay against a different account id, as a target configured for replay would send.
    library = CassetteLibrary.from_directory(tmp_path, Redactor({"CLOUDFLARE_ACCOUNT_ID": "replay-account"}))
    async with running_replay(library, time_scale=0) as url, httpx.AsyncClient(base_url=url) as http:
        replay_path = "/v1/replay-account/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct-fp8-fast"
        again = await http.post(replay_path, json=body)
    assert stream_cassette.response is not None
    assert again.headers["cf-aig-log-id"] == stream_cassette.response.header("cf-aig-log-id")
    assert again.content == stream_cassette.body()
    assert decode_all(again.content)[-1].data == "[DONE]"
    # A listener or connection the proxy left open would surface here as a ResourceWarning (an error).
    gc.collect()
