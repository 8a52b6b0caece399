"""How many /chat streams one machine sustains under `aigw load`, and who spends the CPU.

Three processes on loopback, so that each one's CPU is its own: the fake AI Gateway (`aigw fake serve`), the
reference gateway (`aigw gateway serve`) and Locust (started by `aigw load --target url`, which also reads
what the fake billed). The figures: answers per second, time to first token, and each process's CPU
seconds and share of the wall-clock time (100% is one core). A load generator that is itself near 100% of
its cores is the bottleneck, and the figure is a floor, not the SUT's capacity.

    .venv/bin/python benchmarks/load_capacity.py [--users 50] [--seconds 20] [--processes 0] [--tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
AIGW = [sys.executable, "-m", "aigw_harness"]
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "aigw-fake-token-0000000000000000000000"
TENANT = {
    "tenantId": "load",
    "accountId": ACCOUNT,
    "aiGatewayId": "load-gateway",
    "aiModels": {"chat": "@cf/meta/llama-3.1-8b-instruct-fast", "embeddings": "@cf/baai/bge-m3"},
    "vectorizeNamespace": "load",
    "rateLimit": {"perMinute": 1_000_000, "burst": 1_000_000},
    "featureFlags": {},
    "allowedHosts": [],
    "apiKeys": [],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 30 s")


def _cpu(process: psutil.Process) -> float:
    """CPU seconds of a process and its children (Locust's workers are children)."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--processes", type=int, default=0, help="Locust worker processes (0: one process)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="aigw-load-bench-"))
    (work / "tenants").mkdir()
    (work / "tenants" / "load.json").write_text(json.dumps(TENANT), encoding="utf-8")
    (work / "fake.json").write_text(
        json.dumps(
            {"accounts": [{"id": ACCOUNT, "api_tokens": [TOKEN], "gateways": [{"id": "load-gateway"}]}]}
        ),
        encoding="utf-8",
    )
    behaviour = {"default": {"tokens": args.tokens, "token_delay_ms": args.token_delay_ms}}
    (work / "behaviour.json").write_text(json.dumps(behaviour), encoding="utf-8")
    (work / "profile.yaml").write_text(
        "name: capacity\ntenants: [{tenant: load}]\nstream_ratio: 1.0\ngoals: {contract_violations: 0}\n",
        encoding="utf-8",
    )
    fake_port, gateway_port = _free_port(), _free_port()
    env = {**os.environ, "AIGW_API_TOKEN": TOKEN, "AIGW_ACCOUNT_ID": ACCOUNT}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    fake = subprocess.Popen(
        [*AIGW, "fake", "serve", "--port", str(fake_port), "--config", str(work / "fake.json"),
         "--behaviour", str(work / "behaviour.json"), "--log-level", "warning"],
        cwd=ROOT, env=env, **quiet,
    )  # fmt: skip
    gateway = subprocess.Popen(
        [*AIGW, "gateway", "serve", "--upstream", f"http://127.0.0.1:{fake_port}", "--tenants",
         str(work / "tenants"), "--port", str(gateway_port), "--account-id", ACCOUNT],
        cwd=ROOT, env=env, **quiet,
    )  # fmt: skip
    try:
        _wait_ready(f"http://127.0.0.1:{fake_port}/__aigw/behaviour", fake)
        _wait_ready(f"http://127.0.0.1:{gateway_port}/health", gateway)
        servers = {"fake": psutil.Process(fake.pid), "gateway": psutil.Process(gateway.pid)}
        before = {name: _cpu(proc) for name, proc in servers.items()}
        started = time.perf_counter()
        load = subprocess.Popen(
            [*AIGW, "load", "--target", "url", "--sut-url", f"http://127.0.0.1:{gateway_port}",
             "--target-option", f"upstream_url=http://127.0.0.1:{fake_port}",
             "--target-option", f"account_id={ACCOUNT}", "--target-option", f"api_token={TOKEN}",
             "--profile", str(work / "profile.yaml"), "--tenants", str(work / "tenants"),
             "--users", str(args.users), "--duration", f"{args.seconds}s",
             "--processes", str(args.processes), "--out", str(work / "out"), "-q"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        driver = psutil.Process(load.pid)
        peak_driver = 0.0
        while load.poll() is None:
            peak_driver = max(peak_driver, _cpu(driver))
            time.sleep(0.5)
        wall = time.perf_counter() - started
        after = {name: _cpu(proc) for name, proc in servers.items()}
        _out, err = load.communicate()
        if load.returncode not in (0, 1):
            raise SystemExit(f"aigw load failed ({load.returncode}):\n{err.decode()}")
    finally:
        for process in (fake, gateway):
            process.terminate()
        for process in (fake, gateway):
            process.wait(timeout=10)
    results = json.loads((work / "out" / "results.json").read_text(encoding="utf-8"))
    scenario = results["scenarios"][0]
    summary = scenario["load"]
    ttft = next(m for m in scenario["measurements"] if m["name"] == "ttft_ms")
    print(f"load generator: Locust {args.users} users, {args.processes or 1} process(es); {args.seconds} s")
    print(f"upstream: {args.tokens} tokens per answer, {args.token_delay_ms:g} ms apart")
    print(
        f"answers: {summary['answers']} ({summary['answers_per_s']:.1f}/s), complete {summary['complete']}, "
        f"contract violations {summary['contract_violations']}"
    )
    print(f"time to first token: p50 {ttft['p50']} ms, p95 {ttft['p95']} ms")
    for name in servers:
        spent = after[name] - before[name]
        print(f"cpu {name:<8} {spent:6.1f} s  ({spent / wall:5.0%} of one core)")
    share = peak_driver / wall
    print(f"cpu locust+aigw load {peak_driver:6.1f} s  ({share:5.0%} of one core; the load generator)")
    print(f"wall {wall:.1f} s on {psutil.cpu_count()} cores")


if __name__ == "__main__":
    main()
