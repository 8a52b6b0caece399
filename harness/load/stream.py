"""One ``/chat`` answer under load, measured: time to first token, gaps, tokens, terminal event, contract.

``AnswerRecorder`` is fed the response's status, headers and body chunks as they arrive (with the time of
arrival) and gives an ``Answer``: the figures a load run reports for every stream. It decodes with the
project's one SSE decoder and judges the stream with the one ``/chat`` stream contract, so that a stream
counted as a contract violation here is one the scenario checks and the pytest helpers reject too.

Pure: no sockets, no Locust, no clock of its own (callers pass ``perf_counter`` readings), so the Locust
user and the tests share it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from aigw_harness.sse import ServerSentEvent, SSEDecoder
from aigw_harness.stream_contract import StreamRecord, check_contract

__all__ = ["Answer", "AnswerRecorder", "outcome_class"]

_RAW_LIMIT = 256 * 1024  # the contract's framing rules read the raw bytes; longer answers keep the start


@dataclass(slots=True)
class Answer:
    """What one request got back, in the figures a load run reports."""

    stream: bool
    status: int
    ttft_ms: float | None = None
    """From sending the request to the first token (the first data event, or the JSON body)."""
    duration_ms: float = 0.0
    gaps_ms: list[float] = field(default_factory=list)
    """Between consecutive token events."""
    tokens: int = 0
    """Token events received (streams), or 1 for a JSON answer with a message."""
    terminal: str = "none"
    """``done``, ``error`` (an error event, then done), ``json`` (a JSON answer) or ``none`` (cut off)."""
    error_code: str | None = None
    """The platform's error code: from the JSON envelope or the stream's error event."""
    violations: list[str] = field(default_factory=list)
    """Broken stream contract rules, as ``rule: what was seen``."""
    transport_error: str | None = None

    @property
    def complete(self) -> bool:
        """A whole answer: 200, and a stream that ended in ``done`` without an error event, or a JSON body."""
        if self.transport_error is not None or self.status != 200:
            return False
        return self.terminal in ("done", "json") and self.error_code is None


def outcome_class(answer: Answer) -> str | None:
    """The error class of an incomplete answer, as Locust's failure table groups it (``None`` if complete)."""
    if answer.transport_error is not None:
        return f"transport: {answer.transport_error}"
    if answer.status != 200:
        return f"HTTP {answer.status} {answer.error_code or 'no error code'}"
    if answer.error_code is not None:
        return f"stream error event {answer.error_code}"
    if answer.terminal == "none":
        return "stream ended without done"
    return None


class AnswerRecorder:
    """Feed it one response as it arrives; ``finish`` gives the ``Answer``."""

    def __init__(self, *, stream: bool, sent_at: float) -> None:
        self._stream = stream
        self._sent_at = sent_at
        self._status = 0
        self._headers: dict[str, str] = {}
        self._decoder = SSEDecoder()
        self._events: list[ServerSentEvent] = []
        self._raw = bytearray()
        self._raw_cut = False
        self._body = bytearray()
        self._token_times: list[float] = []
        self._last_at = sent_at

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        self._status = status
        self._headers = {k.lower(): v for k, v in headers.items()}

    def chunk(self, data: bytes, at: float) -> None:
        self._last_at = at
        if not self._is_sse():
            self._body += data
            return
        if len(self._raw) + len(data) > _RAW_LIMIT:
            self._raw_cut = True
        if len(self._raw) < _RAW_LIMIT:
            self._raw += data[: _RAW_LIMIT - len(self._raw)]
        for event in self._decoder.feed(data):
            self._events.append(event)
            if event.event == "message":
                self._token_times.append(at)

    def finish(self, at: float, transport_error: str | None = None) -> Answer:
        self._last_at = max(self._last_at, at)
        answer = Answer(
            stream=self._is_sse(),
            status=self._status,
            duration_ms=(self._last_at - self._sent_at) * 1000,
            transport_error=transport_error,
        )
        if answer.stream:
            self._events.extend(self._decoder.flush())
            self._judge_stream(answer)
        else:
            self._judge_json(answer)
        return answer

    def _is_sse(self) -> bool:
        return self._headers.get("content-type", "").startswith("text/event-stream")

    def _judge_stream(self, answer: Answer) -> None:
        times = self._token_times
        answer.tokens = len(times)
        if times:
            answer.ttft_ms = (times[0] - self._sent_at) * 1000
            answer.gaps_ms = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        names = [event.event for event in self._events]
        if "done" in names:
            answer.terminal = "error" if "error" in names else "done"
        elif "error" in names:
            answer.terminal = "error"
        for event in self._events:
            if event.event == "error":
                answer.error_code = _code(event.data) or "unreadable error event"
                break
        if answer.transport_error is None:
            recorded = StreamRecord(
                status_code=self._status,
                headers=self._headers,
                raw=bytes(self._raw),
                events=self._events,
                raw_complete=not self._raw_cut,  # a kept prefix is not judged on how the body ends
            )
            answer.violations = [str(v) for v in check_contract(recorded)]

    def _judge_json(self, answer: Answer) -> None:
        try:
            document = json.loads(self._body) if self._body else None
        except ValueError:
            document = None
        if isinstance(document, dict):
            if document.get("ok") is True:
                answer.terminal = "json"
                answer.tokens = 1
                answer.ttft_ms = answer.duration_ms
            error = document.get("error")
            if isinstance(error, dict) and isinstance(error.get("code"), str):
                answer.error_code = error["code"]
        elif answer.status == 200:
            answer.error_code = "unreadable body"


def _code(data: str) -> str | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    code = document.get("code") if isinstance(document, dict) else None
    return code if isinstance(code, str) else None
