"""Fixtures for the Worker bridge tests: the test Worker's Wrangler file, Node availability, and a scripted
loopback upstream for tests that need exact replies rather than the fake's behaviour."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aigw_harness.errors import TargetUnavailable
from aigw_harness.worker.bridge import find_node, node_modules_dir
from tests.loopback import loopback_server

FIXTURES = Path(__file__).parent / "fixtures"
CHAT_WORKER = FIXTURES / "chat-worker" / "wrangler.jsonc"


def _node_missing() -> str | None:
    try:
        find_node()
        node_modules_dir()
    except TargetUnavailable as exc:
        return str(exc)
    return None


NODE_MISSING = _node_missing()
needs_node = pytest.mark.skipif(NODE_MISSING is not None, reason=NODE_MISSING or "")


@dataclass
class Reply:
    status: int = 200
    body: bytes | list[bytes] = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


class ScriptedUpstream:
    """A loopback HTTP/1.1 server answering each request with the next scripted ``Reply``."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[SeenRequest] = []
        self.url = ""

    def reply(self, reply: Reply) -> None:
        self.replies.append(reply)

    def reply_json(self, body: object, status: int = 200, **headers: str) -> None:
        self.reply(Reply(status, json.dumps(body).encode(), {"content-type": "application/json", **headers}))

    def reply_sse(self, frames: list[str], **headers: str) -> None:
        self.reply(Reply(200, [f.encode() for f in frames], {"content-type": "text/event-stream", **headers}))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                elif headers.get("transfer-encoding") == "chunked":
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        chunk = await reader.readexactly(size + 2)
                        if size == 0:
                            break
                        body += chunk[:-2]
                self.seen.append(SeenRequest(method, path, headers, body))
                reply = self.replies.pop(0) if self.replies else Reply(500, b"unscripted request", {})
                await self._write(writer, reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _write(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        head = [f"HTTP/1.1 {reply.status} X"] + [f"{k}: {v}" for k, v in reply.headers.items()]
        if isinstance(reply.body, list):
            writer.write(("\r\n".join([*head, "transfer-encoding: chunked"]) + "\r\n\r\n").encode())
            for part in reply.body:
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(("\r\n".join([*head, f"content-length: {len(reply.body)}"]) + "\r\n\r\n").encode())
            writer.write(reply.body)
        await writer.drain()


@contextlib.asynccontextmanager
async def serve_scripted() -> AsyncIterator[ScriptedUpstream]:
    scripted = ScriptedUpstream()
    async with loopback_server(scripted._serve) as url:
        scripted.url = url
        yield scripted


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    async with serve_scripted() as scripted:
        yield scripted
