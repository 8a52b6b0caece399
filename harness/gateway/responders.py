"""How a turn's answer reaches the client: as SSE (``StreamResponder``) or as one JSON envelope
(``JsonResponder``). Both take tokens from the attempt loop; only the stream commits early.

SSE: one ``data`` event per upstream token (tokens read together are written together, one event each),
then ``event: error`` if the answer failed, then always ``event: done``. The stream's head is sent with the
first token, so that ``x-model-id`` can name the model that served. Header sets, key order and framing are
the platform's (``docs/reference-gateway.md``).
"""

from __future__ import annotations

import asyncio

from aigw_harness.gateway.admission import Turn
from aigw_harness.gateway.envelope import (
    ClientError,
    ClientGone,
    Send,
    client_error,
    dumps,
    fail_body,
    ok_body,
    send_json,
    with_trace,
    write,
)
from aigw_harness.gateway.settings import PlatformQuirks
from aigw_harness.sse import encode_event

__all__ = ["JsonResponder", "StreamResponder", "answer_error"]

Headers = list[tuple[bytes, bytes]]


def answer_error(turn: Turn, quirks: PlatformQuirks) -> ClientError:
    if quirks.generic_error_code:
        return client_error(None, requested_model_failed=False)
    return client_error(turn.error, requested_model_failed=turn.requested_model_failed)


class StreamResponder:
    def __init__(self, send: Send, quirks: PlatformQuirks) -> None:
        self.send = send
        self.quirks = quirks
        self.head_sent = False
        self._frame: tuple[bytes, bytes] | None = None

    @property
    def committed(self) -> bool:
        return self.head_sent

    async def tokens(self, turn: Turn, model: str, attempt_started: float, tokens: list[str]) -> None:
        if not self.head_sent:
            await self._start(turn, model, attempt_started)
        await write(self.send, b"".join([self._event(turn, token) for token in tokens]))

    async def served(self, turn: Turn, model: str, attempt_started: float) -> None:
        if not self.head_sent:
            await self._start(turn, model, attempt_started)

    async def end(self, turn: Turn) -> None:
        """``error`` (if the answer failed) and ``done``; the head first if nothing was sent yet."""
        turn.served_ended = turn.served_ended or asyncio.get_running_loop().time()
        if not self.head_sent:
            await self._start(turn, None, None)
        tail = b""
        if turn.error is not None:
            failure = answer_error(turn, self.quirks)
            payload = with_trace({"code": failure.code, "message": failure.message}, turn.trace_id)
            tail = encode_event(dumps(payload).decode(), event="error")
        tail += encode_event(self._done(turn), event="done")
        await write(self.send, tail)
        await write(self.send, b"", more=False)

    async def _start(self, turn: Turn, model: str | None, attempt_started: float | None) -> None:
        self.head_sent = True
        if model is not None:
            turn.served_model = model
            turn.served_started = attempt_started
            turn.record.ttft_ms = (asyncio.get_running_loop().time() - turn.started) * 1000
        headers: Headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            (b"x-tenant-id", turn.tenant.tenant_id.encode()),
        ]
        if turn.trace_id is not None:
            headers.append((b"x-trace-id", turn.trace_id.encode()))
        headers += turn.rate.headers()
        named = turn.selection.primary.model if self.quirks.stream_model_header_primary else model
        if named is not None:
            headers.append((b"x-model-id", named.encode()))
        headers.append((b"x-tokens-in", str(turn.estimated_in).encode()))
        try:
            await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        except OSError as exc:
            raise ClientGone from exc

    def _event(self, turn: Turn, token: str) -> bytes:
        if self._frame is None:
            # Every token event is the same JSON around its content: build the two halves once.
            head = dumps({"sessionId": turn.request.session_id, "role": "assistant", "content": ""})[:-3]
            tail = dumps(with_trace({"tenantId": turn.tenant.tenant_id}, turn.trace_id))[1:]
            self._frame = (b"data: " + head, b"," + tail + b"\n\n")
        head, tail = self._frame
        # Compact JSON never holds a raw CR or LF, so one data line carries the event.
        return head + dumps(token) + tail

    def _done(self, turn: Turn) -> str:
        if self.quirks.done_names_last_candidate:
            if turn.served_model is not None and turn.error is not None:
                return dumps({"done": True}).decode()
            if turn.served_model is None and turn.record.attempts:
                last = turn.record.attempts[-1]
                usage = {
                    "modelId": last.model,
                    "tokensIn": turn.estimated_in,
                    "latencyMs": round(last.duration_ms or 0),
                }
                return dumps({"done": True, "usage": usage}).decode()
        if turn.served_model is None:
            return dumps({"done": True}).decode()
        counts = turn.tracker.counts(turn.estimated_in)
        started = turn.served_started if turn.served_started is not None else turn.started
        ended = turn.served_ended if turn.served_ended is not None else asyncio.get_running_loop().time()
        usage = {
            "modelId": turn.served_model,
            "tokensIn": counts.tokens_in,
            "tokensOut": counts.tokens_out,
            "totalTokens": counts.tokens_total,
            "latencyMs": round((ended - started) * 1000),
        }
        return dumps({"done": True, "usage": usage}).decode()


class JsonResponder:
    """Collects the answer; nothing reaches the client until ``reply``, so any attempt may fall back."""

    committed = False

    def __init__(self, send: Send, quirks: PlatformQuirks) -> None:
        self.send = send
        self.quirks = quirks

    async def tokens(self, turn: Turn, model: str, attempt_started: float, tokens: list[str]) -> None:
        return None

    async def served(self, turn: Turn, model: str, attempt_started: float) -> None:
        loop_now = asyncio.get_running_loop().time()
        turn.served_model = model
        turn.served_started = attempt_started
        turn.served_ended = loop_now
        turn.record.ttft_ms = (loop_now - turn.started) * 1000

    async def reply(self, turn: Turn) -> None:
        """The envelope, after settlement (the headers carry the settled figures)."""
        record = turn.record
        if turn.served_model is None:
            failure = answer_error(turn, self.quirks)
            await send_json(
                self.send, failure.status, fail_body(failure.code, failure.message, turn.trace_id)
            )
            return
        started = turn.served_started if turn.served_started is not None else turn.started
        ended = turn.served_ended if turn.served_ended is not None else started
        headers: Headers = [
            *turn.rate.headers(),
            (b"x-model-id", turn.served_model.encode()),
            (b"x-tokens-in", str(record.tokens_in).encode()),
            (b"x-tokens-out", str(record.tokens_out).encode()),
            (b"x-tokens-total", str(record.tokens_total).encode()),
            (b"x-ai-latency-ms", str(round((ended - started) * 1000)).encode()),
        ]
        data = {
            "status": "accepted",
            "sessionId": turn.request.session_id,
            "stream": False,
            "message": "".join(turn.answer),
        }
        try:
            await send_json(self.send, 200, ok_body(data, turn.trace_id), headers)
        except OSError:
            turn.disconnected = True
