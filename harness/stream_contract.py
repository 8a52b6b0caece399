"""The platform's streaming ``/chat`` contract: one statement of its rules, for every face that judges one.

Both the scenario checks (``aigw_harness.scenarios.checks``: the ``sse`` expectations of ``aigw run``) and the
pytest helpers (``aigw_harness.testing.stream_contract``, ``ChatStream.assert_contract``) call the rules here,
so that a stream one of them accepts the other accepts too. The module judges what was recorded; it performs
no I/O and reads the body through the one SSE decoder (``aigw_harness.sse``).

The contract (the platform's streaming ``/chat``): status 200, ``content-type: text/event-stream``; events
carry only ``data:`` and ``event:`` fields and each ends with a blank line; each event's data is one compact
JSON document; the order is token events* → at most one ``event: error`` → exactly one ``event: done``,
which is the last event; nothing follows ``done``. Payloads:

- token events: ``{"sessionId", "role": "assistant", "content", "tenantId", "traceId"?}``;
- ``error``: ``{"code", "message", "traceId"?}``, strings only;
- ``done``: ``{"done": true, "usage"?: {"modelId"?, "tokensIn"?, "tokensOut"?, "totalTokens"?,
  "latencyMs"?}}``.

What a conforming client (EventSource, the SSE rules of the HTML standard) tolerates is tolerated here too,
because a Worker that relies on it is not broken:

- lines may end in LF, CRLF or a lone CR, mixed within one stream;
- comment lines (``: keep-alive``) may appear anywhere, including after ``done``;
- the space after the colon of a field is optional (``data:{...}``);
- one leading byte order mark is ignored;
- inside JSON strings, escaping is the writer's choice (``\\u00e9`` or ``é``, ``\\/`` or ``/``); only
  whitespace outside strings makes a document not compact. ``NaN`` and ``Infinity`` are not JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from aigw_harness.sse import SSEDecoder

__all__ = [
    "CONTRACT_RULES",
    "DONE",
    "ERROR",
    "MESSAGE",
    "RULES",
    "RecordedExchange",
    "StreamRecord",
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
    "event_sequence",
    "exchange_record",
    "payload",
]

DONE = "done"
ERROR = "error"
MESSAGE = "message"
_FIELDS = frozenset({"data", "event"})
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: ``rule`` is a short stable name, ``message`` says what was observed."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


class Event(Protocol):
    """An event as any recorder keeps it (``aigw_harness.sse.ServerSentEvent``, a results ``EventRecord``)."""

    @property
    def event(self) -> str: ...

    @property
    def data(self) -> str: ...


@dataclass(frozen=True)
class StreamRecord:
    """One received response, as the rules read it.

    ``events`` are the events the client received, in order. ``raw`` is the body as received;
    ``raw_complete`` says whether it is all of it up to where the stream ended (a recorder that keeps only
    a prefix says False, and the rules that read the end of the body are then not judged).
    ``client_closed`` means the client went away on purpose, so an unfinished last event is not the
    server's doing.
    """

    status_code: int
    headers: Mapping[str, str]
    raw: bytes
    events: Sequence[Event]
    raw_complete: bool = True
    client_closed: bool = False

    @cached_property
    def body(self) -> _BodyScan:
        return _BodyScan.of(self.raw)


@dataclass(frozen=True, slots=True)
class _BodyScan:
    """What reading the raw body line by line, through the decoder, shows."""

    foreign: Mapping[str, int]
    """Field names other than data/event → the first line they are on."""
    truncated: bool
    """The body ends inside an event or a line."""
    after_done: str
    """Field lines after the first ``done`` event was dispatched (text, clipped), when there are any."""

    @classmethod
    def of(cls, raw: bytes) -> _BodyScan:
        text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
        decoder = SSEDecoder()
        foreign: dict[str, int] = {}
        done_seen = False
        trailing: list[str] = []
        for number, match in enumerate(_LINE.finditer(text), start=1):
            chunk = match.group()
            line = chunk.rstrip("\r\n")
            if line and not line.startswith(":"):
                name = line.partition(":")[0]
                if name not in _FIELDS:
                    foreign.setdefault(name, number)
                if done_seen:
                    trailing.append(line)
            events = decoder.feed(chunk.encode("utf-8"))
            if any(event.event == DONE for event in events):
                done_seen = True
        decoder.flush()
        return cls(foreign=foreign, truncated=decoder.truncated, after_done=" ".join(trailing)[:80])


class RecordedExchange(Protocol):
    """What the scenario runner records of one response (``aigw_harness.report.results.Exchange``)."""

    @property
    def status(self) -> int | None: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def raw_stream(self) -> str | None: ...

    @property
    def events(self) -> Sequence[Event]: ...

    @property
    def disconnected(self) -> bool: ...


def exchange_record(exchange: RecordedExchange) -> StreamRecord:
    """A scenario run's exchange as the rules read it. The runner keeps only a prefix of a long body, so
    the body counts as complete only when decoding it gives back every event the client received."""
    raw = (exchange.raw_stream or "").encode("utf-8")
    decoded = [(event.event, event.data) for event in _decode(raw)]
    received = [(event.event, event.data) for event in exchange.events]
    return StreamRecord(
        status_code=exchange.status if exchange.status is not None else 0,
        headers={name.lower(): value for name, value in exchange.headers.items()},
        raw=raw,
        events=list(exchange.events),
        raw_complete=decoded == received and not exchange.disconnected,
        client_closed=exchange.disconnected,
    )


def _decode(raw: bytes) -> list[Event]:
    decoder = SSEDecoder()
    return [*decoder.feed(raw), *decoder.flush()]


type Rule = Callable[[StreamRecord], list[Violation]]


def payload(data: str) -> Any:
    """The event's data as JSON, or ``None`` when it is not JSON."""
    try:
        return _loads(data)
    except ValueError:
        return None


