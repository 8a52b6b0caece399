"""The platform's ``/chat`` SSE contract as checks over one recorded stream.

The contract (the platform's streaming ``/chat``): status 200, ``content-type: text/event-stream``; events
carry only ``data:`` and ``event:`` fields, each ends with a blank line, and each event's data is one
compact JSON document; the order is ``data``* → at most one ``event: error`` → exactly one ``event: done``,
which is the last event; nothing follows ``done``. Payloads:

- token events: ``{"sessionId", "role": "assistant", "content", "tenantId", "traceId"?}``;
- ``error``: ``{"code", "message", "traceId"?}``, strings only;
- ``done``: ``{"done": true, "usage"?: {"modelId"?, "tokensIn"?, "tokensOut"?, "totalTokens"?,
  "latencyMs"?}}``.

Every check returns ``Violation``s (empty when the rule holds) so that one failure can list everything
that is wrong with a stream at once. This module only judges what was recorded; ``sse_client`` records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "CONTRACT_RULES",
    "RecordedStream",
    "Violation",
    "check_contract",
    "check_data_events",
    "check_done_payload",
    "check_error_event",
    "check_events_json",
    "check_framing",
    "check_media_type",
    "check_nothing_after_done",
    "check_one_terminal_done",
    "check_order",
    "check_status",
    "payload",
]

DONE = "done"
ERROR = "error"
MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: ``rule`` is a short stable name, ``message`` says what was observed."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


class _Event(Protocol):
    @property
    def event(self) -> str: ...

    @property
    def data(self) -> str: ...


class RecordedStream(Protocol):
    """What a check needs to know about a received stream."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def raw(self) -> bytes: ...

    @property
    def truncated(self) -> bool: ...

    @property
    def sse_events(self) -> Sequence[_Event]: ...


def payload(data: str) -> Any:
    """The event's data as JSON, or ``None`` when it is not JSON."""
    try:
        return json.loads(data)
    except ValueError:
        return None


def _where(events: Sequence[_Event], name: str) -> list[int]:
    return [index + 1 for index, event in enumerate(events) if event.event == name]


def check_status(stream: RecordedStream) -> list[Violation]:
    if stream.status_code != 200:
        return [Violation("status", f"HTTP {stream.status_code}; a stream is always answered with 200")]
    return []


def check_media_type(stream: RecordedStream) -> list[Violation]:
    content_type = stream.headers.get("content-type")
    if content_type is None:
        return [Violation("content-type", "no content-type header; expected text/event-stream")]
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "text/event-stream":
        return [Violation("content-type", f"{content_type!r}; expected text/event-stream")]
    return []


def check_framing(stream: RecordedStream) -> list[Violation]:
    """Only ``data:`` and ``event:`` fields (comments allowed), and the stream ends on a blank line."""
    violations: list[Violation] = []
    text = stream.raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    foreign: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.startswith(":"):
            continue
        field = line.split(":", 1)[0]
        if field not in ("data", "event"):
            foreign.setdefault(field, number)
    for field, number in foreign.items():
        violations.append(
            Violation("framing", f"field {field!r} on line {number}; only data: and event: are sent")
        )
    if stream.truncated or (text and not text.endswith("\n\n")):
        violations.append(Violation("framing", "the stream ended inside an event (no closing blank line)"))
    return violations


def check_events_json(stream: RecordedStream) -> list[Violation]:
    """Every event's data is one compact JSON document."""
    violations: list[Violation] = []
    for index, event in enumerate(stream.sse_events, start=1):
        try:
            json.loads(event.data)
        except ValueError:
            violations.append(Violation("json", f"event #{index} data is not JSON: {_clip(event.data)}"))
            continue
        if not _compact(event.data):
            violations.append(
                Violation("json", f"event #{index} data is JSON but not compact: {_clip(event.data)}")
            )
    return violations


def check_one_terminal_done(stream: RecordedStream) -> list[Violation]:
    """Exactly one ``done`` event, and it is the last event."""
    events = stream.sse_events
    done_at = _where(events, DONE)
    if not done_at:
        return [Violation("terminal-done", f"no done event among {len(events)} events")]
    violations: list[Violation] = []
    if len(done_at) > 1:
        violations.append(
            Violation("terminal-done", f"{len(done_at)} done events (at {_positions(done_at)}); expected one")
        )
    if done_at[-1] != len(events):
        violations.append(
            Violation("terminal-done", f"the last event is #{len(events)} ({events[-1].event}), not done")
        )
    return violations


def check_nothing_after_done(stream: RecordedStream) -> list[Violation]:
    events = stream.sse_events
    done_at = _where(events, DONE)
    if not done_at or done_at[0] == len(events):
        return []
    after = [f"#{i} {events[i - 1].event}" for i in range(done_at[0] + 1, len(events) + 1)]
    return [Violation("after-done", f"{len(after)} event(s) after done #{done_at[0]}: {', '.join(after)}")]


