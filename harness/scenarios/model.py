"""The scenario file format: one typed model, strict, with unknown keys rejected.

A scenario states the system it needs (tenants, environment, budget store, clock, how the upstream
behaves), what to do (steps), what must hold (expectations on each response and checks across the run),
what to measure, and which findings to raise from the outcome. ``aigw_harness.scenarios.loader`` reads files
into ``Scenario``; ``Scenario.model_json_schema()`` is exported as ``scenarios/schema.json`` for editors.

This module holds data only: no I/O, no HTTP, no knowledge of targets beyond capability names.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

__all__ = [
    "MODEL_REFERENCE",
    "Area",
    "Assumptions",
    "BudgetStore",
    "Check",
    "ClockStep",
    "Expect",
    "Finding",
    "FindingWhen",
    "GatewayOptions",
    "Match",
    "Period",
    "RequestSpec",
    "Scenario",
    "Severity",
    "SseExpect",
    "Step",
]

_ID = r"^[a-z0-9][a-z0-9._-]*$"

MODEL_REFERENCE = r"^(primary|fallback):([A-Za-z0-9][A-Za-z0-9_.-]*)$"
"""A model named by the SUT's configuration instead of by id: ``primary:TENANT`` is the model the platform's
precedence picks for a request of the tenant that names none (``MODEL_ID``, else the tenant's chat model),
``fallback:TENANT`` the model it falls back to (``FALLBACK_MODEL_ID``, else the tenant's chat model; none when
that is the primary or outside the tenant's allow-list). The runner resolves references against the SUT's
effective configuration before the steps are played (``aigw_harness.scenarios.assumptions``)."""

# Strict mode would demand enum instances and datetime objects; YAML gives strings for both.
type _Lax[T] = Annotated[T, Strict(False)]


class _Strict(BaseModel):
    # Every number from a file is finite (an infinite pause would hang a run) and bounded where it is used.
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, populate_by_name=True, allow_inf_nan=False
    )


# Bounds on durations in nominal seconds: beyond them a scenario could only hang or overflow a clock.
_HOUR = 3600.0
_CENTURY_S = 100 * 366 * 86400.0


class Area(StrEnum):
    """What part of the milestone a scenario answers; the report and docs group by it."""

    SPIKE = "spike"
    PRECEDENCE = "precedence"
    BUDGET = "budget"
    OBSERVABILITY = "observability"
    FALLBACK = "fallback"
    STREAMING = "streaming"
    CONCURRENCY = "concurrency"
    LIMITS = "limits"
    IDENTITY = "identity"
    ACCOUNTING = "accounting"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class BudgetStore(StrEnum):
    """The reference gateway's budget ledger: ``atomic`` (reserve then reconcile) or ``kv`` (the platform's
    blind read-modify-write on a KV namespace)."""

    ATOMIC = "atomic"
    KV = "kv"


class Period(StrEnum):
    DAILY = "daily"
    MONTHLY = "monthly"


class Match(_Strict):
    """A condition on one observed value. A bare scalar in a file means ``equals``.

    Several keys may be given; all must hold. ``present: false`` means the value must be absent.
    """

    equals: Any = None
    one_of: list[Any] | None = None
    regex: str | None = None
    contains: str | None = None
    min: float | None = None
    max: float | None = None
    present: bool | None = None
    model: Annotated[str, Field(pattern=MODEL_REFERENCE)] | None = None
    """Equals the model a reference names (``primary:TENANT`` or ``fallback:TENANT``), as the SUT's
    configuration decides it; resolved into ``equals`` before the scenario is played."""

    @model_validator(mode="before")
    @classmethod
    def _scalar_means_equals(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return {"equals": value}
        return value

    @model_validator(mode="after")
    def _something_to_check(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one of equals, one_of, regex, contains, min, max, present, model")
        if self.model is not None and "equals" in self.model_fields_set:
            raise ValueError("give equals (a literal) or model (a reference), not both")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return self

    def describe(self) -> str:
        """The condition in words, for reports (``== 200``, ``>= 3``, ``absent``)."""
        parts: list[str] = []
        if "equals" in self.model_fields_set and self.model is not None:
            parts.append(f"== {self.equals!r} ({self.model})")
        elif "equals" in self.model_fields_set:
            parts.append(f"== {self.equals!r}")
        elif self.model is not None:
            parts.append(f"== the model {self.model} names")
        if self.one_of is not None:
            parts.append(f"in {self.one_of!r}")
        if self.regex is not None:
            parts.append(f"matches /{self.regex}/")
        if self.contains is not None:
            parts.append(f"contains {self.contains!r}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.present is not None:
            parts.append("present" if self.present else "absent")
        return " and ".join(parts)


class SseExpect(_Strict):
    """Properties of the SSE event sequence of one streamed response."""

    data_events: Match | None = None
    """How many default (``message``) events carried data."""
    terminal_done: bool | None = None
    """True: exactly one ``done`` event, and it is the last event."""
    nothing_after_done: bool | None = None
    error_event: bool | None = None
    """True: an ``error`` event is present; false: none is."""
    data: dict[str, Match] | None = None
    """Fields of every data event's JSON payload (dotted paths)."""
    error: dict[str, Match] | None = None
    """Fields of the ``error`` event's JSON payload (dotted paths)."""
    done: dict[str, Match] | None = None
    """Fields of the ``done`` event's JSON payload (dotted paths, for example ``usage.tokensOut``)."""
    content: Match | None = None
    """The concatenated ``content`` of all data events."""
    events_json: bool | None = None
    """True: every event's data is one compact JSON document."""
    progressive: bool | None = None
    """True: data events arrived over time in many separate reads, not buffered into one or two."""
    framing: bool | None = None
    """True: only ``data:`` and ``event:`` fields, every event ends with a blank line, no ``id:``."""


class Expect(_Strict):
    """What must hold for every response a request step receives."""

    status: Match | None = None
    content_type: Match | None = None
    headers: dict[str, Match] | None = None
    """Response headers by (case-insensitive) name."""
    json_body: dict[str, Match] | None = Field(default=None, alias="json")
    """Fields of a JSON response body by dotted path (``error.code``)."""
    sse: SseExpect | None = None
    ttft_ms: Match | None = None
    """Time to the first data event, compressed time multiplied back to real-scale milliseconds."""
    duration_ms: Match | None = None


class RequestSpec(_Strict):
    """One ``/chat`` request. ``body`` replaces the generated body entirely (for malformed requests)."""

    tenant: str | None = None
    """Sent as ``x-tenant-id``; absent sends no tenant header."""
    message: str = "hello"
    message_chars: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    """Send a message of this many characters instead (``ceil(n/4)`` estimated tokens)."""
    stream: bool | None = True
    """``null`` omits the field (the platform defaults to streaming)."""
    model: str | None = None
    session: str | None = None
    """A session UUID; by default each scenario uses one fixed UUID derived from the seed."""
    new_session: bool = False
    """Give every request its own session (no history), derived from the seed."""
    user_id: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | str | None = None
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"] = "POST"
    path: str = "/chat"
    disconnect_after_events: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    """Close the connection after this many data events (a client that goes away mid-stream)."""
    timeout_s: Annotated[float, Field(gt=0, le=_HOUR)] = 30.0
    """Give up reading after this long (compressed time); the exchange is then marked timed out."""


class ClockStep(_Strict):
    """Move the system's clock: ``set`` to an instant, or ``advance`` by seconds."""

    set: _Lax[datetime] | None = None
    advance_s: Annotated[float, Field(ge=-_CENTURY_S, le=_CENTURY_S)] | None = None
    """Seconds to move the clock by (at most a century either way)."""

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.set is None) == (self.advance_s is None):
            raise ValueError("give exactly one of set or advance_s")
        if self.set is not None and self.set.tzinfo is None:
            raise ValueError("set needs a time zone, for example 2026-02-07T23:59:59Z")
        if self.set is not None:
            _in_range(self.set)
        return self


