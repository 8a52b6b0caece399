"""Run mitmproxy in reverse-proxy mode in front of one or more upstreams, with the record and fault addons.

``running_proxy`` starts one mitmproxy master in-process (no console, no flow dump) for the length of an
``async with`` block, with one reverse-proxy listener per upstream, and yields their base URLs in the same
order; requests sent there go to the matching upstream and are recorded as cassettes (all in one
directory: Cloudflare's gateway and API hosts have disjoint paths) and/or given faults. One master serves
every upstream because mitmproxy keeps some state per process. The master runs in a ``TaskGroup`` owned
by the block, and is shut down when the block ends.
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

from aigw_harness.errors import ConfigError

try:  # mitmproxy is the [proxy] extra: say how to get it rather than fail with an import traceback
    import mitmproxy  # noqa: F401
except ModuleNotFoundError:
    raise ConfigError(
        "recording and the proxy need mitmproxy, which is not installed here: "
        "pip install 'aigw-harness[proxy]'"
    ) from None

from aigw_harness.proxy.faults import FaultInjector
from aigw_harness.proxy.record import Recorder
from aigw_harness.proxy.redaction import DEFAULT_SECRET_ENV, Redactor

__all__ = ["ProxySettings", "running_proxy"]


@dataclass(frozen=True)
class ProxySettings:
    upstreams: Sequence[str]
    """Origins (``https://gateway.ai.cloudflare.com``); each gets its own listening port."""
    cassette_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    """The first listener's port (0: a free one); further listeners take free ports."""
    redact_env: Sequence[str] = DEFAULT_SECRET_ENV
    fault_options: dict[str, Any] = field(default_factory=dict)
    """``aigw_fault_*`` options, e.g. ``{"aigw_fault_cut_after": 3}``."""


def _free_port(host: str) -> int:
    # A small race (the port could be taken before mitmproxy binds it) is accepted: loopback, short-lived.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running_proxy(
    settings: ProxySettings, redactor: Redactor | None = None
) -> AsyncIterator[tuple[list[str], Recorder, FaultInjector]]:
    """Yield ``(proxy_urls, recorder, injector)``. ``redactor`` replaces the one built from ``redact_env``."""
    if not settings.upstreams:
        raise ConfigError("--upstream: give at least one upstream URL")
    for upstream in settings.upstreams:
        if not upstream.startswith(("http://", "https://")):
            raise ConfigError(f"--upstream {upstream!r}: give an http:// or https:// URL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ldap3/pyasn1 at mitmproxy's import time
        from mitmproxy import options
        from mitmproxy.tools.dump import DumpMaster

    ports = [settings.port or _free_port(settings.host)]
    while len(ports) < len(settings.upstreams):
        port = _free_port(settings.host)
        if port not in ports:
            ports.append(port)
    modes = [f"reverse:{u}@{p}" for u, p in zip(settings.upstreams, ports, strict=True)]
    opts: Any = options.Options(mode=modes, listen_host=settings.host, ssl_insecure=False)
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
            for port in ports:
                await _wait_listening(settings.host, port)
            yield [f"http://{settings.host}:{port}" for port in ports], recorder, injector
        finally:
            # mitmproxy leaves its listeners open at shutdown (its own process exits); we stay, so stop them.
            proxyserver = master.addons.get("proxyserver")
            if proxyserver is not None:
                await proxyserver.servers.update([])
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
