"""The replay server: serves recorded cassettes as the upstream, with their original timing or scaled.

A request is matched to a cassette by method and path, after the request passes the same redaction the
recording did (so ``/v1/<account>/...`` matches ``/v1/[REDACTED:CLOUDFLARE_ACCOUNT_ID]/...`` when the
replay is told the account id under the same name). Among cassettes with that method and path, one with an
equal body wins (JSON compared as data), unused ones before used ones; otherwise the next unused one in
recording order; a cassette set can therefore be replayed once in order or answer repeats.

Timing: the head is sent ``head_offset_ms × time_scale`` after the request arrived and each chunk at its
``offset_ms × time_scale`` (``time_scale`` 0 sends everything at once). A ``FaultPlan`` can be applied on
top, including per-event delays, which the proxy cannot do. A request that matches nothing gets a 404 whose
message names the closest recorded requests.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigw_harness.proxy.cassette import Cassette, load_cassettes
from aigw_harness.proxy.fault_plan import FaultPlan, SSEEventFilter
from aigw_harness.proxy.redaction import Redactor
from aigw_harness.proxy.serve import serve_asgi
from aigw_harness.sse import SSEDecoder

__all__ = ["CassetteLibrary", "ReplayApp", "running_replay"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _same_body(recorded: bytes, incoming: bytes) -> bool:
    if recorded == incoming:
        return True
    try:
        return bool(json.loads(recorded) == json.loads(incoming))
    except ValueError:
        return False


@dataclass
class CassetteLibrary:
    cassettes: Sequence[Cassette]
    redactor: Redactor = field(default_factory=Redactor)
    used: list[int] = field(default_factory=list)
    """Index of the cassette served for each request, in order."""

    @classmethod
    def from_directory(cls, directory: str | Path, redactor: Redactor | None = None) -> CassetteLibrary:
        return cls([c for _, c in load_cassettes(directory)], redactor or Redactor())

    def match(self, method: str, path: str, body: bytes) -> Cassette | None:
        path = self.redactor.text(path)
        body = self.redactor.data(body)
        candidates = [
            i
            for i, c in enumerate(self.cassettes)
            if c.request.method == method.upper() and c.request.path == path and c.response is not None
        ]
        if not candidates:
            return None
        equal = [i for i in candidates if _same_body(self.cassettes[i].request.body_bytes(), body)]
        unused = [i for i in candidates if i not in self.used]
        preference = [i for i in equal if i not in self.used] + equal + unused + candidates[-1:]
        chosen = preference[0]
        self.used.append(chosen)
        return self.cassettes[chosen]

    def nearest(self, method: str, path: str, limit: int = 3) -> list[str]:
        wanted = f"{method.upper()} {self.redactor.text(path)}"
        recorded = sorted({f"{c.request.method} {c.request.path}" for c in self.cassettes})
        return difflib.get_close_matches(wanted, recorded, n=limit, cutoff=0.0)


class ReplayApp:
    """A plain ASGI app; timing uses ``sleep`` and ``clock`` so that tests can compress it."""

    def __init__(
        self,
        library: CassetteLibrary,
        *,
        time_scale: float = 1.0,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be 0 or more, not {time_scale}")
        self.library = library
        self.time_scale = time_scale
        self.faults = faults or FaultPlan()
        self.clock = clock
        self.sleep = sleep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        arrived = self.clock()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        cassette = self.library.match(scope["method"], path, body)
        if cassette is None or cassette.response is None:
            await self._no_match(send, scope["method"], path)
            return
        await self._wait_until(arrived, cassette.response.head_offset_ms)
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1", "replace"))
            for k, v in cassette.response.headers
        ]
        status = self.faults.status or cassette.response.status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if cassette.is_event_stream() and (self.faults.touches_events or self.faults.delay_events):
            await self._send_events(send, cassette, arrived)
        else:
            for chunk in cassette.chunks:
                await self._wait_until(arrived, chunk.offset_ms)
                await send({"type": "http.response.body", "body": chunk.raw(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_events(self, send: Send, cassette: Cassette, arrived: float) -> None:
        decoder = SSEDecoder()
        event_filter = SSEEventFilter(self.faults)
        index = 0
        for chunk in cassette.chunks:
            await self._wait_until(arrived, chunk.offset_ms)
            for event in decoder.feed(chunk.raw()):
                delay = self.faults.delay_events.get(index, 0.0)
                index += 1
                if delay:
                    await self.sleep(delay / 1000.0)
                for data in event_filter.process([event]):
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                if event_filter.cut:
                    return

    async def _wait_until(self, arrived: float, offset_ms: float) -> None:
        if self.time_scale == 0:
            return
        remaining = arrived + offset_ms * self.time_scale / 1000.0 - self.clock()
        if remaining > 0:
            await self.sleep(remaining)

    async def _no_match(self, send: Send, method: str, path: str) -> None:
        nearest = self.library.nearest(method, path)
        hint = f"; nearest recorded: {', '.join(nearest)}" if nearest else "; the cassette set is empty"
        message = f"AIGW: no cassette matches {method} {self.library.redactor.text(path)}{hint}"
        body = json.dumps({"success": False, "errors": [{"code": 404, "message": message}]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


@asynccontextmanager
async def running_replay(
    library: CassetteLibrary,
    *,
    time_scale: float = 1.0,
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[str]:
    """Serve ``library`` on loopback; yields the base URL."""
    async with serve_asgi(ReplayApp(library, time_scale=time_scale, faults=faults), host, port) as url:
        yield url
