"""What the reference gateway adds: time to first token and throughput, against direct calls to the fake.

Starts the fake AI Gateway and the reference gateway as two processes (``aigw fake serve`` and
``aigw gateway serve``), then measures the same streams two ways in alternating rounds:

- direct: ``POST /v1/{account}/{gateway}/workers-ai/{model}`` on the fake (``"stream": true``);
- gateway: ``POST /chat`` on the reference gateway, which makes that same call.

Load generators that are not the bottleneck (each figure names its generator):

- throughput: ``wrk`` (C; Debian package ``wrk``, installed by ``scripts/setup.sh``) with a Lua script
  for the POST body, 50 connections, no scripted delays, 64-token streams; completed streams per second
  for both paths and their ratio (goal: at least 0.5), and server CPU per stream;
- latency: a raw-socket asyncio client (no HTTP library: it writes the request bytes and looks for the
  first ``data:`` line), 50 streams open at all times, the fake pacing tokens; time to first token at the
  median (and 90th percentile) for both paths, and the difference (goal: at most 1 ms added).

Run: ``.venv/bin/python benchmarks/gateway_overhead.py`` (about 60 s). Loopback only. On a shared
machine run it a few times: other load moves the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "benchmark-token-0000000000000000"
GATEWAY = "example-gateway"
MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
ROOT = Path(__file__).resolve().parents[1]
DIRECT_PATH = f"/v1/{ACCOUNT}/{GATEWAY}/workers-ai/{MODEL}"
DIRECT_BODY = json.dumps({"messages": [{"role": "user", "content": "hello there"}], "stream": True})

# Every /chat request has its own session and rate-limit key, so that neither history nor the limiter
# grows with the run.
CHAT_LUA = """
local counter = 0
math.randomseed(os.time())
request = function()
  counter = counter + 1
  local id = string.format("%08x-0000-4000-8000-%012x", math.random(0, 0x7fffffff), counter)
  local body = '{"sessionId":"' .. id .. '","message":"hello there","userId":"u' .. id .. '"}'
  local headers = {["content-type"] = "application/json", ["x-tenant-id"] = "example"}
  return wrk.format("POST", "/chat", headers, body)
end
"""
DIRECT_LUA = f"""
wrk.method = "POST"
wrk.body = '{DIRECT_BODY}'
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer {TOKEN}"
"""


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
    python = [sys.executable, "-m", "aigw_harness"]
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


def wrk_rate(url: str, script: Path, connections: int, seconds: float) -> tuple[float, int]:
    """Completed responses per second and non-2xx responses, as wrk counts them."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    return float(rate.group(1)), int(errors.group(1)) if errors else 0


