"""Serve an ASGI app with uvicorn on loopback for the length of an ``async with`` block.

Used by the replay server and by tests; the server task lives in a ``TaskGroup`` owned by the context, so
it cannot outlive the block, and leaving the block shuts the server down (open streams included).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

__all__ = ["serve_asgi"]


@asynccontextmanager
async def serve_asgi(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Yield the base URL (``http://host:port``) while ``app`` is served."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP so that asyncio sets TCP_NODELAY on accepted connections (see aigw_fakes.server._bind).
    with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        async with asyncio.TaskGroup() as group:
            group.create_task(server.serve(sockets=[sock]))
            try:
                while not server.started:
                    if server.should_exit:
                        raise RuntimeError(f"the server on {host}:{bound_port} did not start")
                    await asyncio.sleep(0.005)
                yield f"http://{host}:{bound_port}"
            finally:
                server.should_exit = True
                server.force_exit = True
