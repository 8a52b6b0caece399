"""The guarded HTTP/1.1 protocol both servers run on (``aigw_fakes.hardened_http.uvicorn_settings``), driven
through its asyncio ``Protocol`` interface with a transport that records every write."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from aigw_fakes.hardened_http import Limits, listening_socket, uvicorn_settings

REQUEST = b"POST /chat HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"


def envelope(status: int, message: str) -> bytes:
    return json.dumps({"ok": False, "error": {"code": status, "message": message}}).encode()


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

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(name, default)


def connect(app: Any, limits: Limits | None = None) -> tuple[asyncio.Protocol, RecordingTransport]:
    settings = uvicorn_settings(limits or Limits(), envelope)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", **settings)
    config.load()
    protocol = settings["http"](config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_response_head_leaves_with_the_first_body_part() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol, transport = connect(app)
    protocol.data_received(REQUEST)
    await settle()
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n5\r\nfirst\r\n")  # head and the first chunk, one write
    assert transport.writes[1:] == [b"0\r\n\r\n"]


async def test_a_head_whose_body_is_not_ready_leaves_at_the_end_of_its_round() -> None:
    body_ready = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await body_ready.wait()
        await send({"type": "http.response.body", "body": b"late", "more_body": False})

    protocol, transport = connect(app)
    protocol.data_received(REQUEST)
    await settle()
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")
    body_ready.set()
    await settle()
    assert transport.writes[1:] == [b"4\r\nlate\r\n0\r\n\r\n"]


async def test_a_head_in_pieces_past_the_limit_is_refused_in_the_envelope() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never reached
        raise AssertionError("a refused head must not reach the app")

    protocol, transport = connect(app, Limits(max_head_bytes=1024))
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: x\r\n")
    for _ in range(3):
        protocol.data_received(b"x-filler: " + b"a" * 500)  # one header that never ends
    assert transport.closed
    head, _, body = transport.writes[-1].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert json.loads(body)["error"] == {"code": 431, "message": "request head larger than 1024 bytes"}


async def test_http_1_1_without_host_is_refused_before_the_app() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never reached
        raise AssertionError("a request without host must not reach the app")

    protocol, transport = connect(app)
    protocol.data_received(b"GET / HTTP/1.1\r\n\r\n")
    await settle()
    assert transport.closed
    assert transport.writes[-1].startswith(b"HTTP/1.1 400 ")
    assert b"needs a host header" in transport.writes[-1]


async def test_connections_accepted_on_asyncios_own_loop_send_small_writes_at_once() -> None:
    """TCP_NODELAY on every accepted connection, whatever the event loop: without it, each event of a
    stream on a kept-alive connection can wait for Nagle's algorithm and the client's delayed ACK."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    sock = listening_socket("127.0.0.1", 0)
    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        assert await asyncio.wait_for(accepted, 5) == 1
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_pipelined_head_that_never_ends_is_timed_from_its_first_byte() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})

    protocol, transport = connect(app, Limits(head_timeout_s=0.05))
    protocol.data_received(REQUEST + b"GET /next HTTP/1.1\r\nhost: x\r\n")  # the second head stops here
    await settle()
    assert b"\r\n\r\n2\r\nok\r\n0\r\n\r\n" in b"".join(transport.writes)  # the first request was answered
    assert not transport.closed
    await asyncio.sleep(0.2)
    assert transport.closed
    head, _, body = transport.writes[-1].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body)["error"]["message"] == "request head incomplete after 0.05 s"