def _in_range(instant: datetime) -> None:
    # Clocks move by up to a century from here; beyond these years they would leave datetime's range.
    if not 1970 <= instant.year <= 2200:
        raise ValueError("the instant must be between the years 1970 and 2200")


_STEP_ACTIONS = ("request", "pause_s", "clock", "upstream")


class Step(_Strict):
    """One thing to do. Exactly one action: ``request``, ``pause_s``, ``clock`` or ``upstream``.

    A request step may repeat (one after another) and run as a concurrent burst (``concurrency`` copies
    at once, ``repeat`` times).
    """

    name: Annotated[str, Field(pattern=_ID)] | None = None
    """Names the step in checks, findings and the report; defaults to ``step<N>``."""
    request: RequestSpec | None = None
    repeat: Annotated[int, Field(ge=1, le=1000)] = 1
    concurrency: Annotated[int, Field(ge=1, le=256)] = 1
    expect: Expect | None = None
    pause_s: Annotated[float, Field(ge=0, le=_HOUR)] | None = None
    """Wait this long (scaled by the run's time scale)."""
    clock: ClockStep | None = None
    upstream: dict[str, Any] | None = None
    """Replace the upstream behaviour with this behaviour document from here on."""
    measure_overshoot: OvershootSpec | None = None
    """After this step, measure how far the tenant's budget was overshot."""

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        given = [name for name in _STEP_ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"a step needs exactly one of {', '.join(_STEP_ACTIONS)} (found: {found})")
        if self.request is None:
            for field in ("expect", "measure_overshoot"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field} applies only to request steps")
            if self.repeat != 1 or self.concurrency != 1:
                raise ValueError("repeat and concurrency apply only to request steps")
        return self


