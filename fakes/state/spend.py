"""Spend limits: cost budgets per window, scoped by provider, model and metadata, enforced with a lag.

A gateway's ``spend_limits`` holds up to 20 rules ``{id, enabled, limit, limitType: "cost", window (s),
technique: fixed|sliding, provider?, model?, metadata?}``. ``provider`` and ``model`` filter by value
(``{"mode": "filter", "values": [...]}``); a metadata key either filters (``{"mode": "filter",
"values": [...]}``) or partitions (``{"mode": "partition"}``: each distinct value gets its own budget). A
request to which a partitioned key's metadata is missing is outside that rule.

Enforcement follows Cloudflare's description and the live observations:
- every applicable rule is checked *before* the request is sent, against cost already recorded; a rule
  whose spend has reached its limit refuses the request (HTTP 429);
- a request's cost is recorded when it completes, and becomes visible to checks only ``visibility_lag``
  seconds later (eventual consistency), so a burst, or the request right after an overspend, can pass;
- ``fixed`` windows are aligned to the clock; ``sliding`` weights the previous fixed window's spend by how
  much of it still overlaps (``previous x (window - elapsed) / window``), as observed live, rather than a
  true rolling sum;
- a stream in flight is never cut: nothing here runs after a request was admitted.

Pure logic: the caller passes the time; nothing here reads wall time or knows about HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

import pydantic

__all__ = [
    "MAX_RULES",
    "FilterDimension",
    "MetadataDimension",
    "SpendDecision",
    "SpendLedger",
    "SpendLimits",
    "SpendRule",
    "spend_limit_detail",
    "spend_limit_message",
]

MAX_RULES = 20

_MODEL_CONFIG = pydantic.ConfigDict(extra="forbid", populate_by_name=True)


class FilterDimension(pydantic.BaseModel):
    model_config = _MODEL_CONFIG
    mode: Literal["filter"]
    values: list[str]


class MetadataDimension(pydantic.BaseModel):
    model_config = _MODEL_CONFIG
    mode: Literal["filter", "partition"]
    values: list[str] | None = None

    @pydantic.model_validator(mode="after")
    def _filter_needs_values(self) -> MetadataDimension:
        if self.mode == "filter" and not self.values:
            raise ValueError('a metadata dimension with mode "filter" needs a non-empty "values" list')
        return self


class SpendRule(pydantic.BaseModel):
    model_config = _MODEL_CONFIG
    id: str | None = None
    enabled: bool = True
    limit: Annotated[float, pydantic.Field(ge=0)]
    limit_type: Annotated[Literal["cost"], pydantic.Field(alias="limitType")] = "cost"
    window: Annotated[int, pydantic.Field(gt=0)]
    technique: Literal["fixed", "sliding"] = "fixed"
    metadata: dict[str, MetadataDimension] | None = None
    model: FilterDimension | None = None
    provider: FilterDimension | None = None


class SpendLimits(pydantic.BaseModel):
    model_config = _MODEL_CONFIG
    enabled: bool = True
    rules: Annotated[list[SpendRule], pydantic.Field(max_length=MAX_RULES)] = []

    @pydantic.model_validator(mode="after")
    def _name_rules(self) -> SpendLimits:
        for index, rule in enumerate(self.rules):
            if rule.id is None:
                rule.id = f"rule-{index + 1}"
        return self


def _format_number(value: float) -> str:
    """As JavaScript prints numbers: no exponent between 1e-7 and 1e21."""
    number = float(value)
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    text = repr(number)
    if "e" in text and 1e-7 <= abs(number) < 1e21:
        text = format(Decimal(text), "f")
    return text


def spend_limit_detail(rule: SpendRule, provider: str, model: str) -> str:
    """What follows "Spend limit exceeded: " in the refusal message."""
    return (
        f"rule '{rule.id}' (cost limit {_format_number(rule.limit)} per {rule.window}s, {rule.technique}) "
        f"for {provider} {model}"
    )


def spend_limit_message(rule: SpendRule, provider: str, model: str) -> str:
    """The refusal message as observed live."""
    return f"Spend limit exceeded: {spend_limit_detail(rule, provider, model)}"


def _bucket(
    rule: SpendRule, provider: str, model: str, metadata: Mapping[str, Any] | None
) -> tuple[str, ...] | None:
    """The budget this request draws on under ``rule``, or ``None`` when the rule does not apply."""
    if rule.provider is not None and provider not in rule.provider.values:
        return None
    if rule.model is not None and model not in rule.model.values:
        return None
    partition: list[str] = []
    for key, dimension in sorted((rule.metadata or {}).items()):
        if metadata is None or key not in metadata:
            return None
        value = _metadata_text(metadata[key])
        if dimension.mode == "filter":
            if value not in (dimension.values or []):
                return None
        else:
            partition.append(f"{key}={value}")
    return (rule.id or "", *partition)


def _metadata_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class SpendDecision:
    admitted: bool
    rule: SpendRule | None = None  # the first rule over budget, when refused
    spent: float = 0.0  # what that rule saw as spent


@dataclass(slots=True)
class _Entry:
    at: float
    cost: float


@dataclass(slots=True)
class SpendLedger:
    """Recorded costs per rule bucket; ``visibility_lag`` seconds pass before a cost counts."""

    visibility_lag: float = 1.0
    _entries: dict[tuple[str, ...], list[_Entry]] = field(default_factory=dict)

    def check(
        self,
        limits: SpendLimits | None,
        *,
        provider: str,
        model: str,
        metadata: Mapping[str, Any] | None,
        now: float,
        scope: str = "",
    ) -> SpendDecision:
        """Whether a request may be sent now; the first enabled rule over budget refuses it."""
        if limits is None or not limits.enabled:
            return SpendDecision(True)
        for rule in limits.rules:
            if not rule.enabled:
                continue
            bucket = _bucket(rule, provider, model, metadata)
            if bucket is None:
                continue
            spent = self._spent((scope, *bucket), rule, now)
            if spent >= rule.limit:
                return SpendDecision(False, rule, spent)
        return SpendDecision(True)

    def record(
        self,
        limits: SpendLimits | None,
        *,
        provider: str,
        model: str,
        metadata: Mapping[str, Any] | None,
        cost: float,
        now: float,
        scope: str = "",
    ) -> None:
        """Charge a completed request's cost to every rule bucket it falls in."""
        if limits is None or cost <= 0:
            return
        for rule in limits.rules:
            bucket = _bucket(rule, provider, model, metadata)
            if bucket is not None:
                self._entries.setdefault((scope, *bucket), []).append(_Entry(now, cost))

    def _spent(self, key: tuple[str, ...], rule: SpendRule, now: float) -> float:
        entries = self._entries.get(key, [])
        visible_until = now - self.visibility_lag
        window = float(rule.window)
        start = math.floor(now / window) * window
        current = sum(e.cost for e in entries if start <= e.at <= visible_until)
        if rule.technique == "fixed":
            return current
        previous = sum(e.cost for e in entries if start - window <= e.at < start and e.at <= visible_until)
        return current + previous * (window - (now - start)) / window

    def spent(self, limits: SpendLimits, rule_id: str, partition: Sequence[str] = (), *, now: float) -> float:
        """What a rule's buckets (or one partition of them) count as spent now."""
        for rule in limits.rules:
            if rule.id == rule_id:
                return sum(
                    self._spent(key, rule, now)
                    for key in self._entries
                    if key[1:2] == (rule_id,) and (not partition or tuple(key[2:]) == tuple(partition))
                )
        raise KeyError(f"no spend-limit rule with id {rule_id!r}")

    def reset(self) -> None:
        self._entries.clear()
