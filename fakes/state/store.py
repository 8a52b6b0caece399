"""The request store: one ``RequestRecord`` for every model request the fake answered or refused.

It is the single source of truth for what happened: the control API (``GET /__aigw/requests``) lists it,
the Logs API is served from it, spend limits sum its costs. Records are added when a request starts (so
that the log id in the response headers always names a record) and completed when its body has been
written, cut or abandoned; ``complete`` tells which.

The store only stores: it never filters by gateway log settings or visibility delays; readers do.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from aigw_fakes.clock import iso_timestamp

__all__ = ["AttemptRecord", "MetadataValue", "RequestRecord", "RequestStore"]

type MetadataValue = str | int | float | bool


@dataclass(slots=True)
class AttemptRecord:
    """One attempt of a request at the model (a gateway retry makes several). Times are epoch seconds on
    the fake's clock, moving with the request's own (uncompressed) durations from its ``created_at``."""

    number: int  # 1-based
    status: int  # 0: the connection was reset before a response head
    started_at: float
    ended_at: float  # when the answer ended (body written, cut, or refused)
    error_code: int | None = None
    behaviour: str | None = None
    timeout: bool = False  # cf-aig-request-timeout passed before the first byte
    cut: bool = False  # the body was cut off or the client went away

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["started_at"] = iso_timestamp(self.started_at)
        out["ended_at"] = iso_timestamp(self.ended_at)
        out["duration_ms"] = round((self.ended_at - self.started_at) * 1000)
        return out


@dataclass(slots=True)
class RequestRecord:
    """Field names follow Cloudflare's log object (``AiGatewayLog`` and the Logs API)."""

    id: str  # UUIDv7 (ULID with fidelity.log_ids = "ulid"); sent as cf-aig-log-id
    created_at: float  # epoch seconds from the fake's clock
    account_id: str
    gateway_id: str | None  # None: a Workers AI call that did not go through a gateway
    provider: str
    model: str
    path: str  # the request path as received
    request_type: str  # "workers-ai", "openai-compat", "compat", "universal", "binding", ...
    model_type: str | None = "text-generation"
    status_code: int = 0
    success: bool = False
    cached: bool = False
    stream: bool = False
    tokens_in: int | None = None
    tokens_out: int | None = None
    neurons: float | None = None
    cost: float = 0.0
    custom_cost: bool = False
    metadata: dict[str, MetadataValue] | None = None
    step: int = 0
    attempt: int = 1  # attempts made (1 without retries)
    event_id: str | None = None
    request_id: str | None = None  # cf-ai-req-id
    duration_ms: int = 0
    ttfb_ms: int | None = None
    request_head: dict[str, str] = field(default_factory=dict)  # secrets redacted
    request_body: bytes = b""
    request_content_type: str | None = None
    request_size: int = 0
    response_head: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    response_content_type: str | None = None
    response_size: int = 0
    feedback: int | None = None
    score: float | None = None
    logged: bool = True  # False when the gateway or cf-aig-collect-log turned logging off
    log_payload: bool = True  # False with cf-aig-collect-log-payload: false
    authentication: bool = False  # the request carried a valid cf-aig-authorization
    behaviour: str | None = None  # which scripted outcome answered it ("rule 0 step 1", "header", ...)
    error_code: int | None = None
    complete: bool = False
    cut: bool = False  # the response was cut off (scripted fault or client disconnect)
    attempts: list[AttemptRecord] = field(default_factory=list)  # each attempt in order

    def to_json(self, *, include_bodies: bool = True) -> dict[str, Any]:
        out = asdict(self)
        out["created_at"] = iso_timestamp(self.created_at)
        out["attempts"] = [attempt.to_json() for attempt in self.attempts]
        for key in ("request_body", "response_body"):
            if include_bodies:
                out[key] = _body_text(getattr(self, key))
            else:
                del out[key]
        return out


def _body_text(body: bytes) -> str | dict[str, str]:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode("ascii")}


class RequestStore:
    """Records in arrival order; beyond ``max_records`` the oldest are dropped (a long-running fake would
    otherwise grow without bound)."""

    def __init__(self, max_records: int | None = None) -> None:
        self._records: list[RequestRecord] = []
        self._by_id: dict[str, RequestRecord] = {}
        self.max_records = max_records

    def add(self, record: RequestRecord) -> None:
        self._records.append(record)
        self._by_id[record.id] = record
        limit = self.max_records
        # Trim in batches of a tenth so that adding stays cheap on average.
        if limit is not None and len(self._records) > limit + max(limit // 10, 1) - 1:
            dropped, self._records = self._records[:-limit], self._records[-limit:]
            for old in dropped:
                self._by_id.pop(old.id, None)

    def get(self, record_id: str) -> RequestRecord | None:
        return self._by_id.get(record_id)

    def remove(self, record_ids: set[str]) -> int:
        before = len(self._records)
        self._records = [r for r in self._records if r.id not in record_ids]
        for record_id in record_ids:
            self._by_id.pop(record_id, None)
        return before - len(self._records)

    def clear(self) -> None:
        self._records.clear()
        self._by_id.clear()

    def records(self, where: Callable[[RequestRecord], bool] | None = None) -> list[RequestRecord]:
        if where is None:
            return list(self._records)
        return [r for r in self._records if where(r)]

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)
