"""Gateway logs as the Logs API and the binding serve them: a view of the request store's records.

A ``GatewayLog`` carries every field the official SDKs' log types name (``id``, ``created_at``, ``provider``,
``model``, ``model_type``, ``path``, ``duration``, ``request_type``, content types, ``status_code``,
``success``, ``cached``, ``tokens_in``/``tokens_out``, ``cost``, ``custom_cost``, ``metadata``, ``step``,
sizes and heads) plus the live extras (``event_id``, ``feedback``, ``score``, ``authentication``,
``wholesale``, ``byok``). ``metadata`` is served as a JSON object, as the live REST API does, although the
SDK types call it a string.

A record is a gateway log when it went through that gateway, logging was on for it (``collect_logs`` or
``cf-aig-collect-log``) and its response has ended. Visibility can lag: a log is readable only
``visibility_delay`` seconds (of the fake's clock) after the request started, so a read right after the
call can be "not found" and succeed a moment later; its heads can stay ``null`` for ``head_delay`` seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aigw_fakes.clock import iso_timestamp
from aigw_fakes.state.store import MetadataValue, RequestRecord, RequestStore

__all__ = [
    "MAX_METADATA_ENTRIES",
    "GatewayLog",
    "LogVisibility",
    "is_gateway_log",
    "log_of",
    "normalise_metadata",
    "visible_logs",
]

MAX_METADATA_ENTRIES = 5


def normalise_metadata(raw: Any) -> dict[str, MetadataValue] | None:
    """Metadata as stored: the first five entries; any null or non-scalar value nulls the whole of it."""
    if not isinstance(raw, Mapping):
        return None
    kept: dict[str, MetadataValue] = {}
    for index, (key, value) in enumerate(raw.items()):
        if value is None or not isinstance(value, str | int | float | bool):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if index < MAX_METADATA_ENTRIES:
            kept[str(key)] = value
    return kept


@dataclass(slots=True)
class GatewayLog:
    id: str
    created_at: float  # epoch seconds
    provider: str
    model: str
    path: str
    status_code: int
    success: bool
    duration: int = 0  # ms
    cached: bool = False
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    custom_cost: bool = False
    metadata: dict[str, MetadataValue] | None = None
    model_type: str | None = "text-generation"
    request_type: str | None = None
    request_content_type: str | None = "application/json"
    response_content_type: str | None = None
    step: int = 0
    event_id: str | None = None
    feedback: int | None = None
    score: float | None = None
    authentication: bool = False
    wholesale: bool = False
    byok: bool = False
    user_agent: str | None = None
    request_head: str | None = None
    response_head: str | None = None
    request_size: int = 0
    response_size: int = 0
    heads_at: float = 0.0  # clock time from which the heads are served
    sequence: int = 0  # arrival order, which breaks ties between logs of the same instant

    @property
    def tokens(self) -> int:
        return (self.tokens_in or 0) + (self.tokens_out or 0)

    def to_json(self, now: float, *, detail: bool = False, metadata_as_text: bool = False) -> dict[str, Any]:
        """The API's JSON; ``metadata_as_text`` serves metadata as JSON text, the SDK types' ``str``."""
        metadata = self.metadata
        out: dict[str, Any] = {
            "id": self.id,
            "created_at": iso_timestamp(self.created_at),
            "provider": self.provider,
            "model": self.model,
            "model_type": self.model_type,
            "path": self.path,
            "duration": self.duration,
            "request_type": self.request_type,
            "request_content_type": self.request_content_type,
            "response_content_type": self.response_content_type,
            "status_code": self.status_code,
            "success": self.success,
            "cached": self.cached,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": self.cost,
            "custom_cost": self.custom_cost,
            "metadata": json.dumps(metadata) if metadata_as_text and metadata is not None else metadata,
            "step": self.step,
            "event_id": self.event_id,
            "feedback": self.feedback,
            "score": self.score,
            "authentication": self.authentication,
            "wholesale": self.wholesale,
            "byok": self.byok,
        }
        if detail:
            heads_ready = now >= self.heads_at
            out |= {
                "request_size": self.request_size,
                "response_size": self.response_size,
                "request_head": self.request_head if heads_ready else None,
                "request_head_complete": heads_ready and self.request_head is not None,
                "response_head": self.response_head if heads_ready else None,
                "response_head_complete": heads_ready and self.response_head is not None,
            }
        return out


def _head_text(head: Mapping[str, str]) -> str | None:
    return json.dumps(dict(head)) if head else None


def log_of(record: RequestRecord, head_delay: float = 0.0, sequence: int = 0) -> GatewayLog:
    """The log view of one store record."""
    return GatewayLog(
        id=record.id,
        created_at=record.created_at,
        provider=record.provider,
        model=record.model,
        path=record.path,
        status_code=record.status_code,
        success=record.success,
        duration=record.duration_ms,
        cached=record.cached,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
        cost=record.cost,
        custom_cost=record.custom_cost,
        metadata=record.metadata,
        model_type=record.model_type,
        request_type=record.request_type,
        request_content_type=record.request_content_type,
        response_content_type=record.response_content_type,
        step=record.step,
        event_id=record.event_id,
        feedback=record.feedback,
        score=record.score,
        authentication=record.authentication,
        user_agent=record.request_head.get("user-agent"),
        request_head=_head_text(record.request_head),
        response_head=_head_text(record.response_head),
        request_size=record.request_size,
        response_size=record.response_size,
        heads_at=record.created_at + head_delay,
        sequence=sequence,
    )


def is_gateway_log(record: RequestRecord, account_id: str, gateway_id: str) -> bool:
    return (
        record.account_id == account_id
        and record.gateway_id == gateway_id
        and record.logged
        and record.complete
    )


def visible_logs(
    store: RequestStore, account_id: str, gateway_id: str, now: float, visibility: LogVisibility
) -> list[RequestRecord]:
    """The gateway's readable logs at ``now``, oldest first."""
    return [
        record
        for record in store
        if is_gateway_log(record, account_id, gateway_id)
        and now >= record.created_at + visibility.visibility_delay
    ]


@dataclass(frozen=True, slots=True)
class LogVisibility:
    """How long after a request started its log can be read, and its heads filled in (seconds)."""

    visibility_delay: float = 0.0
    head_delay: float = 0.0
