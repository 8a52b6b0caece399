"""The spike Worker (harness/live/spike_worker) in workerd through the Worker bridge, env.AI aimed at the
fake: the binding path of the spike, exercised here with the real Worker source."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_harness.errors import TargetUnavailable
from aigw_harness.live.client import CloudflareClient
from aigw_harness.live.cost import CostCaps, CostGuard
from aigw_harness.live.credentials import LiveCredentials, Secret
from aigw_harness.live.spike import WorkerClient, default_plan
from aigw_harness.sse import decode_all

SPIKE_WORKER = Path(__file__).parents[2] / "harness" / "live" / "spike_worker" / "wrangler.jsonc"
KEY = "spike-key-for-tests"


def _bridge_missing() -> str | None:
    from aigw_harness.worker.bridge import find_node, node_modules_dir

    try:
        find_node()
        node_modules_dir()
    except TargetUnavailable as exc:
        return str(exc)
    return None


pytestmark = pytest.mark.skipif(_bridge_missing() is not None, reason=_bridge_missing() or "")


@pytest.fixture
async def worker_and_fake() -> AsyncIterator[tuple[str, FakeGateway]]:
    from aigw_harness.worker.bridge import WorkerBridge
    from aigw_harness.worker.wrangler import load_worker_config

    config = FakeConfig(
        accounts=[
            AccountConfig(
                id="acct-spike-000001", api_tokens=["tok-spike-000001"], gateways=[GatewayConfig(id="gw")]
            )
        ],
        time_scale=0.01,
    )
    async with (
        FakeGateway.running(config) as fake,
        WorkerBridge.running(
            load_worker_config(SPIKE_WORKER),
            fake.base_url,
            extra_vars={"AIGW_GATEWAY_ID": "gw", "SPIKE_KEY": KEY},
        ) as worker,
    ):
        yield worker.url, fake


async def test_the_worker_streams_through_the_gateway_option_with_the_log_id(
    worker_and_fake: tuple[str, FakeGateway],
) -> None:
    url, fake = worker_and_fake
    body = {
        "model": "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5,
        "tenantId": "tenant-w",
        "runId": "run-w",
        "probe": "binding-0",
    }
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(f"{url}/run", json=body)
        response = await http.post(f"{url}/run", json=body, headers={"x-spike-key": KEY})
    assert refused.status_code == 401
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    log_id = response.headers["x-aigw-log-id"]
    # Log ids are lowercase UUIDv7 since 2026-10-08 (earlier: 26-character ULIDs).
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", log_id)
    events = decode_all(response.content)
    assert events[-1].data == "[DONE]"
    # The fake saw a binding call with the gateway option: the log id and the tenant's metadata match.
    [record] = fake.store.records(lambda r: r.id == log_id)
    assert record.gateway_id == "gw"
    assert record.request_type == "binding"
    assert record.metadata == {"tenantId": "tenant-w", "runId": "run-w", "probe": "binding-0"}


async def test_the_spike_drives_the_worker(worker_and_fake: tuple[str, FakeGateway]) -> None:
    url, fake = worker_and_fake
    creds = LiveCredentials.from_environment(
        {
            "CLOUDFLARE_ACCOUNT_ID": fake.account_id,
            "CLOUDFLARE_API_TOKEN": "tok-spike-000001",
            "AIGW_GATEWAY_ID": "gw",
            "AIGW_LIVE_API_BASE": fake.api_base_url,
            "AIGW_LIVE_GATEWAY_BASE": f"{fake.base_url}/v1",
        }
    )
    [probe] = [p for p in default_plan(binding=True) if p.path == "binding"]
    CostGuard(CostCaps()).admit(probe)
    async with httpx.AsyncClient(timeout=30) as http:
        worker = WorkerClient(url, Secret("AIGW_SPIKE_KEY", KEY), http, CloudflareClient(creds, http))
        obs = await worker.run_probe(probe, tenant_id="tenant-w", run_id="run-w")
    assert obs.ok
    assert obs.stream
    assert obs.done_marker
    assert obs.usage_in_stream
    assert obs.token_events > 1
    assert obs.first_token_ms is not None
    assert obs.log_id is not None
    [record] = fake.store.records(lambda r: r.id == obs.log_id)
    assert record.metadata == {"tenantId": "tenant-w", "runId": "run-w", "probe": "binding-0"}
