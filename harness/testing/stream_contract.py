"""The ``/chat`` stream contract for pytest helpers: the rules of ``aigw_harness.stream_contract`` over a
recorded stream (a ``ChatStream``, or anything with the same attributes).

The rules themselves live in ``aigw_harness.stream_contract``, the one statement of the contract that ``aigw
run`` uses too; this module only turns a recorded stream into the record those rules read. Every check returns
``Violation``s (empty when the rule holds) so that one failure can list everything wrong with a stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from aigw_harness import stream_contract as contract
from aigw_harness.stream_contract import DONE, ERROR, MESSAGE, Event, StreamRecord, Violation, payload

__all__ = [
    "CONTRACT_RULES",
    "DONE",
    "ERROR",
    "MESSAGE",
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
    "record",
]


class RecordedStream(Protocol):
    """What a check needs to know about a received stream."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def raw(self) -> bytes: ...

    @property
    def sse_events(self) -> Sequence[Event]: ...


def record(stream: RecordedStream) -> StreamRecord:
    """The stream as the contract's rules read it. The whole body was kept; a stream the client closed
    early (``closed_early``, as ``ChatStream`` sets it) is not blamed for its unfinished end."""
    headers = {name.lower(): value for name, value in stream.headers.items()}
    return StreamRecord(
        status_code=stream.status_code,
        headers=headers,
        raw=stream.raw,
        events=list(stream.sse_events),
        client_closed=bool(getattr(stream, "closed_early", False)),
    )


def check_status(stream: RecordedStream) -> list[Violation]:
    return contract.check_status(record(stream))


def check_media_type(stream: RecordedStream) -> list[Violation]:
    return contract.check_media_type(record(stream))


def check_framing(stream: RecordedStream) -> list[Violation]:
    return contract.check_framing(record(stream))


def check_events_json(stream: RecordedStream) -> list[Violation]:
    return contract.check_events_json(record(stream))


def check_one_terminal_done(stream: RecordedStream) -> list[Violation]:
    return contract.check_one_terminal_done(record(stream))


def check_nothing_after_done(stream: RecordedStream) -> list[Violation]:
    return contract.check_nothing_after_done(record(stream))


def check_order(stream: RecordedStream) -> list[Violation]:
    return contract.check_order(record(stream))


def check_error_event(stream: RecordedStream) -> list[Violation]:
    return contract.check_error_event(record(stream))


def check_done_payload(stream: RecordedStream) -> list[Violation]:
    return contract.check_done_payload(record(stream))


def check_data_events(stream: RecordedStream) -> list[Violation]:
    return contract.check_data_events(record(stream))


CONTRACT_RULES = contract.CONTRACT_RULES
"""The contract's rules over a ``StreamRecord`` (``record(stream)`` makes one)."""


def check_contract(stream: RecordedStream) -> list[Violation]:
    """Every rule of the contract; a stream that is not 200 is judged on its status alone."""
    return contract.check_contract(record(stream))
