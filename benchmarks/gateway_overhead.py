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
  median (and 90th percentile) for both paths, and the difference (goal: at most 1 ms added); also the
  difference per round against the direct round just before it, whose median other load on a shared
  machine moves less than it moves the pooled one.

``--trace`` also takes timestamps inside this tree's gateway during the latency rounds
(``benchmarks/gateway_trace/sitecustomize.py``) and prints where a turn's time goes on its way to the first
token: before the app is called, from the call to the upstream send, and from the upstream's first bytes to
the first token, wall and CPU time; the wrappers cost time themselves, so compare a traced run's time to
first token only with itself.

``--before DIR`` adds a second gateway run from another source tree (a checkout of an earlier commit, e.g.
``git worktree add --detach /tmp/before COMMIT``), in front of the same fake and in the same rounds, so
that a change is shown before and after in one run.

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
    gateways: dict[str, str]  # name -> base URL: "gateway", and "before" with --before
    pids: dict[str, int]  # "fake" and each gateway's name

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}


@contextlib.contextmanager
def processes(workdir: Path, before: Path | None = None, trace: Path | None = None) -> Iterator[Servers]:
    """The fake and the gateway of this tree; with ``before``, a second gateway run from that source tree
    (an earlier checkout), in front of the same fake, so that a change is measured before and after in
    the same run."""
    fake_port = free_port()
    config = {"accounts": [{"id": ACCOUNT, "api_tokens": [TOKEN], "gateways": [{"id": GATEWAY}]}]}
    (workdir / "fake.json").write_text(json.dumps(config))
    env = {**os.environ, "AIGW_API_TOKEN": TOKEN, "AIGW_ACCOUNT_ID": ACCOUNT}
    python = [sys.executable, "-m", "aigw_harness"]
    started: dict[str, subprocess.Popen[bytes]] = {}
    gateways: dict[str, str] = {}
    trees = {"gateway": ROOT} | ({"before": before.resolve()} if before is not None else {})
    try:
        started["fake"] = subprocess.Popen(
            [*python, "fake", "serve", "--port", str(fake_port), "--config", str(workdir / "fake.json"),
             "--log-level", "warning"],
            cwd=ROOT,
            env=env,
        )  # fmt: skip
        for name, tree in trees.items():
            port = free_port()
            command, tree_env = python, env
            if tree != ROOT:
                command, tree_env = _tree_python(tree, workdir / name, env)
            elif trace is not None:
                tracer = str(ROOT / "benchmarks" / "gateway_trace")
                tree_env = env | {"AIGW_GATEWAY_TRACE": str(trace), "PYTHONPATH": tracer}
            started[name] = subprocess.Popen(
                [*command, "gateway", "serve", "--port", str(port), "--upstream",
                 f"http://127.0.0.1:{fake_port}", "--tenants", str(ROOT / "scenarios" / "tenants")],
                cwd=tree,
                env=tree_env,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            gateways[name] = f"http://127.0.0.1:{port}"
        yield Servers(f"http://127.0.0.1:{fake_port}", gateways, {k: v.pid for k, v in started.items()})
    finally:
        for process in started.values():
            process.terminate()
        for process in started.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _tree_python(tree: Path, shim: Path, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """How to run another source tree's ``aigw``: its ``harness/`` and ``fakes/`` folders under both import
    names (``aigw_harness``, ``aigw_fakes``, and ``harness``, ``fakes`` as trees before the rename call
    them) in a folder put first on ``PYTHONPATH``, so that none of this tree's code is imported."""
    shim.mkdir()
    for folder, names in (("harness", ("harness", "aigw_harness")), ("fakes", ("fakes", "aigw_fakes"))):
        for link in names:
            (shim / link).symlink_to(tree / folder, target_is_directory=True)
    main = (tree / "harness" / "__main__.py").read_text(encoding="utf-8")
    module = "aigw_harness" if "aigw_harness" in main else "harness"
    return [sys.executable, "-m", module], env | {"PYTHONPATH": str(shim)}


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


async def steady_ttft(
    host: str, port: int, build: object, concurrency: int, seconds: float
) -> list[tuple[float, bool]]:
    """Closed loop: ``concurrency`` connections each sending its next stream when one ends. Each time to
    first token comes with whether it was its connection's first stream (all of those start at once)."""
    results: list[tuple[float, bool]] = []
    stop = asyncio.get_running_loop().time() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        first = True
        try:
            while asyncio.get_running_loop().time() < stop:
                request = build(f"{host}:{port}", next(counter))  # type: ignore[operator]
                value = await raw_stream(reader, writer, request)
                if value is not None:
                    results.append((value, first))
                first = False
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
    trace_rows: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory() as workdir,
        processes(Path(workdir), args.before, Path(workdir) / "trace" if args.trace else None) as servers,
    ):
        fake = servers.fake
        (Path(workdir) / "chat.lua").write_text(CHAT_LUA)
        (Path(workdir) / "direct.lua").write_text(DIRECT_LUA)
        async with httpx.AsyncClient(timeout=60) as client:
            await wait_ready(client, f"{fake}/__aigw/behaviour", {})
            for url in servers.gateways.values():
                await wait_ready(client, f"{url}/health", {"x-tenant-id": "example"})

            throughput = {"default": {"ttfb_ms": 0, "token_delay_ms": 0, "tokens": args.tokens}}
            (await client.put(f"{fake}/__aigw/behaviour", json=throughput)).raise_for_status()
            paths = {"direct": (fake + DIRECT_PATH, Path(workdir) / "direct.lua")}
            paths |= {name: (url, Path(workdir) / "chat.lua") for name, url in servers.gateways.items()}
            for url, script in paths.values():  # warm-up: connections, caches
                wrk_rate(url, script, args.concurrency, 1)
            rates: dict[str, list[float]] = {name: [] for name in paths}
            failures = dict.fromkeys(paths, 0)
            fake_cpu = dict.fromkeys(paths, 0.0)  # the fake's CPU seconds while each path ran
            own_cpu = dict.fromkeys(paths, 0.0)  # the gateway's own (0 for direct)
            streams = dict.fromkeys(paths, 0.0)
            for _ in range(args.rounds):
                for name, (url, script) in paths.items():
                    cpu_before = servers.cpu()
                    rate, bad = wrk_rate(url, script, args.concurrency, args.seconds)
                    cpu_after = servers.cpu()
                    rates[name].append(rate)
                    failures[name] += bad
                    streams[name] += rate * args.seconds
                    fake_cpu[name] += cpu_after["fake"] - cpu_before["fake"]
                    if name != "direct":
                        own_cpu[name] += cpu_after[name] - cpu_before[name]

            latency = {
                "default": {
                    "ttfb_ms": args.ttfb_ms,
                    "jitter_ms": 20,
                    "token_delay_ms": args.token_delay_ms,
                    "tokens": args.tokens,
                }
            }
            (await client.put(f"{fake}/__aigw/behaviour", json=latency)).raise_for_status()
        builders = {"direct": (host_port(fake), direct_request)}
        builders |= {name: (host_port(url), chat_request) for name, url in servers.gateways.items()}
        ttft: dict[str, list[float]] = {name: [] for name in builders}
        steady: dict[str, list[float]] = {name: [] for name in builders}  # without connections' first
        round_medians: dict[str, list[float]] = {name: [] for name in builders}
        for (host, port), build in builders.values():
            await steady_ttft(host, port, build, args.concurrency, 1.5)  # warm-up
        latency_rounds = args.latency_rounds or args.rounds
        for _ in range(latency_rounds):
            for name, ((host, port), build) in builders.items():
                measured = await steady_ttft(host, port, build, args.concurrency, args.latency_seconds)
                values = [value for value, _ in measured]
                ttft[name] += values
                steady[name] += [value for value, first in measured if not first]
                round_medians[name].append(statistics.median(values) * 1000)
        if args.trace:
            trace_rows = read_trace(Path(workdir), min_wait=0.9 * args.ttfb_ms / 1000)

    gateways = list(servers.gateways)
    label = {"direct": "direct", "gateway": "gateway", "before": f"before ({args.before})"}
    mean_rate = {k: statistics.mean(v) for k, v in rates.items()}
    median = {k: statistics.median(v) * 1000 for k, v in ttft.items()}
    p90 = {k: percentile(v, 0.9) * 1000 for k, v in ttft.items()}
    steady_median = {k: statistics.median(v) * 1000 for k, v in steady.items()}
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end of the run")
    print(
        f"throughput (load generator: wrk, 2 threads, {args.concurrency} connections, "
        f"{args.rounds} rounds of {args.seconds:g} s per path, {args.tokens}-token streams, "
        "no scripted delays)"
    )
    for name in paths:
        print(f"  {label[name]}: {mean_rate[name]:.1f} streams/s (non-2xx: {failures[name]})")
    for name in gateways:
        ratio = mean_rate[name] / mean_rate["direct"]
        print(
            f"  ratio {label[name]}/direct: {ratio:.2f} (goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})"
        )
    per_stream = {k: 1000 / streams[k] if streams[k] else 0.0 for k in paths}
    print(f"  CPU per stream: fake {fake_cpu['direct'] * per_stream['direct']:.2f} ms (direct)")
    for name in gateways:
        print(
            f"  CPU per stream through {label[name]}: fake {fake_cpu[name] * per_stream[name]:.2f} ms + "
            f"gateway {own_cpu[name] * per_stream[name]:.2f} ms"
        )
    print(
        f"time to first token (load generator: raw-socket asyncio client, {args.concurrency} streams open at "
        f"all times, {latency_rounds} rounds of {args.latency_seconds:g} s per path, paths alternating; "
        f"the fake waits {args.ttfb_ms:g} ms then {args.token_delay_ms:g} ms (+/- 20) per token)"
    )
    for name in builders:
        print(
            f"  {label[name]}: {len(ttft[name])} streams, median {median[name]:.2f} ms, "
            f"p90 {p90[name]:.2f} ms"
        )
    for name in gateways:
        added = median[name] - median["direct"]
        pairs = [g - d for g, d in zip(round_medians[name], round_medians["direct"], strict=True)]
        print(
            f"  added by {label[name]} at the median: {added:.2f} ms "
            f"(goal <= 1 ms: {'met' if added <= 1 else 'NOT met'}); "
            f"per round against the direct round before it: median {statistics.median(pairs):.2f} ms, "
            f"rounds {' '.join(f'{p:.2f}' for p in pairs)}"
        )
    print(
        "  without each connection's first stream (those start together at the start of a round, and "
        "through the gateway on a new upstream connection):"
    )
    for name in gateways:
        added = steady_median[name] - steady_median["direct"]
        print(
            f"    {label[name]}: median {steady_median[name]:.2f} ms against {steady_median['direct']:.2f} "
            f"ms direct, added {added:.2f} ms ({len(steady[name])} and {len(steady['direct'])} streams)"
        )
    if args.trace:
        print_trace(trace_rows)


def read_trace(workdir: Path, min_wait: float) -> list[dict[str, float]]:
    """The traced turns of the latency rounds (those whose upstream waited the scripted first byte)."""
    rows = []
    for path in workdir.glob("trace.*"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["upstream_wait"] >= min_wait:
                rows.append(row)
    return rows


def print_trace(rows: list[dict[str, float]]) -> None:
    print(f"inside the gateway, {len(rows)} traced turns of the latency rounds (median, quartiles; us):")
    labels = {
        "head_to_app": "request head parsed -> app called (wall)",
        "app_to_send": "app called -> upstream request written (wall)",
        "app_to_send_cpu": "app called -> upstream request written (CPU)",
        "first_bytes_to_token": "upstream first bytes -> first token to the server (wall)",
        "first_bytes_to_token_cpu": "upstream first bytes -> first token to the server (CPU)",
    }
    for key, label in labels.items():
        values = sorted(row[key] * 1e6 for row in rows)
        if values:
            quartiles = f"{percentile(values, 0.25):.0f}-{percentile(values, 0.75):.0f}"
            print(f"  {label}: {statistics.median(values):.0f} ({quartiles})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of one wrk round")
    parser.add_argument("--latency-seconds", type=float, default=6.0, help="length of one latency round")
    parser.add_argument("--ttfb-ms", type=float, default=200.0)
    parser.add_argument("--token-delay-ms", type=float, default=20.0, help="latency phase: between tokens")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per stream")
    parser.add_argument(
        "--latency-rounds", type=int, default=0, help="latency rounds per path (default: --rounds)"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="time the steps of each turn inside this tree's gateway during the latency rounds",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="also measure the gateway of this source tree (e.g. a git worktree of an earlier commit), "
        "in the same run and rounds",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
