"""What the reference gateway adds: time to first token and throughput, against direct calls to the fake.

Starts the fake AI Gateway and the reference gateway as two processes (``aigw fake serve`` and
``aigw gateway serve``), then, from this process, opens the same streams two ways in alternating rounds:

- direct: ``POST /v1/{account}/{gateway}/workers-ai/{model}`` on the fake (``"stream": true``);
- gateway: ``POST /chat`` on the reference gateway, which makes that same call.

Figures:

- latency phase: 50 streams open at all times (closed loop: each ends, the next starts), the fake waiting
  ``--ttfb-ms`` before the first token; time to first token at the median (and 90th percentile) for both
  paths, and the difference (goal: at most 1 ms added at the median);
- throughput phase: rounds of 50 streams started at once with no scripted delays; completed streams per
  second for both paths and their ratio (goal: at least 0.5).

Run: ``.venv/bin/python benchmarks/gateway_overhead.py`` (about 40 s). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.sse import SSEDecoder

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "benchmark-token-0000000000000000"
GATEWAY = "example-gateway"
MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux ``/proc``); 0 where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Servers:
    fake: str
    gateway: str
    fake_pid: int
    gateway_pid: int

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.fake_pid), cpu_seconds(self.gateway_pid)


@contextlib.contextmanager
def processes(workdir: Path) -> Iterator[Servers]:
    fake_port, gateway_port = free_port(), free_port()
    config = {"accounts": [{"id": ACCOUNT, "api_tokens": [TOKEN], "gateways": [{"id": GATEWAY}]}]}
    (workdir / "fake.json").write_text(json.dumps(config))
    env = {**os.environ, "AIGW_API_TOKEN": TOKEN, "AIGW_ACCOUNT_ID": ACCOUNT}
    python = [sys.executable, "-m", "harness"]
    fake = subprocess.Popen(
        [
            *python,
            "fake",
            "serve",
            "--port",
            str(fake_port),
            "--config",
            str(workdir / "fake.json"),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    gateway = subprocess.Popen(
        [
            *python,
            "gateway",
            "serve",
            "--port",
            str(gateway_port),
            "--upstream",
            f"http://127.0.0.1:{fake_port}",
            "--tenants",
            str(ROOT / "scenarios" / "tenants"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield Servers(
            f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{gateway_port}", fake.pid, gateway.pid
        )
    finally:
        for process in (gateway, fake):
            process.terminate()
        for process in (gateway, fake):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_ready(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await client.get(url, headers=headers)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up within 30 s") from None
            await asyncio.sleep(0.1)


async def first_token_time(response: httpx.Response, started: float, field: str) -> float | None:
    """Read the stream to its end; return the time to the first event carrying answer text."""
    decoder = SSEDecoder()
    first: float | None = None
    async for chunk in response.aiter_raw():
        for event in decoder.feed(chunk):
            if (
                first is None
                and event.event == "message"
                and not event.is_done_marker()
                and json.loads(event.data).get(field)
            ):
                first = time.perf_counter() - started
    return first


async def direct_stream(client: httpx.AsyncClient, fake: str) -> float | None:
    started = time.perf_counter()
    body = {"messages": [{"role": "user", "content": "benchmark"}], "stream": True}
    url = f"{fake}/v1/{ACCOUNT}/{GATEWAY}/workers-ai/{MODEL}"
    async with client.stream(
        "POST", url, json=body, headers={"authorization": f"Bearer {TOKEN}"}
    ) as response:
        return await first_token_time(response, started, "response")


async def gateway_stream(client: httpx.AsyncClient, gateway: str) -> float | None:
    started = time.perf_counter()
    # A session and a user of its own per stream: no history, no per-user rate limit in the way.
    body = {"sessionId": str(uuid.uuid4()), "message": "benchmark", "userId": str(uuid.uuid4())}
    async with client.stream(
        "POST", f"{gateway}/chat", json=body, headers={"x-tenant-id": "example"}
    ) as response:
        return await first_token_time(response, started, "content")


async def round_of(concurrency: int, stream: Callable[[], Awaitable[float | None]]) -> list[float]:
    results = await asyncio.gather(*(stream() for _ in range(concurrency)))
    missing = results.count(None)
    if missing:
        raise RuntimeError(f"{missing} of {concurrency} streams carried no token")
    return [r for r in results if r is not None]


async def steady(
    concurrency: int, seconds: float, spread: float, stream: Callable[[], Awaitable[float | None]]
) -> list[float]:
    """``concurrency`` streams open at all times for ``seconds``: each worker starts its next stream when
    the last one ends; starts are spread over ``spread`` seconds so that the workers do not move in step."""
    times: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        await asyncio.sleep(spread * index / concurrency)
        while time.perf_counter() < deadline:
            first = await stream()
            if first is None:
                raise RuntimeError("a stream carried no token")
            times.append(first)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    limits = httpx.Limits(
        max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2
    )
    with tempfile.TemporaryDirectory() as workdir, processes(Path(workdir)) as servers:
        fake, gateway = servers.fake, servers.gateway
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            await wait_ready(client, f"{fake}/__aigw/behaviour", {})
            await wait_ready(client, f"{gateway}/health", {"x-tenant-id": "example"})

            def direct() -> Awaitable[float | None]:
                return direct_stream(client, fake)

            def via_gateway() -> Awaitable[float | None]:
                return gateway_stream(client, gateway)

            latency = {
                "default": {
                    "ttfb_ms": args.ttfb_ms,
                    "jitter_ms": 20,
                    "token_delay_ms": args.token_delay_ms,
                    "tokens": args.latency_tokens,
                }
            }
            (await client.put(f"{fake}/__aigw/behaviour", json=latency)).raise_for_status()
            await round_of(args.concurrency, direct)  # warm-up: connections, caches
            await round_of(args.concurrency, via_gateway)
            ttft: dict[str, list[float]] = {"direct": [], "gateway": []}
            for _ in range(args.rounds):
                for name, stream in (("direct", direct), ("gateway", via_gateway)):
                    ttft[name] += await steady(args.concurrency, args.seconds, 0.7, stream)

            throughput = {"default": {"ttfb_ms": 0, "token_delay_ms": 0, "tokens": args.tokens}}
            (await client.put(f"{fake}/__aigw/behaviour", json=throughput)).raise_for_status()
            elapsed = {"direct": 0.0, "gateway": 0.0}
            cpu = {"direct": [0.0, 0.0], "gateway": [0.0, 0.0]}  # fake, gateway process seconds
            for _ in range(args.rounds):
                for name, stream in (("direct", direct), ("gateway", via_gateway)):
                    cpu_before = servers.cpu()
                    started = time.perf_counter()
                    await round_of(args.concurrency, stream)
                    elapsed[name] += time.perf_counter() - started
                    cpu_after = servers.cpu()
                    cpu[name][0] += cpu_after[0] - cpu_before[0]
                    cpu[name][1] += cpu_after[1] - cpu_before[1]

    streams = args.rounds * args.concurrency  # throughput phase
    median = {k: statistics.median(v) * 1000 for k, v in ttft.items()}
    p90 = {k: percentile(v, 0.9) * 1000 for k, v in ttft.items()}
    rate = {k: streams / v for k, v in elapsed.items()}
    added = median["gateway"] - median["direct"]
    ratio = rate["gateway"] / rate["direct"]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end of the run")
    print(
        f"latency phase: {args.concurrency} streams open at all times, {args.rounds} rounds of "
        f"{args.seconds} s per path; the fake waits {args.ttfb_ms} ms (+/- 20) before the first token, "
        f"then {args.token_delay_ms} ms per token, {args.latency_tokens} tokens"
    )
    print(f"  streams measured: direct {len(ttft['direct'])}, gateway {len(ttft['gateway'])}")
    print(
        f"  time to first token, median: direct {median['direct']:.2f} ms, gateway {median['gateway']:.2f} ms"
    )
    print(f"  time to first token, p90:    direct {p90['direct']:.2f} ms, gateway {p90['gateway']:.2f} ms")
    print(f"  added at the median: {added:.2f} ms (goal <= 1 ms: {'met' if added <= 1 else 'NOT met'})")
    print(
        f"throughput phase: {args.rounds} rounds of {args.concurrency} streams at once per path, "
        f"no scripted delays, {args.tokens} tokens per stream"
    )
    print(f"  direct {rate['direct']:.1f} streams/s, gateway {rate['gateway']:.1f} streams/s")
    print(f"  ratio gateway/direct: {ratio:.2f} (goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")
    per_stream = {k: (v[0] / streams * 1000, v[1] / streams * 1000) for k, v in cpu.items()}
    print(
        f"  CPU per stream: fake {per_stream['direct'][0]:.2f} ms (direct); through the gateway: "
        f"fake {per_stream['gateway'][0]:.2f} ms + gateway {per_stream['gateway'][1]:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one latency round")
    parser.add_argument("--ttfb-ms", type=float, default=200.0)
    parser.add_argument("--token-delay-ms", type=float, default=50.0, help="latency phase: between tokens")
    parser.add_argument("--latency-tokens", type=int, default=10, help="latency phase: tokens per stream")
    parser.add_argument("--tokens", type=int, default=40, help="throughput phase: tokens per stream")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
