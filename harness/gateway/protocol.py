"""The gateway's HTTP/1.1 server protocol: the shared guarded h11 protocol (``fakes.hardened_http``), with
a response head sent together with the first piece of its body.

uvicorn writes a response head to the socket as soon as the app sends ``http.response.start``, and the
first body chunk in a second write. A streamed ``/chat`` answer sends its head with its first token (the
head names the model that served), so every stream paid two socket writes, and the client two wake-ups,
on the path to its first token. Here the head is held until the next write of the same response and goes
out with it in one write; if nothing follows before the event loop's current round of callbacks ends, the
head goes out alone then. The bytes on the wire are the same, and so is their order; only the number of
writes changes.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

__all__ = ["coalescing_protocol"]


class _HeldHead:
    """A transport stand-in for one response: holds the first write (the head) and prepends it to the
    next; everything else goes to the real transport."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._holding = True  # until the first write, the head, has been taken
        self._held: bytes | None = None
        self._flush: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        if self._holding:
            self._holding = False
            self._held = bytes(data)  # the head, written by uvicorn's send of ``http.response.start``
            return
        held, self._held = self._held, None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._transport.write(held + data if held else data)

    def arm(self) -> None:
        """Send the held head at the end of this round of callbacks at the latest."""
        self._holding = False
        if self._held is not None and self._flush is None:
            self._flush = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        held, self._held = self._held, None
        self._flush = None
        if held and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _CoalescingCycle(RequestResponseCycle):
    async def send(self, message: Any) -> None:
        if (
            message["type"] != "http.response.start"
            or self.response_started
            or self.disconnected
            or self.flow.write_paused
        ):
            await super().send(message)
            return
        # With writing not paused, uvicorn's send of the head does not suspend: nothing else can write to
        # this response's transport between the head and the holder's arming.
        transport = self.transport
        holder = _HeldHead(transport)
        self.transport = cast(asyncio.Transport, holder)
        try:
            await super().send(message)
        except BaseException:
            self.transport = transport
            holder.flush()
            raise
        holder.arm()


def coalescing_protocol(protocol: type[H11Protocol]) -> type[H11Protocol]:
    """``protocol`` whose responses send their head with the first body write."""

    class CoalescingProtocol(protocol):  # type: ignore[valid-type,misc]
        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            cycle = self.cycle
            # A request's cycle is made here (uvicorn's handle_events); its app task has not run yet.
            if cycle is not before and type(cycle) is RequestResponseCycle:
                cycle.__class__ = _CoalescingCycle

    CoalescingProtocol.__name__ = CoalescingProtocol.__qualname__ = f"Coalescing{protocol.__name__}"
    return CoalescingProtocol