def _loads(data: str) -> Any:
    return json.loads(data, parse_constant=_not_json)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def event_sequence(names: Iterable[str]) -> str:
    """Event names in order, a run of token events folded into ``message+`` (the number of tokens is a
    value, not the stream's shape); every other event is kept one by one, so two ``done`` events show."""
    folded: list[str] = []
    for name in names:
        if name == MESSAGE:
            if not folded or folded[-1] != MESSAGE + "+":
                folded.append(MESSAGE + "+")
        else:
            folded.append(name)
    return " ".join(folded) or "(no events)"


def _where(events: Sequence[Event], name: str) -> list[int]:
    return [index + 1 for index, event in enumerate(events) if event.event == name]


def check_status(stream: StreamRecord) -> list[Violation]:
    if stream.status_code != 200:
        return [Violation("status", f"HTTP {stream.status_code}; a stream is always answered with 200")]
    return []


def check_media_type(stream: StreamRecord) -> list[Violation]:
    content_type = stream.headers.get("content-type")
    if content_type is None:
        return [Violation("content-type", "no content-type header; expected text/event-stream")]
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "text/event-stream":
        return [Violation("content-type", f"{content_type!r}; expected text/event-stream")]
    return []


def check_framing(stream: StreamRecord) -> list[Violation]:
    """Only ``data:`` and ``event:`` fields (comments allowed), and the last event ends with a blank line."""
    body = stream.body
    violations = [
        Violation("framing", f"field {name!r} on line {number}; only data: and event: are sent")
        for name, number in body.foreign.items()
    ]
    if stream.raw_complete and not stream.client_closed:
        if not stream.raw.strip(b"\r\n"):
            violations.append(Violation("framing", "the stream is empty"))
        elif body.truncated:
            violations.append(
                Violation("framing", "the stream ended inside an event (no closing blank line)")
            )
    return violations