class OvershootSpec(_Strict):
    tenant: str
    period: _Lax[Period] = Period.DAILY


class LedgerCheck(_Strict):
    tenant: str
    period: _Lax[Period] = Period.DAILY
    used: Match | None = None
    agrees_with_billed: bool | None = None
    """True: what the SUT charged (the ledger) equals what the upstream billed for the tenant's requests
    in the period (input plus output tokens of the calls that answered), read from the upstream's
    requests: runs on every target that can read them."""
    agrees_with_metrics: bool | None = None
    """True: the ledger's usage equals what the SUT's own usage records charged (needs ``metrics``)."""


class UpstreamCallsCheck(_Strict):
    count: Match | None = None
    models: list[str | Match] | None = None
    """The models the upstream was asked for, in order: each a model id or a condition (``{model:
    primary:example}`` for the model the SUT's configuration picks)."""
    statuses: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    gateway_id: Match | None = None
    """Every call's gateway."""
    metadata: dict[str, Match] | None = None
    """Every call's ``cf-aig-metadata`` fields, as the gateway stored them."""
    metadata_entries: Match | None = None
    """How many metadata entries every call carried."""
    cut: list[bool] | None = None
    """Whether each call's response was cut off (a fault or the client going away), in order."""


_SESSION_ID = r"^[0-9A-Za-z][0-9A-Za-z._:-]{0,127}$"


class SessionCheck(_Strict):
    """What the SUT stored in one session, oldest message first: read from its storage where the target
    can (a Worker's Durable Object, a deployment's state probe, the reference gateway's store), else from
    its history route in any of the contract's documented shapes and orders. And (``sent``) what it sent
    the model from that session, read from the upstream's requests."""

    tenant: str
    session: Annotated[str, Field(pattern=_SESSION_ID)]
    messages: list[dict[str, Match]] | None = None
    """One entry per stored message, oldest first: conditions on its fields (``role``, ``content``,
    ``tokenCount``); ``{}`` accepts any message. Without ``count``, exactly this many messages."""
    count: Match | None = None
    """How many messages the session holds (defaults to the length of ``messages``)."""
    sent: list[dict[str, Match]] | None = None
    """The messages the SUT sent upstream on the session's last call, oldest first (its history, then the
    new question), exactly this many: what the model was given, whatever order the SUT stores."""

    @model_validator(mode="after")
    def _something_to_check(self) -> Self:
        if self.messages is None and self.count is None and self.sent is None:
            raise ValueError("a session check needs messages, count or sent")
        return self


class LogsCheck(_Strict):
    count: Match | None = None
    """How many log records there are (all of them, whatever ``where`` says)."""
    where: dict[str, Match] | None = None
    """Check ``gateway_id``, ``metadata`` and ``fields`` only on records whose fields match this
    (for example ``{success: true}``)."""
    gateway_id: Match | None = None
    """Every log record's gateway."""
    metadata: dict[str, Match] | None = None
    """Every log record's metadata fields."""
    fields: dict[str, Match] | None = None
    """Every log record's other fields (``model``, ``status_code``, ``tokens_out``...)."""


