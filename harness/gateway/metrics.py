"""Usage metrics: one record per request that reached the gateway's tenant-aware part, and observers.

A record says who asked (tenant, gateway, session, trace), what was chosen and why, every upstream
attempt (model, outcome, status, Cloudflare code, log id), what served, how it ended, time to first token,
total latency, tokens in/out/total with estimates marked, neurons and cost, and what the ledger did.

Observers: ``InMemoryMetrics`` (for tests and scenario runs) and ``JsonLinesMetrics`` (one JSON object per
line, appended). Records never hold credentials.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "NEURON_RATES",
    "USD_PER_NEURON",
    "AttemptRecord",
    "InMemoryMetrics",
    "JsonLinesMetrics",
    "MetricsObserver",
    "UsageRecord",
    "neurons_for",
]

USD_PER_NEURON = 0.011 / 1000

# Neurons per million tokens (input, output) from Workers AI's published pricing.
NEURON_RATES: dict[str, tuple[float, float]] = {
    "@cf/meta/llama-3.2-3b-instruct": (4625, 30475),
    "@cf/meta/llama-3.1-8b-instruct": (25608, 75147),
    "@cf/meta/llama-3.1-8b-instruct-fp8-fast": (4119, 34868),
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": (26668, 204805),
}


def neurons_for(model: str, tokens_in: int, tokens_out: int) -> float | None:
    rates = NEURON_RATES.get(model)
    if rates is None:
        return None
    return (tokens_in * rates[0] + tokens_out * rates[1]) / 1_000_000


@dataclass
class AttemptRecord:
    model: str
    outcome: str  # "served", "failed", "failed_mid_stream", "cancelled"
    error_class: str | None = None  # see upstream.ErrorClass
    status: int | None = None
    cf_code: int | None = None
    message: str | None = None
    log_id: str | None = None
    duration_ms: float | None = None
    fell_back: bool = False  # this failure made the gateway try the next candidate
    retried_after_s: float | None = None  # this failure's Retry-After was waited out, then the model retried
    skipped_frames: int = 0  # malformed frames skipped (malformed_frames="skip")


@dataclass
class UsageRecord:
    request_id: str  # also the cf-aig-event-id of every upstream attempt
    started_at: str  # ISO 8601, UTC, from the gateway's clock
    tenant_id: str
    gateway_id: str
    route: str
    session_id: str | None = None
    trace_id: str | None = None
    stream: bool = True
    rate_limit_key: str | None = None
    status: str = "pending"  # success, rejected, error, truncated, disconnected
    http_status: int | None = None
    error_code: str | None = None  # the /chat error code the client saw, if any
    error_detail: str | None = None
    selection: list[dict[str, str | None]] = field(default_factory=list)
    models_tried: list[str] = field(default_factory=list)
    model_served: str | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    fallback_used: bool = False
    ttft_ms: float | None = None
    latency_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_total: int | None = None
    tokens_in_estimated: bool = False
    tokens_out_estimated: bool = False
    estimated_tokens_in: int | None = None  # the pre-call estimate (history + message)
    neurons: float | None = None
    neurons_estimated: bool = False
    cost_usd: float | None = None
    log_ids: list[str] = field(default_factory=list)
    metadata_sent: dict[str, str] = field(default_factory=dict)
    metadata_dropped: list[str] = field(default_factory=list)
    ledger_store: str | None = None
    ledger_keys: list[str] = field(default_factory=list)
    ledger_charged: int | None = None
    ledger_error: str | None = None
    budget_window: str | None = None  # "daily"/"monthly" when the budget refused the request
    client_disconnected: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class MetricsObserver(Protocol):
    def record(self, record: UsageRecord) -> None: ...


class InMemoryMetrics:
    """Keeps every record in order; ``records`` is a plain list."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def record(self, record: UsageRecord) -> None:
        self.records.append(record)

    def clear(self) -> None:
        self.records.clear()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def last(self) -> UsageRecord:
        if not self.records:
            raise LookupError("no usage record yet")
        return self.records[-1]


class JsonLinesMetrics:
    """Appends each record as one compact JSON line to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, record: UsageRecord) -> None:
        line = json.dumps(record.as_dict(), separators=(",", ":"), ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
