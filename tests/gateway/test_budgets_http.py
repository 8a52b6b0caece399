"""Budgets through HTTP against the fake: UTC windows, concurrent requests with both stores, and a
ledger failure that must not cost the client its answer."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from aigw_fakes.server import FakeGateway
from aigw_harness.gateway import KVOptions, ManualClock

from .conftest import SESSION, GatewayFactory, tenant

HEADERS = {"x-tenant-id": "t1"}
CHAT = {"sessionId": SESSION, "message": "x" * 40, "stream": False}  # estimated input: 10 tokens


async def test_daily_budget_resets_at_utc_midnight(
    start_gateway: GatewayFactory, fake: FakeGateway, clock: ManualClock
) -> None:
    fake.behaviour.load({"default": {"tokens": 5, "prompt_tokens": 10}})
    config = tenant(tokenBudget={"daily": 20, "monthly": 1000})
    clock.set(clock.utcnow().replace(hour=23, minute=59, second=58))
    async with start_gateway(tenants_dir=None, tenants=[config]) as (gw, client):
        assert (await client.post("/chat", headers=HEADERS, json=CHAT)).status_code == 200
        refused = await client.post("/chat", headers=HEADERS, json=CHAT)  # 15 used + 10 > 20
        clock.advance(2)  # the next UTC day
        await client.delete(f"/chat/{SESSION}", headers=HEADERS)  # keep the estimate at 10
        again = await client.post("/chat", headers=HEADERS, json=CHAT)
    assert refused.json()["error"]["message"] == "Daily token budget exceeded"
    assert again.status_code == 200
    assert gw.ledger.usage() == {
        "t1:token-usage:daily:2026-02-07": 15,
        "t1:token-usage:daily:2026-02-08": 15,
        "t1:token-usage:monthly:2026-02": 30,
    }


async def _burst(client: httpx.AsyncClient, n: int) -> list[int]:
    # One session each, so that no request's history adds to another's estimate.
    bodies = [{**CHAT, "sessionId": str(uuid.uuid4())} for _ in range(n)]
    responses = await asyncio.gather(*(client.post("/chat", headers=HEADERS, json=body) for body in bodies))
    return [r.status_code for r in responses]


async def test_concurrent_requests_atomic_stays_within_budget(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"tokens": 10, "prompt_tokens": 10, "ttfb_ms": 2000}})
    config = tenant(tokenBudget={"daily": 100})
    async with start_gateway(tenants_dir=None, tenants=[config], output_reservation=10) as (gw, client):
        statuses = await _burst(client, 8)
    assert statuses.count(200) == 5  # 5 x (10 in + 10 reserved) fill the budget; the rest are refused
    assert statuses.count(429) == 3
    assert gw.ledger.usage()["t1:token-usage:daily:2026-02-07"] == 100


async def test_concurrent_requests_kv_overshoot_is_measured(
    start_gateway: GatewayFactory, fake: FakeGateway, clock: ManualClock
) -> None:
    fake.behaviour.load({"default": {"tokens": 10, "prompt_tokens": 10, "ttfb_ms": 2000}})
    config = tenant(tokenBudget={"daily": 100})
    kv = KVOptions(propagation_delay=0, write_interval=1)
    async with start_gateway(tenants_dir=None, tenants=[config], budget_store="kv", kv=kv) as (gw, client):
        statuses = await _burst(client, 8)
        records = list(gw.metrics.records)
    # Every pre-check read 0, so all were admitted; the store kept one write, the rest failed with KV's
    # error. Every answer still reached its client, and the ledger says what was lost.
    assert statuses == [200] * 8
    view = gw.ledger.view()
    day = "t1:token-usage:daily:2026-02-07"
    assert view.charged[day] == 160
    assert view.usage[day] == 20
    assert view.lost()[day] == 140
    failures = [r.ledger_error for r in records if r.ledger_error]
    assert len(failures) == 7
    assert all("KV PUT failed: 429 Too Many Requests" in f for f in failures)


async def test_ledger_failure_mid_stream_keeps_the_answer(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "kept answer"}})
    config = tenant(tokenBudget={"daily": 1000})
    async with start_gateway(tenants_dir=None, tenants=[config], budget_store="kv") as (gw, client):
        first = await client.post("/chat", headers=HEADERS, json={**CHAT, "stream": True})
        second = await client.post("/chat", headers=HEADERS, json={**CHAT, "stream": True})  # same second
    for response in (first, second):
        assert b'"content":" answer"' in response.content
        assert b"event: error" not in response.content
    assert gw.metrics.last.ledger_error is not None
    assert gw.metrics.last.status == "success"
    assert len(fake.store.records()) == 2  # and no fallback was tried


async def test_metrics_jsonl_observer(start_gateway: GatewayFactory, fake: FakeGateway, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "usage.jsonl"
    async with start_gateway(metrics_jsonl=path) as (gw, client):
        await client.post("/chat", headers={"x-tenant-id": "example"}, json=CHAT)
        await client.post("/chat", headers={"x-tenant-id": "example"}, content=b"{")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["status"] for line in lines] == ["success", "rejected"]
    assert lines[0] == gw.metrics.records[0].as_dict()
    assert lines[0]["tenant_id"] == "example"
    assert lines[0]["gateway_id"] == "example-gateway"
    assert lines[0]["cost_usd"] > 0
