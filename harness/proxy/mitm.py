"""Run mitmproxy in reverse-proxy mode in front of an upstream, with the record and fault addons.

``running_proxy`` starts mitmproxy's master in-process (no console, no flow dump) for the length of an
``async with`` block and yields the proxy's base URL; requests sent there go to ``upstream`` and are
recorded as cassettes and/or given faults. The master runs in a ``TaskGroup`` owned by the block, and is
shut down when the block ends.
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.proxy.faults import FaultInjector
from harness.proxy.record import DEFAULT_SECRET_ENV, Recorder
from harness.proxy.redaction import Redactor

__all__ = ["ProxySettings", "running_proxy"]


@dataclass(frozen=True)
class ProxySettings:
    upstream: str
    cassette_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    redact_env: Sequence[str] = DEFAULT_SECRET_ENV
    fault_options: dict[str, Any] = field(default_factory=dict)
    """``aigw_fault_*`` options, e.g. ``{"aigw_fault_cut_after": 3}``."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running_proxy(
    settings: ProxySettings, redactor: Redactor | None = None
) -> AsyncIterator[tuple[str, Recorder, FaultInjector]]:
    """Yield ``(proxy_url, recorder, injector)``. ``redactor`` replaces the one built from ``redact_env``."""
    if not settings.upstream.startswith(("http://", "https://")):
        raise ConfigError(f"--upstream {settings.upstream!r}: give an http:// or https:// URL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ldap3/pyasn1 at mitmproxy's import time
        from mitmproxy import options
        from mitmproxy.tools.dump import DumpMaster

    port = settings.port or _free_port(settings.host)
    opts: Any = options.Options(
        mode=[f"reverse:{settings.upstream}@{port}"], listen_host=settings.host, ssl_insecure=False
    )
    master: Any = DumpMaster(opts, with_termlog=False, with_dumper=False)
    injector, recorder = FaultInjector(), Recorder()
    # The injector first: the recorder wraps its stream filter and so records what upstream sent.
    master.addons.add(injector, recorder)
    try:
        opts.update(
            aigw_cassette_dir=str(settings.cassette_dir or ""),
            aigw_redact_env=list(settings.redact_env),
            **settings.fault_options,
        )
    except Exception as exc:  # mitmproxy's OptionsError and KeyError for unknown options
        raise ConfigError(f"proxy options: {exc}") from None
    if redactor is not None:
        recorder.set_redactor(redactor)
    async with asyncio.TaskGroup() as group:
        group.create_task(master.run())
        try:
            await _wait_listening(settings.host, port)
            yield f"http://{settings.host}:{port}", recorder, injector
        finally:
            master.shutdown()


async def _wait_listening(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise ConfigError(f"mitmproxy did not start listening on {host}:{port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
