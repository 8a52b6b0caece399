"""``aigw fake serve`` announces its address only once a client can connect to it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
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


def test_the_announcement_names_the_account_token_and_gateways(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    config = tmp_path / "fake.yaml"
    config.write_text("accounts: [{id: acc1, api_tokens: [tok1], gateways: [{id: my-gw}]}]\n")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "aigw"),
                "fake",
                "serve",
                "--port",
                "0",
                "--config",
                str(config),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "gateways:" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
    text = log.read_text()
    assert "  account id: acc1\n" in text
    assert "  API token:  tok1 " in text
    assert "  gateways:   my-gw, default (created on first use, authentication on)\n" in text