def chat_request(host: str, counter: int) -> bytes:
    session = f"{counter:08x}-0000-4000-8000-{os.getpid():012x}"
    body = json.dumps({"sessionId": session, "message": "hello there", "userId": f"u{counter}"}).encode()
    head = (
        f"POST /chat HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"x-tenant-id: example\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def direct_request(host: str, counter: int) -> bytes:
    body = DIRECT_BODY.encode()
    head = (
        f"POST {DIRECT_PATH} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {TOKEN}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def raw_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> float | None:
    """Send one request on a kept-alive connection; the time to the first ``data:`` line, read to the end
    of the chunked body. ``None`` when the answer was not a 200 stream."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    ok = head.startswith(b"HTTP/1.1 200")
    first: float | None = None
    seen = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        if first is None and b"data: " in seen[-8:] + chunk:
            first = loop.time() - started
        seen = (seen + chunk)[-16:]
        if seen.endswith(b"0\r\n\r\n"):
            return first if ok else None


async def steady_ttft(host: str, port: int, build: object, concurrency: int, seconds: float) -> list[float]:
    """Closed loop: ``concurrency`` connections each sending its next stream when one ends."""
    results: list[float] = []
    stop = asyncio.get_running_loop().time() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while asyncio.get_running_loop().time() < stop:
                request = build(f"{host}:{port}", next(counter))  # type: ignore[operator]
                value = await raw_stream(reader, writer, request)
                if value is not None:
                    results.append(value)
        finally:
            writer.close()

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def run(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for the throughput figures: apt-get install -y wrk (scripts/setup.sh does)")
    with tempfile.TemporaryDirectory() as workdir, processes(Path(workdir)) as servers:
        fake, gateway = servers.fake, servers.gateway
        (Path(workdir) / "chat.lua").write_text(CHAT_LUA)
        (Path(workdir) / "direct.lua").write_text(DIRECT_LUA)
        async with httpx.AsyncClient(timeout=60) as client:
            await wait_ready(client, f"{fake}/__aigw/behaviour", {})
            await wait_ready(client, f"{gateway}/health", {"x-tenant-id": "example"})

            throughput = {"default": {"ttfb_ms": 0, "token_delay_ms": 0, "tokens": args.tokens}}
            (await client.put(f"{fake}/__aigw/behaviour", json=throughput)).raise_for_status()
            paths = {
                "direct": (fake + DIRECT_PATH, Path(workdir) / "direct.lua"),
                "gateway": (gateway, Path(workdir) / "chat.lua"),
            }
            for url, script in paths.values():  # warm-up: connections, caches
                wrk_rate(url, script, args.concurrency, 1)
            rates: dict[str, list[float]] = {"direct": [], "gateway": []}
            failures = {"direct": 0, "gateway": 0}
            cpu = {"direct": [0.0, 0.0], "gateway": [0.0, 0.0]}  # fake, gateway process seconds
            streams = {"direct": 0.0, "gateway": 0.0}
            for _ in range(args.rounds):
                for name, (url, script) in paths.items():
                    cpu_before = servers.cpu()
                    rate, bad = wrk_rate(url, script, args.concurrency, args.seconds)
                    cpu_after = servers.cpu()
                    rates[name].append(rate)
                    failures[name] += bad
                    streams[name] += rate * args.seconds
                    cpu[name][0] += cpu_after[0] - cpu_before[0]
                    cpu[name][1] += cpu_after[1] - cpu_before[1]

            latency = {
                "default": {
                    "ttfb_ms": args.ttfb_ms,
                    "jitter_ms": 20,
                    "token_delay_ms": args.token_delay_ms,
                    "tokens": args.tokens,
                }
            }
            (await client.put(f"{fake}/__aigw/behaviour", json=latency)).raise_for_status()
            builders = {
                "direct": (host_port(fake), direct_request),
                "gateway": (host_port(gateway), chat_request),
            }
            ttft: dict[str, list[float]] = {"direct": [], "gateway": []}
            for (host, port), build in builders.values():
                await steady_ttft(host, port, build, args.concurrency, 1.5)  # warm-up
            for _ in range(args.rounds):
                for name, ((host, port), build) in builders.items():
                    ttft[name] += await steady_ttft(host, port, build, args.concurrency, args.latency_seconds)

    mean_rate = {k: statistics.mean(v) for k, v in rates.items()}
    ratio = mean_rate["gateway"] / mean_rate["direct"]
    median = {k: statistics.median(v) * 1000 for k, v in ttft.items()}
    p90 = {k: percentile(v, 0.9) * 1000 for k, v in ttft.items()}
    added = median["gateway"] - median["direct"]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end of the run")
    print(
        f"throughput (load generator: wrk, 2 threads, {args.concurrency} connections, "
        f"{args.rounds} rounds of {args.seconds:g} s per path, {args.tokens}-token streams, "
        "no scripted delays)"
    )
    print(
        f"  direct {mean_rate['direct']:.1f} streams/s, gateway {mean_rate['gateway']:.1f} streams/s "
        f"(non-2xx: direct {failures['direct']}, gateway {failures['gateway']})"
    )
    print(f"  ratio gateway/direct: {ratio:.2f} (goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")
    per_stream = {k: (v[0] / streams[k] * 1000, v[1] / streams[k] * 1000) for k, v in cpu.items()}
    print(
        f"  CPU per stream: fake {per_stream['direct'][0]:.2f} ms (direct); through the gateway: "
        f"fake {per_stream['gateway'][0]:.2f} ms + gateway {per_stream['gateway'][1]:.2f} ms"
    )
    print(
        f"time to first token (load generator: raw-socket asyncio client, {args.concurrency} streams open at "
        f"all times, {args.rounds} rounds of {args.latency_seconds:g} s per path; the fake waits "
        f"{args.ttfb_ms:g} ms (+/- 20) then {args.token_delay_ms:g} ms per token)"
    )
    print(f"  streams measured: direct {len(ttft['direct'])}, gateway {len(ttft['gateway'])}")
    print(f"  median: direct {median['direct']:.2f} ms, gateway {median['gateway']:.2f} ms")
    print(f"  p90:    direct {p90['direct']:.2f} ms, gateway {p90['gateway']:.2f} ms")
    print(f"  added at the median: {added:.2f} ms (goal <= 1 ms: {'met' if added <= 1 else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of one wrk round")
    parser.add_argument("--latency-seconds", type=float, default=6.0, help="length of one latency round")
    parser.add_argument("--ttfb-ms", type=float, default=200.0)
    parser.add_argument("--token-delay-ms", type=float, default=20.0, help="latency phase: between tokens")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per stream")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
