"""What the Worker bridge adds to time to first byte of a streamed answer.

    .venv/bin/python benchmarks/worker_bridge.py [--requests 40]

Three paths, the same scripted answer (8 tokens, no scripted delay), measured in the same run:
  1. baseline: the binding wire call a Worker's env.AI makes, sent straight to the fake;
  2. a pass-through Worker in workerd (tests/worker/fixtures/passthrough): env.AI.run, stream returned;
  3. the test chat Worker (tests/worker/fixtures/chat-worker): also Durable Object history and KV.
Prints p50/p90 for each, and each path's p50 as a ratio of the baseline and as milliseconds added.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fakes.config import (  # noqa: E402
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_TOKEN,
    AccountConfig,
    FakeConfig,
    GatewayConfig,
)
from fakes.server import FakeGateway  # noqa: E402
from harness.worker.bridge import WorkerBridge  # noqa: E402
from harness.worker.wrangler import load_worker_config  # noqa: E402

FIXTURES = ROOT / "tests" / "worker" / "fixtures"
MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"
MESSAGES = [{"role": "user", "content": "hello"}]
WARM_UP = 3


async def first_byte_ms(client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    elapsed: float | None = None
    async with client.stream("POST", url, json=body, headers=headers) as response:
        async for _ in response.aiter_raw():
            if elapsed is None:
                elapsed = (time.perf_counter() - start) * 1000
    return elapsed if elapsed is not None else (time.perf_counter() - start) * 1000


def show(name: str, values: list[float], baseline: float | None) -> float:
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    versus = f"   {p50 / baseline:5.1f}x baseline, +{p50 - baseline:.1f} ms" if baseline else ""
    print(f"{name:<38} p50 {p50:7.1f} ms   p90 {p90:7.1f} ms{versus}")
    return p50


async def main(requests: int) -> None:
    account = AccountConfig(
        id=DEFAULT_ACCOUNT_ID, api_tokens=[DEFAULT_API_TOKEN], gateways=[GatewayConfig(id="chat-gw")]
    )
    async with (
        FakeGateway.running(config=FakeConfig(accounts=[account])) as fake,
        WorkerBridge.running(load_worker_config(FIXTURES / "passthrough"), fake.base_url) as passthrough,
        WorkerBridge.running(load_worker_config(FIXTURES / "chat-worker", "dev"), fake.base_url) as chat,
        httpx.AsyncClient(timeout=30) as client,
    ):
        fake.behaviour.load({"default": {"tokens": 8, "ttfb_ms": 0, "token_delay_ms": 0}})
        direct_body = {
            "inputs": {"messages": MESSAGES, "stream": True},
            "options": {"gateway": {"id": "chat-gw"}},
        }
        direct_headers = {"cf-consn-model-id": MODEL}
        samples: dict[str, list[float]] = {"direct": [], "passthrough": [], "chat": []}
        for index in range(requests + WARM_UP):
            timings = {
                "direct": await first_byte_ms(
                    client, f"{fake.base_url}/ai-gateway/run?version=3", direct_body, direct_headers
                ),
                "passthrough": await first_byte_ms(
                    client, f"{passthrough.url}/", {"model": MODEL, "messages": MESSAGES}, {}
                ),
                "chat": await first_byte_ms(
                    client,
                    f"{chat.url}/chat",
                    {"sessionId": f"00000000-0000-0000-0000-{index:012d}", "message": "hello"},
                    {"x-tenant-id": "bench"},
                ),
            }
            if index >= WARM_UP:  # the first requests compile the Workers
                for name, value in timings.items():
                    samples[name].append(value)
        print(
            f"time to first byte of a streamed answer, {requests} requests per path after {WARM_UP} warm-up"
        )
        baseline = show("1. fake alone (binding wire call)", samples["direct"], None)
        show("2. pass-through Worker in workerd", samples["passthrough"], baseline)
        show("3. test chat Worker (DO + KV + SSE)", samples["chat"], baseline)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="What the Worker bridge adds to time to first byte.")
    parser.add_argument("--requests", type=int, default=40)
    asyncio.run(main(parser.parse_args().requests))
