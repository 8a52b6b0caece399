"""``aigw fake serve`` announces its address only once a client can connect to it."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from aigw_fakes.config import FakeConfig
from aigw_fakes.server import serve_forever


class Announced(Exception):
    pass


def test_a_client_may_connect_as_soon_as_the_address_is_announced() -> None:
    connected: list[str] = []

    def announce(url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        # The server loop has not started yet: the connection must wait in the backlog, not be refused.
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            connected.append(url)
        raise Announced  # stop before serving

    with pytest.raises(Announced):
        serve_forever(FakeConfig(), "127.0.0.1", 0, "warning", announce)
    assert len(connected) == 1
