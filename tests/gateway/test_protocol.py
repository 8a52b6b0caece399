"""The gateway's HTTP protocol: a response head goes out with the first body write, in one write, and the
bytes are those of the shared guarded protocol without it."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from fakes.hardened_http import Limits, uvicorn_settings
from harness.gateway.envelope import http_refusal
from harness.gateway.protocol import coalescing_protocol

REQUEST = b"POST /chat HTTP/1.1\r\nhost: gw.local\r\ncontent-length: 2\r\n\r\n{}"
HEADERS = [(b"content-type", b"text/event-stream"), (b"x-model-id", b"@cf/meta/llama")]


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8788), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def stream_app(pause_after_head: float) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        if pause_after_head:
            await asyncio.sleep(pause_after_head)
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def serve_once(app: Any, *, coalesce: bool) -> list[bytes]:
    settings = uvicorn_settings(Limits(), http_refusal)
    protocol_class = coalescing_protocol(settings["http"]) if coalesce else settings["http"]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", **settings)
    config.load()
    state = ServerState()
    protocol = protocol_class(config=config, server_state=state, app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(REQUEST)
    for _ in range(200):
        if protocol.cycle is not None and protocol.cycle.response_complete:
            break
        await asyncio.sleep(0.005)
    protocol.connection_lost(None)
    return transport.writes


async def test_head_and_first_event_go_out_in_one_write() -> None:
    writes = await serve_once(stream_app(0), coalesce=True)
    assert writes[0].startswith(b"HTTP/1.1 200 ")
    assert writes[0].endswith(b"\r\n\r\nb\r\ndata: one\n\n\r\n")  # the head, then the first chunk
    assert writes[1] == b"b\r\ndata: two\n\n\r\n"


async def test_the_bytes_are_those_of_the_plain_protocol() -> None:
    coalesced = await serve_once(stream_app(0), coalesce=True)
    plain = await serve_once(stream_app(0), coalesce=False)
    assert len(coalesced) == len(plain) - 1
    assert b"".join(coalesced) == b"".join(plain)


async def test_a_head_with_nothing_after_it_goes_out_alone() -> None:
    writes = await serve_once(stream_app(0.05), coalesce=True)
    assert writes[0].startswith(b"HTTP/1.1 200 ")
    assert writes[0].endswith(b"\r\n\r\n")  # sent at the end of its round, not held until the body
    assert writes[1] == b"b\r\ndata: one\n\n\r\n"
