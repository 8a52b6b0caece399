"""Response bodies and stream framing, byte for byte, read incrementally over a real socket."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fake_helpers import (
    ACCOUNT,
    CHAT,
    GATEWAY,
    NATIVE,
    api_path,
    auth,
    gateway_path,
    make_config,
    read_stream,
)

from aigw_fakes.clock import ManualClock
from aigw_fakes.server import FakeGateway

CREATED = 1_791_402_397
FIXED = {"text": "Hello world!", "prompt_tokens": 10, "stream": {"padding": False}}
# llama-3.1-8b-instruct-fp8-fast: 4,119 neurons per M input, 34,868 per M output; 10 in + 2 out
NATIVE_USAGE = '{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"neurons":0.110926}'
# gemma-4-26b-a4b-it: 9,088 in, 27,273 out
CHAT_USAGE = (
    '{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,'
    '"prompt_tokens_details":{"cached_tokens":0},"neurons":0.145426}'
)


@pytest_asyncio.fixture
async def fixed_client() -> AsyncIterator[httpx.AsyncClient]:
    async with FakeGateway.running(make_config(clock=ManualClock(CREATED))) as fake:
        fake.behaviour.load({"default": FIXED})
        async with httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http:
            yield http


async def test_native_stream_bytes(fixed_client: httpx.AsyncClient) -> None:
    read = await read_stream(
        fixed_client, gateway_path(f"workers-ai/{NATIVE}"), {"prompt": "hi", "stream": True}
    )
    assert read.status == 200
    assert read.headers["content-type"] == "text/event-stream"
    assert read.body == (
        b'data: {"response":"Hello"}\n\n'
        b'data: {"response":" world!"}\n\n'
        b'data: {"response":""}\n\n'
        b'data: {"response":"","usage":' + NATIVE_USAGE.encode() + b"}\n\n"
        b"data: [DONE]\n\n"
    )
    assert len(read.chunks) >= 1
    assert read.error is None
    assert not read.truncated


async def test_native_non_stream_envelope_bytes(fixed_client: httpx.AsyncClient) -> None:
    response = await fixed_client.post(
        gateway_path(f"workers-ai/{NATIVE}"), json={"prompt": "hi"}, headers=auth()
    )
    assert response.headers["content-type"] == "application/json"
    assert response.content == (
        b'{"result":{"response":"Hello world!","usage":' + NATIVE_USAGE.encode() + b'},"success":true,'
        b'"errors":[],"messages":[]}'
    )


async def test_chat_shaped_model_stream_bytes_on_the_run_path(fixed_client: httpx.AsyncClient) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    read = await read_stream(fixed_client, api_path(f"run/{CHAT}"), body, {"cf-aig-gateway-id": GATEWAY})
    completion_id = json.loads(read.events[0].data)["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", completion_id)
    head = (
        f'{{"choices":[{{"delta":{{%s}},"finish_reason":%s,"index":0,"logprobs":null,"matched_stop":null}}],'
        f'"created":{CREATED},"id":"{completion_id}","model":"@cf/google/gemma-4-26b-a4b-it-external",'
        f'"object":"chat.completion.chunk","usage":%s}}'
    )

    def usage(prompt: int, completion: int, neurons: str) -> str:
        return (
            f'{{"prompt_tokens":{prompt},"completion_tokens":{completion},'
            f'"total_tokens":{prompt + completion},'
            f'"prompt_tokens_details":{{"cached_tokens":0}},"neurons":{neurons}}}'
        )

    expected = [
        head % ('"content":"","reasoning_content":null,"role":"assistant"', "null", usage(10, 0, "0.09088")),
        head % ('"content":"Hello","reasoning_content":null', "null", usage(0, 1, "0.027273")),
        head % ('"content":" world!","reasoning_content":null', "null", usage(0, 1, "0.027273")),
        head % ('"reasoning_content":null', '"stop"', usage(0, 0, "0.0")),
        (
            f'{{"choices":[],"created":{CREATED},"id":"{completion_id}",'
            f'"model":"@cf/google/gemma-4-26b-a4b-it-external","object":"chat.completion.chunk",'
            f'"usage":{usage(0, 1, "0.027273")}}}'
        ),
        '{"response":"","usage":' + CHAT_USAGE + "}",
        "[DONE]",
    ]
    assert read.body == "".join(f"data: {line}\n\n" for line in expected).encode()


async def test_chat_completion_non_stream_on_the_openai_path(fixed_client: httpx.AsyncClient) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}
    response = await fixed_client.post(api_path("v1/chat/completions"), json=body, headers=auth())
    document = response.json()
    assert "result" not in document
    assert document == {
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "message": {"content": "Hello world!", "role": "assistant"},
            }
        ],
        "created": CREATED,
        "id": document["id"],
        "model": "@cf/google/gemma-4-26b-a4b-it-external",
        "object": "chat.completion",
        "usage": json.loads(CHAT_USAGE),
    }


async def test_openai_path_stream_has_cumulative_usage_chunk_and_no_native_frame(
    fixed_client: httpx.AsyncClient,
) -> None:
    body = {"model": NATIVE, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    plain = await read_stream(fixed_client, gateway_path("workers-ai/v1/chat/completions"), body)
    assert [e["choices"][0].get("finish_reason") for e in plain.json_events()] == [None, None, None, "stop"]
    assert plain.data()[-1] == "[DONE]"
    with_usage = await read_stream(
        fixed_client,
        gateway_path("workers-ai/v1/chat/completions"),
        {**body, "stream_options": {"include_usage": True}},
    )
    last = with_usage.json_events()[-1]
    assert last["choices"] == []
    assert last["usage"] == json.loads(NATIVE_USAGE)
    assert all("response" not in event for event in with_usage.json_events())


async def test_padding_is_random_length_lowercase_alphanumeric(client: httpx.AsyncClient) -> None:
    read = await read_stream(
        client, gateway_path(f"workers-ai/{NATIVE}"), {"prompt": "pad me", "stream": True}
    )
    frames = read.json_events()
    tokens = [f for f in frames if f.get("response")]
    assert tokens, "the stream carried no token frames"
    paddings = [f["p"] for f in tokens]
    assert all(re.fullmatch(r"[a-z0-9]{1,48}", p) for p in paddings)
    assert len({len(p) for p in paddings}) > 1
    # Two kinds, as observed: prefixes of the alphabet, and random characters.
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789" * 2
    prefixes = [p for p in paddings if alphabet.startswith(p)]
    randoms = [p for p in paddings if not alphabet.startswith(p)]
    assert prefixes
    assert randoms
    assert len(set("".join(randoms))) > 10
    assert frames[-2:] == [{"response": ""}, {"response": "", "usage": frames[-1]["usage"]}]
    assert read.data()[-1] == "[DONE]"


async def stream_body_with_seed(seed: int) -> bytes:
    config = make_config(seed=seed, clock=ManualClock(CREATED))
    async with FakeGateway.running(config) as fake, httpx.AsyncClient(base_url=fake.base_url) as http:
        read = await read_stream(http, gateway_path(f"workers-ai/{NATIVE}"), {"prompt": "x", "stream": True})
        return read.body


async def test_same_seed_and_input_give_the_same_bytes() -> None:
    first, again, other = (
        await stream_body_with_seed(7),
        await stream_body_with_seed(7),
        await stream_body_with_seed(8),
    )
    assert first == again
    assert other != first


@pytest.mark.parametrize("tokens", [0, 1, 5, 40])
async def test_token_count_is_controllable(client: httpx.AsyncClient, tokens: int) -> None:
    headers = {"x-aigw-behaviour": json.dumps({"tokens": tokens})}
    read = await read_stream(
        client, gateway_path(f"workers-ai/{NATIVE}"), {"prompt": "x", "stream": True}, headers
    )
    token_frames = [f for f in read.json_events() if f.get("response")]
    assert len(token_frames) == tokens
    assert read.json_events()[-1]["usage"]["completion_tokens"] == tokens


async def test_max_tokens_caps_the_completion_with_finish_reason_length(client: httpx.AsyncClient) -> None:
    body = {"model": NATIVE, "messages": [{"role": "user", "content": "x"}], "max_tokens": 3}
    headers = {**auth(), "x-aigw-behaviour": '{"tokens": 10}'}
    response = await client.post(api_path("v1/chat/completions"), json=body, headers=headers)
    document = response.json()
    assert document["choices"][0]["finish_reason"] == "length"
    assert document["usage"]["completion_tokens"] == 3


async def test_stream_only_when_asked(client: httpx.AsyncClient) -> None:
    response = await client.post(gateway_path(f"workers-ai/{NATIVE}"), json={"prompt": "x"}, headers=auth())
    assert response.headers["content-type"] == "application/json"
    response = await client.post(
        gateway_path(f"workers-ai/{NATIVE}"), json={"prompt": "x", "stream": False}, headers=auth()
    )
    assert response.headers["content-type"] == "application/json"
    assert ACCOUNT in str(response.request.url)


async def test_the_request_seed_changes_the_text(client: httpx.AsyncClient) -> None:
    path = gateway_path(f"workers-ai/{NATIVE}")
    texts = []
    for seed in (1, 1, 2):
        response = await client.post(path, json={"prompt": "same", "seed": seed}, headers=auth())
        texts.append(response.json()["result"]["response"])
    assert texts[0] == texts[1]
    assert texts[2] != texts[0]
