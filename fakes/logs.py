"""Gateway logs: the record Cloudflare keeps per request, its JSON shape, and per-gateway log books.

A ``GatewayLog`` carries every field the official SDKs' log types name (``id``, ``created_at``, ``provider``,
``model``, ``model_type``, ``path``, ``duration``, ``request_type``, content types, ``status_code``,
``success``, ``cached``, ``tokens_in``/``tokens_out``, ``cost``, ``custom_cost``, ``metadata``, ``step``,
sizes and heads) plus the live extras (``event_id``, ``feedback``, ``score``, ``authentication``,
``wholesale``, ``byok``). ``metadata`` is served as a JSON object, as the live REST API does, although the
SDK types call it a string.

A ``LogBook`` holds one gateway's logs. Visibility can lag: a log becomes readable ``visibility_delay``
seconds after it was written (so a read right after the call can be "not found" and succeed a moment
later), and its heads can stay ``null`` for ``head_delay`` seconds. Both default to 0.

Pure logic: times come from the caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_METADATA_ENTRIES",
    "GatewayLog",
    "LogBook",
    "LogVisibility",
    "iso_timestamp",
    "normalise_metadata",
    "parse_metadata_header",
]

MAX_METADATA_ENTRIES = 5

type MetadataValue = str | int | float | bool


def normalise_metadata(raw: Any) -> dict[str, MetadataValue] | None:
    """Metadata as stored: the first five entries; any null or non-scalar value nulls the whole of it."""
    if not isinstance(raw, Mapping):
        return None
    kept: dict[str, MetadataValue] = {}
    for index, (key, value) in enumerate(raw.items()):
        if value is None or not isinstance(value, str | int | float | bool):
            return None
        if index < MAX_METADATA_ENTRIES:
            kept[str(key)] = value
    return kept


def parse_metadata_header(raw: str | None) -> dict[str, MetadataValue] | None:
    """``cf-aig-metadata`` as stored; text that is not a JSON object stores no metadata."""
    if not raw:
        return None
    try:
        return normalise_metadata(json.loads(raw))
    except ValueError:
        return None


def iso_timestamp(epoch_seconds: float) -> str:
    """``2026-10-02T12:00:00.123Z``: the form Cloudflare's APIs use."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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
    request_type: str | None = "universal"
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
    request_body: bytes | None = None  # None when payloads are not collected
    response_body: bytes | None = None
    request_size: int = 0
    response_size: int = 0
    visible_at: float = 0.0
    heads_at: float = 0.0

    @property
    def tokens(self) -> int:
        return (self.tokens_in or 0) + (self.tokens_out or 0)

    def to_json(self, now: float, *, detail: bool = False) -> dict[str, Any]:
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
            "metadata": self.metadata,
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


@dataclass(frozen=True, slots=True)
class LogVisibility:
    """How long after it is written a log can be read, and its heads filled in (seconds)."""

    visibility_delay: float = 0.0
    head_delay: float = 0.0


@dataclass(slots=True)
class LogBook:
    """One gateway's logs, oldest first."""

    visibility: LogVisibility = field(default_factory=LogVisibility)
    _logs: dict[str, GatewayLog] = field(default_factory=dict)

    def add(self, log: GatewayLog, now: float) -> GatewayLog:
        stamped = replace(
            log,
            visible_at=now + self.visibility.visibility_delay,
            heads_at=now + self.visibility.head_delay,
        )
        self._logs[log.id] = stamped
        return stamped

    def visible(self, now: float) -> Iterator[GatewayLog]:
        return (log for log in self._logs.values() if log.visible_at <= now)

    def get(self, log_id: str, now: float) -> GatewayLog | None:
        log = self._logs.get(log_id)
        return log if log is not None and log.visible_at <= now else None

    def patch(self, log_id: str, now: float, changes: Mapping[str, Any]) -> GatewayLog | None:
        """Apply the ``feedback``/``score``/``metadata`` keys present in ``changes`` (``None`` clears)."""
        log = self.get(log_id, now)
        if log is None:
            return None
        if "feedback" in changes:
            feedback = changes["feedback"]
            log.feedback = int(feedback) if isinstance(feedback, int | float) else None
        if "score" in changes:
            score = changes["score"]
            log.score = float(score) if isinstance(score, int | float) else None
        if "metadata" in changes:
            log.metadata = normalise_metadata(changes["metadata"])
        return log

    def delete(self, ids: list[str]) -> int:
        removed = 0
        for log_id in ids:
            if self._logs.pop(log_id, None) is not None:
                removed += 1
        return removed

    def __len__(self) -> int:
        return len(self._logs)

    def clear(self) -> None:
        self._logs.clear()
