"""Throughput of the fake's streamed responses against a bare ASGI app writing the same bytes.

Both servers run in their own process (uvicorn, one worker each, started here and stopped at the end):
the fake as ``aigw fake serve`` runs it (``aigw_fakes.server.serve_forever``, with its hardened HTTP layer),
and, on the same HTTP layer, a bare ASGI app that answers with the exact bytes the fake sent for the same
request (its headers too), one write per event, so the difference is the fake's own work: routing,
authentication, behaviour lookup, text generation, framing, the request store.

The load generator is ``wrk`` (C, from Debian: ``apt-get install wrk``) when it is installed, else a raw
socket asyncio client in this process; keep-alive HTTP/1.1 connections, each sending the same streamed
request over and over, reading every byte. The one used is named in the output. Rounds alternate between
the servers, so that both see the same background load.

    .venv/bin/python benchmarks/fake_stream.py [--seconds 5] [--connections 50] [--tokens 32] [--rounds 2]
                                               [--load wrk|asyncio]

Prints responses/s and events/s for each, and the ratio fake / bare (goal: at least 0.8, never below
0.6). On a shared machine the throughput ratio moves with other load, so it also prints each server's CPU
time per response (from /proc, Linux only) and the ratio of those, which other load disturbs much less.
With wrk, its socket errors (connect, read, write, timeout) are printed per server as figures of the run: a
timeout is a stream that took longer than wrk's 2 s limit, which a busy machine causes. The run fails only
when a server answers something other than a 200 stream or no stream completes in a round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "bench-token"
GATEWAY = "bench"
MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
PATH = f"/v1/{ACCOUNT}/{GATEWAY}/workers-ai/{MODEL}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_fake(port: int, tokens: int, behaviour_file: str) -> None:
    from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
    from aigw_fakes.server import serve_forever

    with open(behaviour_file, "w", encoding="utf-8") as out:
        json.dump({"default": {"tokens": tokens}}, out)
    config = FakeConfig(
        accounts=[AccountConfig(id=ACCOUNT, api_tokens=[TOKEN], gateways=[GatewayConfig(id=GATEWAY)])],
        behaviour_file=behaviour_file,
    )
    serve_forever(config, "127.0.0.1", port, log_level="warning")


def _serve_bare(port: int, events: list[bytes], headers: list[tuple[bytes, bytes]]) -> None:
    import logging

    import uvicorn

    from aigw_fakes.hardened_http import Limits, listening_socket, uvicorn_settings
    from aigw_fakes.wire.errors import http_refusal

    # As the fake does (aigw_fakes.server): no warning per write to a client that left when a round ended.
    logging.getLogger("asyncio").addFilter(
        lambda record: record.getMessage() != "socket.send() raised exception."
    )

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # Bound and served as the fake is (aigw_fakes.server): the same socket options and the same guarded
    # HTTP layer, so that the difference between the two is the fake's own work.
    sock = listening_socket("127.0.0.1", port)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        **uvicorn_settings(Limits(), http_refusal),
    )
    uvicorn.Server(config).run(sockets=[sock])


REQUEST_BODY = json.dumps({"prompt": "Tell me about Cloudflare Workers.", "stream": True})


def _request_bytes(port: int) -> bytes:
    body = REQUEST_BODY.encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {TOKEN}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """One chunked response; returns the de-chunked body."""
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"unexpected response: {head[:200]!r}")
    return await _read_chunked(reader)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.strip().split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(body)
        body += await reader.readexactly(size + 2)
        del body[-2:]


_SERVER_HEADERS = {b"date", b"server", b"transfer-encoding", b"content-length"}


async def _fetch_once(port: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """One response from the fake: the headers the app set (not the server's own) and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request_bytes(port))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        headers = []
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name and name.lower() not in _SERVER_HEADERS:
                headers.append((name.lower(), value.strip()))
        body = await _read_chunked(reader)
        return headers, body
    finally:
        writer.close()
        await writer.wait_closed()


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process, from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    responses: int
    events: int
    seconds: float
    cpu: float | None = None  # server CPU seconds spent on these responses
    errors: dict[str, int] = field(default_factory=dict)  # wrk's socket errors by kind (timeout, read, ...)

    @property
    def responses_per_s(self) -> float:
        return self.responses / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


async def _load(port: int, seconds: float, connections: int) -> Result:
    request = _request_bytes(port)
    deadline = time.perf_counter() + seconds
    responses = events = 0

    async def worker() -> None:
        nonlocal responses, events
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                await writer.drain()
                body = await _read_response(reader)
                responses += 1
                events += body.count(b"\n\n")
        finally:
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(connections):
            group.create_task(worker())
    return Result(responses, events, time.perf_counter() - start)


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer {token}"
"""


async def _load_wrk(port: int, seconds: float, connections: int, events_per_response: int) -> Result:
    """wrk with one thread (the servers are single-process; wrk's C loop is not the bottleneck)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT.format(body=json.dumps(REQUEST_BODY), token=TOKEN))
    try:
        command = [
            "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script.name,
            f"http://127.0.0.1:{port}{PATH}",
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output = (await process.communicate())[0].decode()
    finally:
        os.unlink(script.name)
    found = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed:\n{output}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}[found.group(3)]
    responses = int(found.group(1))
    errors = wrk_errors(output)
    # A response that is not a 200 stream is the fake failing, and so is a round with no response at all;
    # socket errors (above all timeouts: a stream slower than wrk's 2 s limit on a busy machine) are
    # figures of the round, reported with the rates.
    if errors.get("non-2xx") or responses == 0:
        raise RuntimeError(f"wrk saw failed responses:\n{output}")
    return Result(responses, responses * events_per_response, float(found.group(2)) * scale, errors=errors)


def wrk_errors(output: str) -> dict[str, int]:
    """wrk's error counts: ``Socket errors: connect N, read N, write N, timeout N`` and non-2xx answers."""
    errors: dict[str, int] = {}
    socket_line = re.search(r"Socket errors:([^\n]*)", output)
    if socket_line is not None:
        for kind, count in re.findall(r"(connect|read|write|timeout) (\d+)", socket_line.group(1)):
            errors[kind] = int(count)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx is not None:
        errors["non-2xx"] = int(non_2xx.group(1))
    return errors


async def _wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"server on port {port} did not start")


def _split_events(body: bytes) -> list[bytes]:
    parts = body.split(b"\n\n")
    return [part + b"\n\n" for part in parts[:-1] if part]


async def main_async(args: argparse.Namespace) -> int:
    context = multiprocessing.get_context("spawn")
    fake_port, bare_port = _free_port(), _free_port()
    workdir = tempfile.mkdtemp(prefix="fake-stream-")
    behaviour_file = os.path.join(workdir, "behaviour.json")
    fake = context.Process(target=_serve_fake, args=(fake_port, args.tokens, behaviour_file), daemon=True)
    fake.start()
    bare: multiprocessing.process.BaseProcess | None = None
    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)
    try:
        await _wait_listening(fake_port)
        headers, sample = await _fetch_once(fake_port)
        events = _split_events(sample)
        bare = context.Process(target=_serve_bare, args=(bare_port, events, headers), daemon=True)
        bare.start()
        await _wait_listening(bare_port)
        generator = "wrk (C, 1 thread)" if use_wrk else "asyncio raw-socket client (this process)"

        async def load(port: int, seconds: float) -> Result:
            if use_wrk:
                return await _load_wrk(port, seconds, args.connections, len(events))
            return await _load(port, seconds, args.connections)

        print(
            f"stream: {len(events)} events, {len(sample)} bytes; {args.connections} connections; "
            f"{args.rounds} x {args.seconds:g} s per server; load generator: {generator}"
        )
        totals = {"fake": Result(0, 0, 0.0), "bare": Result(0, 0, 0.0)}
        await load(fake_port, 1.0)  # warm-up
        await load(bare_port, 1.0)
        pids = {"fake": fake.pid, "bare": bare.pid}
        pair_ratios: list[float] = []
        for _ in range(args.rounds):
            this_round: dict[str, float] = {}
            for name, port in (("fake", fake_port), ("bare", bare_port)):
                cpu_before = _cpu_seconds(pids[name])
                result = await load(port, args.seconds)
                cpu_after = _cpu_seconds(pids[name])
                this_round[name] = result.responses_per_s
                total = totals[name]
                cpu = None
                if cpu_before is not None and cpu_after is not None:
                    cpu = (total.cpu or 0.0) + cpu_after - cpu_before
                errors = dict(total.errors)
                for kind, count in result.errors.items():
                    errors[kind] = errors.get(kind, 0) + count
                totals[name] = Result(
                    total.responses + result.responses,
                    total.events + result.events,
                    total.seconds + result.seconds,
                    cpu,
                    errors,
                )
            pair_ratios.append(this_round["fake"] / this_round["bare"])
        for name, result in totals.items():
            cpu_text = ""
            if result.cpu is not None and result.responses:
                cpu_text = f"  {1000 * result.cpu / result.responses:6.3f} server CPU ms/response"
            line = (
                f"{name:>5}: {result.responses_per_s:9.1f} responses/s  {result.events_per_s:10.1f} events/s"
            )
            if use_wrk:
                counted = {kind: count for kind, count in result.errors.items() if count}
                errors_text = ", ".join(f"{kind} {count}" for kind, count in sorted(counted.items()))
                cpu_text += f"  socket errors: {errors_text or 'none'}"
            print(line + cpu_text)
        fake_total, bare_total = totals["fake"], totals["bare"]
        ratio = fake_total.responses_per_s / bare_total.responses_per_s
        print(f"ratio fake/bare, responses/s: {ratio:.2f} (goal >= 0.8, never below 0.6); load: {generator}")
        pairs = sorted(pair_ratios)
        print(
            f"ratio per round (fake then bare, back to back): median {pairs[len(pairs) // 2]:.2f}, "
            f"range {pairs[0]:.2f}-{pairs[-1]:.2f}"
        )
        if fake_total.cpu and bare_total.cpu and fake_total.responses and bare_total.responses:
            cpu_ratio = (bare_total.cpu / bare_total.responses) / (fake_total.cpu / fake_total.responses)
            print(f"ratio fake/bare, by server CPU per response: {cpu_ratio:.2f}")
        return 0
    finally:
        for process in (fake, bare):
            if process is not None and process.is_alive():
                process.terminate()
                process.join(5)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--load", choices=["auto", "wrk", "asyncio"], default="auto")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
