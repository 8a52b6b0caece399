"""The load profile: who sends what to ``/chat``, how the embedded upstream answers, and the goals.

A profile is a small YAML file (``aigw load --profile FILE``), validated like every data file (errors name
file, line and field). It says nothing about how many users or for how long: those are Locust's own
options (``--users``, ``--spawn-rate``, ``--duration``), so that a profile works at any scale.

    tenants:                       # tenant mix: name (from the tenants folder) or inline document, weight
      - {tenant: load, weight: 3}
      - {tenant: example, weight: 1}
    sessions: {pool: 200}          # each user draws from 200 sessions per tenant (0: a new one per request)
    user_ids: 1000                 # distinct userId values (the platform's rate-limit key)
    prompts:
      - {message: "hello", weight: 1}
      - {chars: 2000, weight: 1}   # a message of 2000 characters
    stream_ratio: 0.9              # share of requests that ask for a stream
    think_time_s: {min: 0.0, max: 0.5}
    upstream: {default: {tokens: 64, token_delay_ms: 20}}   # the embedded fake's behaviour
    goals: {ttft_p95_ms: 500, error_rate: 0.01, contract_violations: 0, lost_tokens: 0, drift_tokens: 0,
            overshoot_tokens: 0}

This module holds data only: no I/O beyond reading the file, no Locust, no HTTP.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator

from aigw_fakes.datafiles import load_model

__all__ = ["Goals", "LoadProfile", "PromptMix", "SessionPolicy", "TenantMix", "ThinkTime", "load_profile"]

_Weight = Annotated[int, Field(ge=1, le=1_000_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantMix(_Strict):
    tenant: str | dict[str, Any]
    """A tenant name from the tenants folder, or an inline tenant document (the platform's format)."""
    weight: _Weight = 1

    @property
    def tenant_id(self) -> str:
        if isinstance(self.tenant, str):
            return self.tenant
        value = self.tenant.get("tenantId")
        return value if isinstance(value, str) else ""


class PromptMix(_Strict):
    """One kind of message: literal text, or ``chars`` characters of filler (``ceil(chars/4)`` tokens)."""

    message: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None
    chars: Annotated[int, Field(ge=1, le=10_000)] | None = None
    weight: _Weight = 1

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.message is None) == (self.chars is None):
            raise ValueError("give exactly one of message or chars")
        return self

    def text(self) -> str:
        if self.message is not None:
            return self.message
        assert self.chars is not None
        return ("lorem ipsum " * (self.chars // 12 + 1))[: self.chars]


class SessionPolicy(_Strict):
    pool: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    """Sessions per tenant that requests are spread over; 0 gives every request a new session."""


class ThinkTime(_Strict):
    min: Annotated[FiniteFloat, Field(ge=0, le=3600)] = 0.0
    max: Annotated[FiniteFloat, Field(ge=0, le=3600)] = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class Goals(_Strict):
    """Limits the run must stay within; each one broken is a finding. Absent goals are not judged."""

    ttft_p95_ms: Annotated[FiniteFloat, Field(gt=0)] | None = None
    """Time to first token, 95th percentile over all streams, in milliseconds."""
    error_rate: Annotated[FiniteFloat, Field(ge=0, le=1)] | None = None
    """Share of requests that did not end in a complete answer (non-2xx, error event, transport error)."""
    contract_violations: Annotated[int, Field(ge=0)] | None = None
    """Streams that broke the ``/chat`` SSE contract."""
    lost_tokens: Annotated[int, Field(ge=0)] | None = None
    """Charges the SUT made that its ledger dropped (lost read-modify-write updates), per run."""
    drift_tokens: Annotated[int, Field(ge=0)] | None = None
    """How far, in tokens, what the SUT charged may be from what the upstream billed (estimates instead of
    real usage, lost updates), summed over tenants as absolute differences."""
    overshoot_tokens: Annotated[int, Field(ge=0)] | None = None
    """Tokens charged beyond a tenant's daily budget."""


class LoadProfile(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")] = "load"
    tenants: Annotated[list[TenantMix], Field(min_length=1, max_length=1000)]
    sessions: SessionPolicy = Field(default_factory=SessionPolicy)
    user_ids: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    """How many distinct ``userId`` values requests carry (the platform's rate-limit key)."""
    prompts: Annotated[list[PromptMix], Field(min_length=1, max_length=1000)] = Field(
        default_factory=lambda: [PromptMix(message="hello")]
    )
    stream_ratio: Annotated[FiniteFloat, Field(ge=0, le=1)] = 1.0
    think_time_s: ThinkTime = Field(default_factory=ThinkTime)
    environment: dict[str, str] = Field(default_factory=dict)
    """The embedded gateway's environment variables (``MODEL_ID``...)."""
    budget_store: Literal["atomic", "kv"] = "atomic"
    """The embedded gateway's ledger: ``kv`` reproduces the platform's lost updates under concurrency."""
    upstream: dict[str, Any] | None = None
    """The embedded fake's behaviour document."""
    request_timeout_s: Annotated[FiniteFloat, Field(gt=0, le=3600)] = 60.0
    goals: Goals = Field(default_factory=Goals)

    def tenant_ids(self) -> list[str]:
        return [mix.tenant_id for mix in self.tenants]


class Draw:
    """Weighted choices for one simulated user, from its own seeded random source."""

    def __init__(self, profile: LoadProfile, seed: int) -> None:
        self._profile = profile
        self._random = random.Random(seed)
        self._tenant_weights = [mix.weight for mix in profile.tenants]
        self._prompt_weights = [mix.weight for mix in profile.prompts]

    def tenant(self) -> str:
        return self._random.choices(self._profile.tenants, self._tenant_weights)[0].tenant_id

    def prompt(self) -> str:
        return self._random.choices(self._profile.prompts, self._prompt_weights)[0].text()

    def stream(self) -> bool:
        return self._random.random() < self._profile.stream_ratio

    def user_id(self) -> str:
        return f"load-user-{self._random.randrange(self._profile.user_ids)}"

    def session_index(self) -> int | None:
        pool = self._profile.sessions.pool
        return self._random.randrange(pool) if pool else None

    def think_time(self) -> float:
        think = self._profile.think_time_s
        return self._random.uniform(think.min, think.max)


def load_profile(path: str | Path) -> LoadProfile:
    """Read and validate a profile; mistakes raise ``DataFileError`` with file, line and field."""
    return load_model(path, LoadProfile)
