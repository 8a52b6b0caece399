"""The official SDKs work against the fake unchanged: cloudflare (``client.ai.run``) and openai (chat
completions, streaming with ``include_usage``, both OpenAI-compatible gateway paths and the API path)."""

from __future__ import annotations

import cloudflare
import pytest
from cloudflare import AsyncCloudflare
from fake_helpers import ACCOUNT, CHAT, GATEWAY, NATIVE, TOKEN
from openai import AsyncOpenAI

from aigw_fakes.server import FakeGateway


def cloudflare_client(fake: FakeGateway, token: str = TOKEN) -> AsyncCloudflare:
    return AsyncCloudflare(api_token=token, base_url=fake.api_base_url, max_retries=0)


async def test_cloudflare_sdk_ai_run_native_model(fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "Hello from the fake", "prompt_tokens": 12}})
    async with cloudflare_client(fake) as client:
        result = await client.ai.run(NATIVE, account_id=ACCOUNT, prompt="Say hello")
    assert isinstance(result, dict)
    assert result["response"] == "Hello from the fake"
    assert result["usage"]["prompt_tokens"] == 12
    assert result["usage"]["completion_tokens"] == 4


async def test_cloudflare_sdk_ai_run_chat_shaped_model_with_messages(fake: FakeGateway) -> None:
    async with cloudflare_client(fake) as client:
        result = await client.ai.run(CHAT, account_id=ACCOUNT, messages=[{"role": "user", "content": "hi"}])
    assert isinstance(result, dict)
    assert result["object"] == "chat.completion"
    assert result["choices"][0]["message"]["role"] == "assistant"


async def test_cloudflare_sdk_errors(fake: FakeGateway) -> None:
    async with cloudflare_client(fake, "wrong") as client:
        with pytest.raises(cloudflare.AuthenticationError) as auth_error:
            await client.ai.run(NATIVE, account_id=ACCOUNT, prompt="x")
    assert auth_error.value.status_code == 401
    async with cloudflare_client(fake) as client:
        with pytest.raises(cloudflare.BadRequestError) as bad:
            await client.ai.run("@cf/meta/unknown", account_id=ACCOUNT, prompt="x")
        assert "No such model @cf/meta/unknown or task" in str(bad.value)
        fake.behaviour.load({"default": {"error": "out_of_capacity"}})
        with pytest.raises(cloudflare.RateLimitError):
            await client.ai.run(NATIVE, account_id=ACCOUNT, prompt="x")


@pytest.mark.parametrize("where", ["api", "gateway-workers-ai", "gateway-compat"])
async def test_openai_sdk_chat_completion(fake: FakeGateway, where: str) -> None:
    base_url, model = {
        "api": (f"{fake.api_base_url}/accounts/{ACCOUNT}/ai/v1", NATIVE),
        "gateway-workers-ai": (f"{fake.gateway_url(GATEWAY)}/workers-ai/v1", NATIVE),
        "gateway-compat": (f"{fake.gateway_url(GATEWAY)}/compat", f"workers-ai/{NATIVE}"),
    }[where]
    fake.behaviour.load({"default": {"text": "one two three", "prompt_tokens": 9}})
    async with AsyncOpenAI(api_key=TOKEN, base_url=base_url, max_retries=0) as client:
        completion = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "one two three"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (9, 3)

        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = ""
        usage = None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            elif chunk.usage is not None:
                usage = chunk.usage
        assert text == "one two three"
        assert usage is not None
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 3, 12)


async def test_openai_sdk_streaming_a_chat_shaped_model(fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"tokens": 5}})
    base_url = f"{fake.gateway_url(GATEWAY)}/workers-ai/v1"
    async with AsyncOpenAI(api_key=TOKEN, base_url=base_url, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        pieces = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
    assert len([p for p in pieces if p]) == 5


async def test_openai_sdk_sees_gateway_errors(fake: FakeGateway) -> None:
    import openai

    fake.behaviour.load({"default": {"error": "rate_limited"}})
    base_url = f"{fake.gateway_url(GATEWAY)}/compat"
    async with AsyncOpenAI(api_key=TOKEN, base_url=base_url, max_retries=0) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model=f"workers-ai/{NATIVE}", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.status_code == 429
