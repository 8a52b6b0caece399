"""Each platform quirk, turned on, makes the reference gateway behave as the platform's code does, so that
scenarios meant to expose those behaviours can be tried on the fake."""

from __future__ import annotations

import json
from typing import Any

import httpx

from aigw_fakes.server import FakeGateway
from aigw_harness.gateway import PlatformQuirks
from aigw_harness.sse import decode_all

from .conftest import LLAMA, LLAMA_FAST, SESSION, GatewayFactory, tenant

EXAMPLE = {"x-tenant-id": "example"}
WITH_FALLBACK = {"MODEL_ID": LLAMA_FAST, "FALLBACK_MODEL_ID": LLAMA}
CHAT = {"sessionId": SESSION, "message": "hello"}


def payloads(response: httpx.Response) -> list[tuple[str, Any]]:
    return [(e.event, json.loads(e.data)) for e in decode_all(response.content)]


async def test_stream_header_names_the_primary(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"error": "internal_error"}]}})
    quirks = PlatformQuirks(stream_model_header_primary=True)
    async with start_gateway(env=WITH_FALLBACK, quirks=quirks) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA_FAST
    assert payloads(response)[-1][1]["usage"]["modelId"] == LLAMA


async def test_stream_usage_estimates_only(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "Hello world", "prompt_tokens": 40}})
    quirks = PlatformQuirks(stream_usage_estimates_only=True)
    async with start_gateway(quirks=quirks) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    usage = payloads(response)[-1][1]["usage"]
    assert (usage["tokensIn"], usage["tokensOut"], usage["totalTokens"]) == (2, 3, 5)
    assert gw.metrics.last.ledger_charged == 5


async def test_done_names_the_last_failed_candidate(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"error": "internal_error"}})
    quirks = PlatformQuirks(done_names_last_candidate=True)
    async with start_gateway(env=WITH_FALLBACK, quirks=quirks) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    kind, done = payloads(response)[-1]
    assert kind == "done"
    assert list(done["usage"]) == ["modelId", "tokensIn", "latencyMs"]
    assert (done["usage"]["modelId"], done["usage"]["tokensIn"]) == (LLAMA, 2)

    fake.behaviour.load({"default": {"text": "a b c", "stream": {"cut_after_events": 1}}})
    async with start_gateway(quirks=quirks) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert payloads(response)[-2:] == [
        ("error", {"code": "ai_error", "message": "AI provider unavailable"}),
        ("done", {"done": True}),
    ]


async def test_truncation_is_success(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "cut off", "stream": {"done": False, "usage_frame": False}}})
    async with start_gateway(quirks=PlatformQuirks(truncation_is_success=True)) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [k for k, _ in payloads(response)] == ["message", "message", "done"]
    assert gw.metrics.last.status == "success"


async def test_no_charge_on_stream_failure(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "a b c d", "stream": {"cut_after_events": 2}}})
    async with start_gateway(quirks=PlatformQuirks(no_charge_on_stream_failure=True)) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [k for k, _ in payloads(response)][-2:] == ["error", "done"]
    assert gw.metrics.last.ledger_charged == 0
    assert gw.ledger.view().usage == {}
    assert gw.metrics.last.tokens_out == 1  # still measured, just not charged


async def test_append_before_budget_check_keeps_refused_turns(start_gateway: GatewayFactory) -> None:
    tiny = tenant(tokenBudget={"daily": 1})
    quirks = PlatformQuirks(append_before_budget_check=True)
    async with start_gateway(tenants_dir=None, tenants=[tiny], quirks=quirks) as (_, client):
        headers = {"x-tenant-id": "t1"}
        refused = await client.post("/chat", headers=headers, json={**CHAT, "message": "x" * 8})
        history = (await client.get(f"/chat/{SESSION}/history", headers=headers)).json()["data"]["messages"]
    assert refused.status_code == 429
    assert [m["content"] for m in history] == ["x" * 8]
