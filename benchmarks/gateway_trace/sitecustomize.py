"""Per-turn timestamps inside ``aigw gateway serve``, for ``benchmarks/gateway_overhead.py --trace``.

Imported at interpreter start (this folder is put first on ``PYTHONPATH`` of the traced gateway only) when
``AIGW_GATEWAY_TRACE`` names a file. It wraps, in the gateway process, the points a streamed turn passes on
its way to the first token and appends one JSON line per turn to ``$AIGW_GATEWAY_TRACE.<pid>``:

- ``head_to_app``: the server began parsing the request -> the app was called (wall seconds);
- ``app_to_send``: the app was called -> the upstream request was written (wall, and this thread's CPU);
- ``upstream_wait``: the upstream request was written -> its first bytes arrived;
- ``first_bytes_to_token``: those bytes arrived -> the first token was handed to the server (wall, CPU).

The wrappers cost time of their own: a traced run's time to first token is not a figure of the gateway.
"""

from __future__ import annotations

import os
import sys

if os.environ.get("AIGW_GATEWAY_TRACE") and sys.argv[1:3] == ["gateway", "serve"]:
    import contextvars
    import json
    import time
    from typing import Any

    from aigw_fakes import hardened_http
    from aigw_harness.gateway import chat, responders, wire

    _TRACE = os.environ["AIGW_GATEWAY_TRACE"] + f".{os.getpid()}"
    _turn: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("aigw_trace_turn")
    _rows: list[str] = []
    _wall, _cpu = time.perf_counter, time.thread_time

    def _flush() -> None:
        with open(_TRACE, "a", encoding="utf-8") as out:
            out.writelines(_rows)
        _rows.clear()

    begin, headers_complete = (
        hardened_http._GuardedProtocol.on_message_begin,
        hardened_http._GuardedProtocol.on_headers_complete,
    )

    def on_message_begin(self: Any) -> None:
        self._aigw_trace_head = _wall()
        begin(self)

    def on_headers_complete(self: Any) -> None:
        headers_complete(self)
        scope = getattr(self, "scope", None)
        if isinstance(scope, dict):
            scope["aigw.trace.head"] = getattr(self, "_aigw_trace_head", None)

    hardened_http._GuardedProtocol.on_message_begin = on_message_begin  # type: ignore[method-assign]
    hardened_http._GuardedProtocol.on_headers_complete = on_headers_complete  # type: ignore[method-assign]

    app_call = chat.ChatApp.__call__

    async def traced_call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("aigw.trace.head") is not None:
            _turn.set({"head": scope["aigw.trace.head"], "app": _wall(), "app_cpu": _cpu()})
        await app_call(self, scope, receive, send)

    chat.ChatApp.__call__ = traced_call  # type: ignore[method-assign]

    connection_send, connection_data = wire._Connection.send, wire._Connection.data_received

    def traced_send(self: Any, message: bytes, parser: Any) -> None:
        turn = _turn.get(None)
        if turn is not None and "send" not in turn:
            turn.update(send=_wall(), send_cpu=_cpu(), connection=self)
            self._aigw_trace_first = None
        connection_send(self, message, parser)

    def traced_data(self: Any, data: bytes) -> None:
        if getattr(self, "_aigw_trace_first", 0) is None:
            self._aigw_trace_first = (_wall(), _cpu())
        connection_data(self, data)

    wire._Connection.send = traced_send  # type: ignore[method-assign]
    wire._Connection.data_received = traced_data  # type: ignore[method-assign]

    stream_tokens = responders.StreamResponder.tokens

    async def traced_tokens(self: Any, *args: Any) -> None:
        first = not self.head_sent
        await stream_tokens(self, *args)
        turn = _turn.get(None)
        if not first or turn is None or "send" not in turn:
            return
        arrived = getattr(turn["connection"], "_aigw_trace_first", None)
        if arrived is None:
            return
        row = {
            "head_to_app": turn["app"] - turn["head"],
            "app_to_send": turn["send"] - turn["app"],
            "app_to_send_cpu": turn["send_cpu"] - turn["app_cpu"],
            "upstream_wait": arrived[0] - turn["send"],
            "first_bytes_to_token": _wall() - arrived[0],
            "first_bytes_to_token_cpu": _cpu() - arrived[1],
        }
        _rows.append(json.dumps(row) + "\n")
        if len(_rows) >= 50:  # the server is stopped by a signal: no exit hook runs
            _flush()

    responders.StreamResponder.tokens = traced_tokens  # type: ignore[method-assign]