class AgreementCheck(_Strict):
    """For each successful request, the named sources report the same value for each field."""

    sources: Annotated[
        list[Literal["metrics", "logs", "response", "stream", "headers", "upstream"]], Field(min_length=2)
    ]
    """``response`` is the done event's usage for a stream and the headers for a JSON answer."""
    fields: Annotated[
        list[Literal["model", "tokens_in", "tokens_out", "status", "cost"]], Field(min_length=1)
    ]


class MeasurementCheck(_Strict):
    name: Literal[
        "ttft_ms", "inter_token_gap_ms", "tokens_per_s", "duration_ms", "overshoot_tokens", "data_events"
    ]
    stat: Literal["min", "p50", "p90", "p95", "p99", "max", "mean", "count"] = "p95"
    value: Match


class MetricsCheck(_Strict):
    count: Match | None = None
    statuses: list[str] | None = None
    """Each usage record's status in order (``success``, ``rejected``, ``error``, ``truncated``,
    ``disconnected``)."""
    fields: dict[str, Match] | None = None
    """Every usage record's fields (``status``, ``model_id``, ``tokens_out``...)."""


class Check(_Strict):
    """A check across the whole run: one of ``ledger``, ``upstream_calls``, ``logs``, ``metrics``,
    ``agreement``, ``measurement`` or ``session``."""

    id: Annotated[str, Field(pattern=_ID)]
    description: str = ""
    requires: list[str] = Field(default_factory=list)
    """Extra capabilities this check needs beyond its kind's; when the target lacks one, the check alone is
    skipped."""
    ledger: LedgerCheck | None = None
    upstream_calls: UpstreamCallsCheck | None = None
    logs: LogsCheck | None = None
    metrics: MetricsCheck | None = None
    agreement: AgreementCheck | None = None
    measurement: MeasurementCheck | None = None
    session: SessionCheck | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        kinds = [k for k in CHECK_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a check needs exactly one of {', '.join(CHECK_KINDS)} (found: {', '.join(kinds) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in CHECK_KINDS if getattr(self, k) is not None)


CHECK_KINDS = ("ledger", "upstream_calls", "logs", "metrics", "agreement", "measurement", "session")


class FindingWhen(StrEnum):
    FAILED = "failed"
    """Raised when any of the named checks failed: the finding is a problem that was observed."""
    PASSED = "passed"
    """Raised when all of the named checks passed: the finding states confirmed behaviour."""
    ALWAYS = "always"
    """Raised whenever the checks ran: the evidence (measurements, observed values) is the finding."""


class Finding(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]*$")]
    title: str
    severity: _Lax[Severity]
    when: _Lax[FindingWhen] = FindingWhen.FAILED
    evidence: Annotated[list[str], Field(min_length=1)]
    """Check ids, step names (their expectations) or measurement names whose observations support it."""
    detail: str = ""
    recommendation: str


class GatewayOptions(_Strict):
    """Settings of the reference gateway for targets that run it (``fake``, ``live``, ``replay``).

    Timeouts are nominal seconds, scaled by the run's time scale like every other delay. The ``kv_*``
    durations are on the system's clock, which moves only with ``clock`` steps (not scaled).
    """

    first_byte_timeout_s: Annotated[float, Field(gt=0, le=_HOUR)] | None = None
    between_events_timeout_s: Annotated[float, Field(gt=0, le=_HOUR)] | None = None
    total_timeout_s: Annotated[float, Field(gt=0, le=_HOUR)] | None = None
    output_reservation: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    """Tokens the atomic ledger reserves for the answer at admission."""
    kv_propagation_delay_s: Annotated[float, Field(ge=0, le=_CENTURY_S)] | None = None
    kv_write_interval_s: Annotated[float, Field(ge=0, le=_CENTURY_S)] | None = None
    kv_settle_from_snapshot: bool | None = None
    """The platform's blind read-modify-write: add usage to the values read at admission."""
    trace_ids: Literal["platform", "always"] | None = None


class Assumptions(_Strict):
    """What a scenario assumes of the system under test beyond its ``tenants`` and ``environment`` (which
    are assumptions too: the tenants exist as written, the variables have those values)."""

    unset: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(default_factory=list)
    """Environment variables assumed not set (``MODEL_ID``, ``FALLBACK_MODEL_ID``): a target unsets them
    where it can; where it cannot and the SUT sets them, the scenario is not applicable."""


class Scenario(_Strict):
    """One scenario file."""

    id: Annotated[str, Field(pattern=_ID)]
    title: str
    area: _Lax[Area]
    description: str
    questions: list[str] = Field(default_factory=list)
    """The questions from the milestone this scenario answers; quoted in the report and docs."""
    requires: list[str] = Field(default_factory=list)
    """Extra capabilities the target must have. Rarely needed: what a scenario needs is derived from its
    setup, steps and checks (``aigw_harness.scenarios.kinds``); entries here are added to the setup's
    needs."""
    tenants: list[str | dict[str, Any]] = Field(default_factory=list)
    """Tenant configurations: a name from ``scenarios/tenants/`` or an inline tenant document."""
    environment: dict[str, str] = Field(default_factory=dict)
    """The deployment's environment variables (``MODEL_ID``, ``FALLBACK_MODEL_ID``...): assumed set to these
    values, arranged by the target where it can."""
    environment_defaults: dict[str, str] = Field(default_factory=dict)
    """Environment variables set only where the SUT does not set them itself (not an assumption): a SUT's
    own ``FALLBACK_MODEL_ID`` is kept, and expected models follow it through ``model`` references."""
    assumes: Assumptions = Field(default_factory=Assumptions)
    """Further assumptions about the SUT; a target arranges them or the scenario is not applicable."""
    budget_store: _Lax[BudgetStore] = BudgetStore.ATOMIC
    gateway: GatewayOptions = Field(default_factory=GatewayOptions)
    absent_gateways: list[str] = Field(default_factory=list)
    """Gateway ids the upstream account does not have (a mistyped or deleted slug); needs upstream_control."""
    clock: _Lax[datetime] | None = None
    """Where the system's clock starts (needs ``clock``)."""
    upstream: dict[str, Any] | None = None
    """The upstream's behaviour document at the start (needs ``upstream_control``)."""
    steps: Annotated[list[Step], Field(min_length=1)]
    checks: list[Check] = Field(default_factory=list)
    measure: list[
        Literal["ttft_ms", "inter_token_gap_ms", "tokens_per_s", "duration_ms", "overshoot_tokens"]
    ] = Field(default_factory=list)
    """Measurements to report (streams are always recorded; this chooses what the report shows)."""
    findings: list[Finding] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @field_validator("clock")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("the clock needs a time zone, for example 2026-02-07T23:59:59Z")
        if value is not None:
            _in_range(value)
        return value

    @model_validator(mode="after")
    def _references(self) -> Self:
        names = self.step_names()
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique: {sorted(n for n in names if names.count(n) > 1)}")
        both = sorted(set(self.assumes.unset) & set(self.environment))
        if both:
            raise ValueError(f"assumes.unset names variables the environment sets: {', '.join(both)}")
        twice = sorted(set(self.environment_defaults) & (set(self.environment) | set(self.assumes.unset)))
        if twice:
            raise ValueError(
                "environment_defaults names variables that environment or assumes.unset already decide: "
                + ", ".join(twice)
            )
        check_ids = [c.id for c in self.checks]
        if len(set(check_ids)) != len(check_ids):
            raise ValueError("check ids must be unique")
        known = set(names) | set(check_ids) | set(MEASUREMENTS)
        for finding in self.findings:
            unknown = [ref for ref in finding.evidence if ref not in known]
            if unknown:
                raise ValueError(
                    f"finding {finding.id} names evidence that is not a step, check or measurement: "
                    f"{', '.join(unknown)}"
                )
        return self

    def step_names(self) -> list[str]:
        return [step.name or f"step{index + 1}" for index, step in enumerate(self.steps)]


MEASUREMENTS = ("ttft_ms", "inter_token_gap_ms", "tokens_per_s", "duration_ms", "overshoot_tokens")

Step.model_rebuild()
