"""The wire client's response parsing: any split of a chunked response decodes to the same head and body,
and broken framing is a ``WireError``; against real servers it keeps connections alive, reads bodies to
the connection's close, and reports a body cut before its end."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aigw_fakes.server import FakeGateway
from aigw_harness.gateway.wire import WireError, WirePool, _ResponseParser
from tests.loopback import loopback_server

from .conftest import FAKE_ACCOUNT, FAKE_TOKEN, LLAMA_FAST

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def feed(parser: _ResponseParser, data: bytes) -> bytes:
    """Parse ``data``; the body it completed, in one piece."""
    parser.parse(data)
    return parser.take_body()


def chunked(parts: list[bytes], trailer: bytes = b"") -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
    return body + b"0\r\n" + trailer + b"\r\n"


@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    st.sampled_from([b"", b"x-trailer: 1\r\n"]),
)
@example([b"data: {}\n\n"], [3, 4], b"")
def test_any_split_decodes_to_the_same_body(parts: list[bytes], cuts: list[int], trailer: bytes) -> None:
    raw = HEAD + chunked(parts, trailer)
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    parser = _ResponseParser()
    out = b"".join(feed(parser, piece) for piece in pieces if piece)
    assert out == b"".join(parts)
    assert parser.status == 200
    assert parser.headers["content-type"] == "text/event-stream"
    assert parser.done


def test_everything_one_read_brings_comes_out_at_once() -> None:
    parser = _ResponseParser()
    assert feed(parser, HEAD + chunked([b"one ", b"two ", b"three"])) == b"one two three"
    assert parser.done


@pytest.mark.parametrize("raw", [b"zz\r\n", b"3\r\nabcX\r\n", b"-1\r\n"])
def test_broken_framing_is_a_wire_error(raw: bytes) -> None:
    with pytest.raises(WireError, match=r"not a valid HTTP/1\.1 response"):
        feed(_ResponseParser(), HEAD + raw)


def test_an_interim_response_is_skipped_for_the_final_one() -> None:
    parser = _ResponseParser()
    hints = b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n"
    body = feed(parser, hints + HEAD + chunked([b"ok"]))
    assert parser.status == 200
    assert "link" not in parser.headers
    assert body == b"ok"
    assert parser.done


def test_a_status_line_that_is_not_http_is_a_wire_error() -> None:
    with pytest.raises(WireError, match=r"not a valid HTTP/1\.1 response"):
        feed(_ResponseParser(), b"SSH-2.0-OpenSSH\r\n\r\n")


def test_a_head_past_the_limit_is_a_wire_error() -> None:
    parser = _ResponseParser()
    feed(parser, b"HTTP/1.1 200 OK\r\n")
    filler = b"x-filler: " + b"a" * 1000 + b"\r\n"
    for _ in range(64):
        feed(parser, filler)
    with pytest.raises(WireError, match="response head larger than"):
        feed(parser, filler)


@asynccontextmanager
async def raw_server(answer: bytes) -> AsyncIterator[str]:
    """A server that reads one request head and writes ``answer``, then closes the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with loopback_server(handle) as url:
        yield f"{url}/run"


async def test_a_body_without_length_is_read_to_the_close() -> None:
    pool = WirePool()
    async with raw_server(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it") as url:
        response = await pool.request(url, {}, b"")
        assert await response.aread() == b"all of it"
        await response.aclose()
    assert pool._idle == {}  # a connection whose body ended with its close is not kept
    await pool.aclose()


@pytest.mark.parametrize(
    "answer",
    [HEAD + b"5\r\nhello\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"],
    ids=["chunked", "content-length"],
)
async def test_a_body_cut_before_its_end_is_a_wire_error(answer: bytes) -> None:
    pool = WirePool()
    async with raw_server(answer) as url:
        response = await pool.request(url, {}, b"")
        with pytest.raises(WireError, match="ended before its end"):
            await response.aread()
        await response.aclose()
    await pool.aclose()


async def test_the_client_reads_both_bodies_and_keeps_the_connection(fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "a b c"}})
    pool = WirePool()
    url = f"{fake.base_url}/v1/{FAKE_ACCOUNT}/gw1/workers-ai/{LLAMA_FAST}"
    headers = {"authorization": f"Bearer {FAKE_TOKEN}", "content-type": "application/json"}
    bodies = []
    try:
        for stream in (False, True, False):
            payload = json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": stream})
            response = await pool.request(url, headers, payload.encode())
            assert response.status_code == 200
            bodies.append(await response.aread())
            await response.aclose()
        assert sum(len(idle) for idle in pool._idle.values()) == 1  # one connection served all three
    finally:
        await pool.aclose()
    assert json.loads(bodies[0])["result"]["response"] == "a b c"
    assert bodies[1].rstrip().endswith(b"data: [DONE]")


async def test_a_reader_slower_than_the_server_gets_the_whole_body() -> None:
    # Far more than the client keeps parsed but unread: the socket is paused and resumed on the way.
    parts = [bytes([65 + i % 26]) * 65536 for i in range(32)]
    async with raw_server(HEAD + chunked(parts)) as url:
        pool = WirePool()
        response = await pool.request(url, {}, b"")
        received = bytearray()
        async for piece in response.aiter_bytes():
            received += piece
            await asyncio.sleep(0.002)
        await response.aclose()
        await pool.aclose()
    assert bytes(received) == b"".join(parts)


class KeptAlive:
    """A connection handler that answers every request head with ``respond`` and counts connections."""

    def __init__(self, respond: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.connections = 0
        self._respond = respond

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await self._respond(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.mark.parametrize("stray", [b"HTTP/1.1 200 OK\r\n", b"\x00 not http"], ids=["a head", "not http"])
@pytest.mark.parametrize("pause", [None, 0.005], ids=["same-write", "later"])
async def test_bytes_after_a_response_retire_its_connection(stray: bytes, pause: float | None) -> None:
    async def respond(writer: asyncio.StreamWriter) -> None:
        # A complete response, then bytes no request asked for.
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        if pause is not None:
            await writer.drain()
            await asyncio.sleep(pause)
        writer.write(stray)
        await writer.drain()

    handle = KeptAlive(respond)
    pool = WirePool()
    async with loopback_server(handle) as url:
        for _ in range(2):
            response = await pool.request(f"{url}/run", {}, b"")
            assert await response.aread() == b"ok"  # the answer is whole, whatever follows it
            await response.aclose()
            await asyncio.sleep(0.01)  # the stray bytes arrive
        await pool.aclose()
    assert handle.connections == 2


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_https_streams_and_keeps_the_connection(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunked([b"data: one\n\n", b"data: two\n\n"]))
        await writer.drain()

    handle = KeptAlive(respond)
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_tls)
    pool = WirePool()
    pool._tls = ssl.create_default_context(cafile=str(cert))  # the system's roots do not know this one
    try:
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/run"
        for _ in range(2):
            response = await pool.request(url, {}, b"{}")
            assert response.status_code == 200
            assert await response.aread() == b"data: one\n\ndata: two\n\n"
            await response.aclose()
    finally:
        await pool.aclose()
        server.close()
        await server.wait_closed()
    assert handle.connections == 1
