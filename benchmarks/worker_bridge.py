"""What the Worker bridge adds to time to first byte of a streamed answer.

    .venv/bin/python benchmarks/worker_bridge.py [--requests 40]

Three paths, the same scripted answer (8 tokens, no scripted delay), measured in the same run:
  1. baseline: the binding wire call a Worker's env.AI makes, sent straight to the fake;
  2. a pass-through Worker in workerd (tests/worker/fixtures/passthrough): env.AI.run, stream returned;
  3. the test chat Worker (tests/worker/fixtures/chat-worker): also Durable Object history and KV.
Prints p50/p90 for each, and each path's p50 as a ratio of the baseline and as milliseconds added.

The fake's listening socket is created without TCP_NODELAY, so on a kept-alive connection a reply written
in two parts waits for the client's delayed ACK (about 40 ms on Linux). That artifact is the fake's, not the
bridge's, and it lands on whichever path happens to reuse a connection; by default this benchmark turns
TCP_NODELAY on for the fake's listening socket (accepted sockets inherit it on Linux). ``--as-shipped``
measures without the workaround.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aigw_fakes.config import (  # noqa: E402
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_TOKEN,
    AccountConfig,
    FakeConfig,
    GatewayConfig,
)
from aigw_fakes.server import FakeGateway  # noqa: E402
from aigw_harness.worker.bridge import WorkerBridge  # noqa: E402
from aigw_harness.worker.wrangler import load_worker_config  # noqa: E402

FIXTURES = ROOT / "tests" / "worker" / "fixtures"
MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"
MESSAGES = [{"role": "user", "content": "hello"}]
WARM_UP = 3


async def first_byte_ms(client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    elapsed: float | None = None
    # A fresh connection each time: every path then pays the same connection set-up, and no path meets a
    # kept-alive connection's delayed ACKs.
    async with client.stream("POST", url, json=body, headers={**headers, "connection": "close"}) as response:
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code} {(await response.aread())[:200]!r}")
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


def disable_nagle(fake: FakeGateway) -> None:
    server = getattr(fake, "_server", None)  # the fake's uvicorn server; no public handle exists
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def main(requests: int, as_shipped: bool) -> None:
    account = AccountConfig(
        id=DEFAULT_ACCOUNT_ID,
        api_tokens=[DEFAULT_API_TOKEN],
        gateways=[GatewayConfig(id="chat-gw"), GatewayConfig(id="example-gateway")],
    )
    async with (
        FakeGateway.running(config=FakeConfig(accounts=[account])) as fake,
        WorkerBridge.running(load_worker_config(FIXTURES / "passthrough"), fake.base_url) as passthrough,
        WorkerBridge.running(
            load_worker_config(FIXTURES / "chat-worker", "dev"), fake.base_url, extra_vars={"MODEL_ID": MODEL}
        ) as chat,
        httpx.AsyncClient(timeout=30) as client,
    ):
        if not as_shipped:
            disable_nagle(fake)
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
                    {"x-tenant-id": "example"},
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
    parser.add_argument("--as-shipped", action="store_true", help="leave Nagle on for the fake's socket")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.as_shipped))
