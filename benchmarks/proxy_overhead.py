"""What recording through mitmproxy adds to time to first byte and to a whole streamed answer.

    .venv/bin/python benchmarks/proxy_overhead.py [--requests 40]

The same streamed request to the fake (no scripted delay), measured in the same run along three paths:
  1. baseline: straight to the fake;
  2. through the proxy in reverse-proxy mode, passing through (no cassette directory);
  3. through the proxy recording every exchange as a redacted cassette.
Also replays the recorded cassettes at time scale 0 (the replay server's own overhead). Prints p50/p90
of time to first byte and of the whole answer, with each path's p50 as a ratio of the baseline.
Recorded chunk offsets include the proxy's share, which is what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig  # noqa: E402
from aigw_fakes.server import FakeGateway  # noqa: E402
from aigw_harness.proxy.mitm import ProxySettings, running_proxy  # noqa: E402
from aigw_harness.proxy.redaction import Redactor  # noqa: E402
from aigw_harness.proxy.replay import CassetteLibrary, running_replay  # noqa: E402

ACCOUNT, TOKEN = "bench-account-0001", "bench-token-000001"
PATH = f"/v1/{ACCOUNT}/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct-fp8-fast"
BODY = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 16, "stream": True}
HEADERS = {"authorization": f"Bearer {TOKEN}"}
WARM_UP = 3


async def measure(client: httpx.AsyncClient, base: str) -> tuple[float, float]:
    start = time.perf_counter()
    first: float | None = None
    async with client.stream("POST", base + PATH, json=BODY, headers=HEADERS) as response:
        async for _ in response.aiter_raw():
            if first is None:
                first = (time.perf_counter() - start) * 1000
    total = (time.perf_counter() - start) * 1000
    return (first if first is not None else total), total


async def series(base: str, requests: int) -> tuple[list[float], list[float]]:
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(WARM_UP):
            await measure(client, base)
        results = [await measure(client, base) for _ in range(requests)]
    return [r[0] for r in results], [r[1] for r in results]


def show(
    name: str, firsts: list[float], totals: list[float], baseline: tuple[float, float] | None
) -> tuple[float, float]:
    def p(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[int(q * (len(ordered) - 1))]

    first50, total50 = statistics.median(firsts), statistics.median(totals)
    versus = ""
    if baseline:
        versus = f"   TTFB {first50 / baseline[0]:4.1f}x, whole {total50 / baseline[1]:4.1f}x baseline"
    print(
        f"{name:<30} TTFB p50 {first50:6.1f} ms p90 {p(firsts, 0.9):6.1f} ms   "
        f"whole p50 {total50:6.1f} ms p90 {p(totals, 0.9):6.1f} ms{versus}"
    )
    return first50, total50


async def main(requests: int) -> None:
    config = FakeConfig(
        accounts=[AccountConfig(id=ACCOUNT, api_tokens=[TOKEN], gateways=[GatewayConfig(id="gw")])],
        time_scale=0.001,
    )
    redactor = Redactor({"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": TOKEN})
    with tempfile.TemporaryDirectory(prefix="aigw-bench-") as scratch:
        async with FakeGateway.running(config) as fake:
            baseline = show("direct to the fake", *await series(fake.base_url, requests), None)
            passing = ProxySettings(upstreams=[fake.base_url])
            async with running_proxy(passing, redactor) as ([url], _, _):
                show("through the proxy", *await series(url, requests), baseline)
            recording = ProxySettings(upstreams=[fake.base_url], cassette_dir=Path(scratch))
            async with running_proxy(recording, redactor) as ([url], recorder, _):
                show("through the proxy, recording", *await series(url, requests), baseline)
            written = len(recorder.written)
        library = CassetteLibrary.from_directory(scratch, redactor)
        async with running_replay(library, time_scale=0) as url:
            show("replay server (time scale 0)", *await series(url, requests), baseline)
    print(f"{written} cassettes written; {requests} measured requests per path after {WARM_UP} warm-up")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40)
    asyncio.run(main(parser.parse_args().requests))
