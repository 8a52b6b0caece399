"""The test Worker in workerd with ``env.AI`` on the real fake: what a scenario sees end to end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from aigw_fakes.config import DEFAULT_ACCOUNT_ID, DEFAULT_API_TOKEN, AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_harness.sse import SSEDecoder
from aigw_harness.worker.bridge import WorkerBridge
from aigw_harness.worker.wrangler import load_worker_config

from .conftest import CHAT_WORKER, needs_node

# One fake and one Worker for the module (starting workerd takes seconds); each test resets the fake
# and uses its own session.
pytestmark = [needs_node, pytest.mark.asyncio(loop_scope="module")]

SESSION = "22222222-2222-2222-2222-222222222222"
PRIMARY = "@cf/meta/llama-3.1-8b-instruct-fast"
FALLBACK = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
MODELS = {"MODEL_ID": PRIMARY, "FALLBACK_MODEL_ID": FALLBACK}


@dataclass
class Rig:
    fake: FakeGateway
    worker: WorkerBridge
    http: httpx.AsyncClient


def fake_config(*gateways: str) -> FakeConfig:
    account = AccountConfig(
        id=DEFAULT_ACCOUNT_ID,
        api_tokens=[DEFAULT_API_TOKEN],
        gateways=[GatewayConfig(id=g) for g in gateways],
    )
    return FakeConfig(accounts=[account])


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared_rig() -> AsyncIterator[Rig]:
    config = load_worker_config(CHAT_WORKER, "dev")
    async with (
        FakeGateway.running(config=fake_config("example-gateway")) as fake,
        WorkerBridge.running(config, fake.base_url, extra_vars=MODELS) as worker,
        httpx.AsyncClient(base_url=worker.url, headers={"x-tenant-id": "example"}, timeout=20) as http,
    ):
        yield Rig(fake, worker, http)


@pytest_asyncio.fixture(loop_scope="module")
async def rig(shared_rig: Rig) -> Rig:
    shared_rig.fake.reset()
    await shared_rig.worker.settle()
    shared_rig.worker.clear_events()
    return shared_rig


def sse_events(body: bytes) -> list[tuple[str, str]]:
    decoder = SSEDecoder()
    return [(e.event, e.data) for e in decoder.feed(body) + decoder.flush()]


async def chat(rig: Rig, message: str = "hello", **extra: object) -> httpx.Response:
    return await rig.http.post("/chat", json={"sessionId": SESSION, "message": message, **extra})


async def test_streaming_chat_with_real_usage_and_the_log_id(rig: Rig) -> None:
    rig.fake.behaviour.load({"default": {"tokens": 6, "ttfb_ms": 0, "token_delay_ms": 0}})
    response = await chat(rig)
    assert response.status_code == 200
    events = sse_events(response.content)
    kinds = [kind for kind, _ in events]
    assert kinds == ["message"] * 6 + ["done"]
    assert '"tokensOut":6' in events[-1][1]
    log_id = response.headers["x-aig-log-id"]
    assert len(log_id) == 36  # a UUIDv7 gateway log id (Cloudflare since 2026-10-08)
    (record,) = rig.fake.store.records()
    assert (record.request_type, record.gateway_id, record.stream, record.tokens_out) == (
        "binding",
        "example-gateway",
        True,
        6,
    )
    assert await rig.worker.settle() == []
    # getLog through the binding finds the same log, with created_at turned into a Date by the client.
    log = (await rig.http.get(f"/log/{log_id}")).json()["data"]
    assert log["id"] == log_id
    assert log["model"] == PRIMARY
    assert log["createdAtIsDate"] is True
    assert log["metadata"] == {"sessionId": SESSION, "route": "/chat", "tenantId": "example"}


async def test_usage_is_written_to_kv(rig: Rig) -> None:
    rig.fake.behaviour.load({"default": {"tokens": 4, "ttfb_ms": 0, "token_delay_ms": 0}})
    keys = await rig.worker.kv_list("USAGE", prefix="example:token-usage:daily:")
    before = int(await rig.worker.kv_get("USAGE", keys[0]) or 0) if keys else 0
    answer = await chat(rig, stream=False)
    streamed = await chat(rig)
    done = json.loads(sse_events(streamed.content)[-1][1])
    charged = int(answer.headers["x-tokens-total"]) + done["usage"]["totalTokens"]
    (key,) = await rig.worker.kv_list("USAGE", prefix="example:token-usage:daily:")
    assert int(await rig.worker.kv_get("USAGE", key) or 0) - before == charged
    assert done["usage"]["tokensOut"] == 4


async def test_binding_error_falls_back_and_the_error_text_is_cloudflares(rig: Rig) -> None:
    rig.fake.behaviour.load({"models": {PRIMARY: [{"error": 3040}], FALLBACK: [{"error": 3040}]}})
    response = await chat(rig, stream=False)
    assert response.status_code == 502
    assert response.json()["error"] == {"code": "ai_error", "message": "AI provider unavailable"}
    # The fallback's error, thrown by the binding with Workers AI's "code: message" text.
    assert response.headers["x-ai-error"].startswith("InferenceUpstreamError: 3040: ")
    assert [r.model for r in rig.fake.store.records()] == [PRIMARY, FALLBACK]


async def test_fallback_serves_when_the_primary_fails(rig: Rig) -> None:
    rig.fake.behaviour.load({"models": {PRIMARY: [{"error": "out_of_capacity"}]}, "default": {"tokens": 3}})
    response = await chat(rig, stream=False)
    assert response.status_code == 200
    assert response.headers["x-model-id"] == FALLBACK


async def test_a_stream_cut_mid_way_becomes_an_error_event(rig: Rig) -> None:
    rig.fake.behaviour.load(
        {"default": {"tokens": 10, "ttfb_ms": 0, "token_delay_ms": 0, "stream": {"cut_after_events": 3}}}
    )
    response = await chat(rig)
    kinds = [kind for kind, _ in sse_events(response.content)]
    assert kinds[-2:] == ["error", "done"]
    assert kinds.count("message") <= 3


async def test_patch_log_feedback_reaches_the_fake(rig: Rig) -> None:
    rig.fake.behaviour.load({"default": {"tokens": 2, "ttfb_ms": 0, "token_delay_ms": 0}})
    log_id = (await chat(rig, stream=False)).headers["x-aig-log-id"]
    patched = await rig.http.patch(f"/log/{log_id}", json={"feedback": 1, "score": 90})
    assert patched.json() == {"ok": True, "data": {"patched": log_id}}
    log = (await rig.http.get(f"/log/{log_id}")).json()["data"]
    assert log.get("feedback") == 1
    missing = await rig.http.get("/log/01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "AiGatewayLogNotFound"


async def test_a_mistyped_gateway_slug_surfaces_as_cloudflares_2001() -> None:
    async with (
        FakeGateway.running(config=fake_config("example-gw")) as fake,
        WorkerBridge.running(load_worker_config(CHAT_WORKER, "dev"), fake.base_url) as worker,
        httpx.AsyncClient(base_url=worker.url, headers={"x-tenant-id": "example"}, timeout=20) as http,
    ):
        response = await http.post("/chat", json={"sessionId": SESSION, "message": "hi", "stream": False})
    assert response.status_code == 502
    assert response.headers["x-ai-error"].startswith("AiGatewayError: 2001: ")