def check_order(stream: RecordedStream) -> list[Violation]:
    """Token events, then at most one ``error``, then ``done``; no other event names."""
    events = stream.sse_events
    violations: list[Violation] = []
    unknown = sorted({e.event for e in events} - {MESSAGE, ERROR, DONE})
    if unknown:
        violations.append(Violation("order", f"unknown event name(s): {', '.join(unknown)}"))
    error_at = _where(events, ERROR)
    if len(error_at) > 1:
        violations.append(
            Violation("order", f"{len(error_at)} error events (at {_positions(error_at)}); at most one")
        )
    if error_at:
        late = [i for i in _where(events, MESSAGE) if i > error_at[0]]
        if late:
            violations.append(
                Violation("order", f"token event(s) at {_positions(late)} after the error #{error_at[0]}")
            )
        done_at = _where(events, DONE)
        if done_at and done_at[0] != error_at[0] + 1:
            violations.append(
                Violation("order", f"the error #{error_at[0]} is not directly followed by done")
            )
    return violations


def check_error_event(stream: RecordedStream) -> list[Violation]:
    """Every ``error`` event's payload is ``{"code", "message", "traceId"?}`` with string values."""
    violations: list[Violation] = []
    for index in _where(stream.sse_events, ERROR):
        body = payload(stream.sse_events[index - 1].data)
        problems = _shape(body, required={"code": str, "message": str}, optional={"traceId": str})
        violations += [Violation("error-shape", f"error #{index}: {p}") for p in problems]
    return violations


def check_done_payload(stream: RecordedStream) -> list[Violation]:
    violations: list[Violation] = []
    for index in _where(stream.sse_events, DONE):
        body = payload(stream.sse_events[index - 1].data)
        problems = _shape(body, required={"done": bool}, optional={"usage": dict})
        if not problems and body["done"] is not True:
            problems.append("done is not true")
        if not problems and "usage" in body:
            problems += [
                f"usage: {p}"
                for p in _shape(
                    body["usage"],
                    required={},
                    optional={
                        "modelId": str,
                        "tokensIn": int,
                        "tokensOut": int,
                        "totalTokens": int,
                        "latencyMs": (int, float),
                    },
                )
            ]
        violations += [Violation("done-shape", f"done #{index}: {p}") for p in problems]
    return violations


def check_data_events(stream: RecordedStream) -> list[Violation]:
    """Token events carry ``{"sessionId", "role": "assistant", "content", "tenantId", "traceId"?}``."""
    violations: list[Violation] = []
    for index in _where(stream.sse_events, MESSAGE):
        body = payload(stream.sse_events[index - 1].data)
        problems = _shape(
            body,
            required={"sessionId": str, "role": str, "content": str, "tenantId": str},
            optional={"traceId": str},
        )
        if not problems and body["role"] != "assistant":
            problems.append(f"role is {body['role']!r}, expected 'assistant'")
        violations += [Violation("token-shape", f"event #{index}: {p}") for p in problems]
    return violations


CONTRACT_RULES: tuple[Callable[[RecordedStream], list[Violation]], ...] = (
    check_status,
    check_media_type,
    check_framing,
    check_events_json,
    check_order,
    check_one_terminal_done,
    check_nothing_after_done,
    check_error_event,
    check_done_payload,
    check_data_events,
)
"""Every rule of the streaming contract, in the order a reader would want them reported."""


def check_contract(stream: RecordedStream) -> list[Violation]:
    """All of ``CONTRACT_RULES``; a stream that is not 200 is judged on its status alone."""
    status = check_status(stream)
    if status:
        return status
    return [violation for rule in CONTRACT_RULES for violation in rule(stream)]


def _compact(document: str) -> bool:
    """No whitespace outside strings (escaping inside strings is the writer's choice)."""
    in_string = escaped = False
    for char in document:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in " \t\n\r":
            return False
    return True


def _shape(
    body: Any,
    *,
    required: Mapping[str, type | tuple[type, ...]],
    optional: Mapping[str, type | tuple[type, ...]],
) -> list[str]:
    if not isinstance(body, dict):
        return [f"payload is not a JSON object: {_clip(json.dumps(body))}"]
    problems: list[str] = []
    missing = [key for key in required if key not in body]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    extra = [key for key in body if key not in required and key not in optional]
    if extra:
        problems.append(f"unexpected key(s) {', '.join(extra)}")
    for key, expected in {**required, **optional}.items():
        if key in body and not _is(body[key], expected):
            problems.append(f"{key} is {json.dumps(body[key])}, expected {_type_name(expected)}")
    return problems


def _is(value: Any, expected: type | tuple[type, ...]) -> bool:
    # JSON true/false are bools, and bool is an int in Python: keep them apart.
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "an object"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(names.get(kind, kind.__name__) for kind in kinds)


def _positions(indexes: Sequence[int]) -> str:
    return ", ".join(f"#{i}" for i in indexes)


def _clip(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