def check_events_json(stream: StreamRecord) -> list[Violation]:
    """Every event's data is one compact JSON document."""
    violations: list[Violation] = []
    for index, event in enumerate(stream.events, start=1):
        try:
            _loads(event.data)
        except ValueError:
            violations.append(Violation("json", f"event #{index} data is not JSON: {_clip(event.data)}"))
            continue
        if not _compact(event.data):
            violations.append(
                Violation("json", f"event #{index} data is JSON but not compact: {_clip(event.data)}")
            )
    return violations


def check_one_terminal_done(stream: StreamRecord) -> list[Violation]:
    """Exactly one ``done`` event, and it is the last event."""
    events = stream.events
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


def check_nothing_after_done(stream: StreamRecord) -> list[Violation]:
    """No event and no field line follows the first ``done`` (comments may); vacuous without a done."""
    events = stream.events
    done_at = _where(events, DONE)
    if not done_at:
        return []
    violations: list[Violation] = []
    if done_at[0] != len(events):
        after = [f"#{i} {events[i - 1].event}" for i in range(done_at[0] + 1, len(events) + 1)]
        violations.append(
            Violation("after-done", f"{len(after)} event(s) after done #{done_at[0]}: {', '.join(after)}")
        )
    elif stream.raw_complete and stream.body.after_done:
        violations.append(
            Violation("after-done", f"bytes after done #{done_at[0]}: {stream.body.after_done!r}")
        )
    return violations


def check_order(stream: StreamRecord) -> list[Violation]:
    """Token events, then at most one ``error``, then ``done``; no other event names."""
    events = stream.events
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


def check_error_event(stream: StreamRecord) -> list[Violation]:
    """Every ``error`` event's payload is ``{"code", "message", "traceId"?}`` with string values."""
    violations: list[Violation] = []
    for index in _where(stream.events, ERROR):
        body = payload(stream.events[index - 1].data)
        problems = _shape(body, required={"code": str, "message": str}, optional={"traceId": str})
        violations += [Violation("error-shape", f"error #{index}: {p}") for p in problems]
    return violations


_USAGE: Mapping[str, type | tuple[type, ...]] = {
    "modelId": str,
    "tokensIn": int,
    "tokensOut": int,
    "totalTokens": int,
    "latencyMs": (int, float),
}


def check_done_payload(stream: StreamRecord) -> list[Violation]:
    violations: list[Violation] = []
    for index in _where(stream.events, DONE):
        body = payload(stream.events[index - 1].data)
        problems = _shape(body, required={"done": bool}, optional={"usage": dict})
        if not problems and body["done"] is not True:
            problems.append("done is not true")
        if not problems and "usage" in body:
            problems += [f"usage: {p}" for p in _shape(body["usage"], required={}, optional=_USAGE)]
        violations += [Violation("done-shape", f"done #{index}: {p}") for p in problems]
    return violations


def check_data_events(stream: StreamRecord) -> list[Violation]:
    """Token events carry ``{"sessionId", "role": "assistant", "content", "tenantId", "traceId"?}``."""
    violations: list[Violation] = []
    for index in _where(stream.events, MESSAGE):
        body = payload(stream.events[index - 1].data)
        problems = _shape(
            body,
            required={"sessionId": str, "role": str, "content": str, "tenantId": str},
            optional={"traceId": str},
        )
        if not problems and body["role"] != "assistant":
            problems.append(f"role is {body['role']!r}, expected 'assistant'")
        violations += [Violation("token-shape", f"event #{index}: {p}") for p in problems]
    return violations


RULES: Mapping[str, Rule] = {
    "status": check_status,
    "content-type": check_media_type,
    "framing": check_framing,
    "json": check_events_json,
    "order": check_order,
    "terminal-done": check_one_terminal_done,
    "after-done": check_nothing_after_done,
    "error-shape": check_error_event,
    "done-shape": check_done_payload,
    "token-shape": check_data_events,
}
"""Every rule of the streaming contract by its stable name, in the order a reader wants them reported."""

CONTRACT_RULES: tuple[Rule, ...] = tuple(RULES.values())


def check_contract(stream: StreamRecord) -> list[Violation]:
    """All of ``RULES``; a stream that is not 200 is judged on its status alone."""
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
