"""Throughput of the fake's streamed responses against a bare ASGI app writing the same bytes.

Both servers run in their own process (uvicorn, one worker each, started here and stopped at the end);
the load generator runs in this process on loopback: keep-alive HTTP/1.1 connections, each sending the
same streamed request over and over, reading every chunk. The bare app answers with the exact bytes the
fake sent for that request (its headers too), one write per event, so the difference is the fake's own
work: routing, authentication, behaviour lookup, text generation, framing, the request store.

    .venv/bin/python benchmarks/fake_stream.py [--seconds 5] [--connections 8] [--tokens 32] [--rounds 2]

Prints responses/s and events/s for each, and the ratio fake / bare (goal: at least 0.6). On a shared
machine the throughput ratio moves with other load, so it also prints each server's CPU time per response
(from /proc, Linux only) and the ratio of those, which other load disturbs much less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sys
import time
from dataclasses import dataclass
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


def _serve_fake(port: int, tokens: int) -> None:
    import uvicorn

    from fakes.app import FakeApp
    from fakes.behaviour import BehaviourDocument, Outcome
    from fakes.config import AccountConfig, FakeConfig, GatewayConfig
    from fakes.state.fake import FakeState

    config = FakeConfig(
        accounts=[AccountConfig(id=ACCOUNT, api_tokens=[TOKEN], gateways=[GatewayConfig(id=GATEWAY)])]
    )
    state = FakeState(config)
    state.behaviour.load(BehaviourDocument(default=Outcome(tokens=tokens)))
    uvicorn.run(
        FakeApp(state), host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )


def _serve_bare(port: int, events: list[bytes], headers: list[tuple[bytes, bytes]]) -> None:
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def _request_bytes(port: int) -> bytes:
    body = json.dumps({"prompt": "Tell me about Cloudflare Workers.", "stream": True}).encode()
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
    fake = context.Process(target=_serve_fake, args=(fake_port, args.tokens), daemon=True)
    fake.start()
    bare: multiprocessing.process.BaseProcess | None = None
    try:
        await _wait_listening(fake_port)
        headers, sample = await _fetch_once(fake_port)
        events = _split_events(sample)
        bare = context.Process(target=_serve_bare, args=(bare_port, events, headers), daemon=True)
        bare.start()
        await _wait_listening(bare_port)
        print(
            f"stream: {len(events)} events, {len(sample)} bytes; {args.connections} connections; "
            f"{args.rounds} x {args.seconds:g} s per server"
        )
        totals = {"fake": Result(0, 0, 0.0), "bare": Result(0, 0, 0.0)}
        await _load(fake_port, 0.5, args.connections)  # warm-up
        await _load(bare_port, 0.5, args.connections)
        pids = {"fake": fake.pid, "bare": bare.pid}
        for _ in range(args.rounds):
            for name, port in (("fake", fake_port), ("bare", bare_port)):
                cpu_before = _cpu_seconds(pids[name])
                result = await _load(port, args.seconds, args.connections)
                cpu_after = _cpu_seconds(pids[name])
                total = totals[name]
                cpu = None
                if cpu_before is not None and cpu_after is not None:
                    cpu = (total.cpu or 0.0) + cpu_after - cpu_before
                totals[name] = Result(
                    total.responses + result.responses,
                    total.events + result.events,
                    total.seconds + result.seconds,
                    cpu,
                )
        for name, result in totals.items():
            cpu_text = ""
            if result.cpu is not None and result.responses:
                cpu_text = f"  {1000 * result.cpu / result.responses:6.3f} server CPU ms/response"
            line = (
                f"{name:>5}: {result.responses_per_s:9.1f} responses/s  {result.events_per_s:10.1f} events/s"
            )
            print(line + cpu_text)
        fake_total, bare_total = totals["fake"], totals["bare"]
        ratio = fake_total.responses_per_s / bare_total.responses_per_s
        print(f"ratio fake/bare, responses/s: {ratio:.2f} (goal >= 0.6)")
        if fake_total.cpu and bare_total.cpu and fake_total.responses and bare_total.responses:
            cpu_ratio = (bare_total.cpu / bare_total.responses) / (fake_total.cpu / fake_total.responses)
            print(f"ratio fake/bare, by server CPU per response: {cpu_ratio:.2f}")
        return 0
    finally:
        for process in (fake, bare):
            if process is not None and process.is_alive():
                process.terminate()
                process.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
