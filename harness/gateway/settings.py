"""Settings of one reference gateway: tenants, environment, upstream, budgets, timeouts, fallback, clock.

One validated model, built by the CLI from flags, by scenario targets from scenario files, or directly in
Python. Secrets are ``SecretStr`` so that they never print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from aigw_harness.gateway.clock import Clock, SystemClock
from aigw_harness.gateway.metrics import MetricsObserver
from aigw_harness.gateway.tenants import ENV_KEYS, TenantConfig
from aigw_harness.gateway.upstream import DEFAULT_FALLBACK_CLASSES, ErrorClass, MalformedFrames

__all__ = ["FallbackPolicy", "GatewaySettings", "KVOptions", "PlatformQuirks", "Timeouts", "UpstreamSettings"]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class UpstreamSettings(_Settings):
    base_url: str = Field(description="the fake's base URL, or https://gateway.ai.cloudflare.com")
    account_id: str | None = Field(
        default=None,
        description="used for every tenant when set (the fake has one account); else each tenant's",
    )
    api_token: SecretStr | None = Field(
        default=None, description="Cloudflare API token, sent as authorization"
    )
    gateway_token: SecretStr | None = Field(
        default=None, description="for an authenticated gateway, sent as cf-aig-authorization"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class Timeouts(_Settings):
    """Limits of each attempt, all within ``total``, the deadline of the whole request (every attempt and
    every wait for a ``Retry-After``). ``None`` means no limit of that kind."""

    first_byte: float | None = Field(
        default=30.0, gt=0, allow_inf_nan=False, description="seconds to the response head"
    )
    first_token: float | None = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds from an attempt's start to its first token",
    )
    between_events: float | None = Field(
        default=30.0, gt=0, allow_inf_nan=False, description="seconds between stream events"
    )
    attempt: float | None = Field(
        default=120.0, gt=0, allow_inf_nan=False, description="seconds for one attempt, head to end"
    )
    total: float | None = Field(
        default=300.0, gt=0, allow_inf_nan=False, description="seconds for all attempts of one request"
    )
    request_head: float = Field(
        default=10.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="seconds for a client to send a request head",
    )
    request_body: float | None = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds for a client to send its /chat request body",
    )


class FallbackPolicy(_Settings):
    """What a failed attempt leads to, by error class, before the first token reached the client (after it,
    nothing is retried).

    - ``on``: the classes that move on to the next candidate model.
    - ``retry_after``: an answer with ``Retry-After`` (429 or 5xx) is never retried sooner than it says.
      ``fallback_first`` moves on to the next candidate at once and waits only when none is left;
      ``wait`` waits and retries the same model first; ``ignore`` treats it like any other failure.
      A wait happens only when it is at most ``max_retry_wait`` seconds and ends before the deadline.
    - ``max_retries``: retries of one model after a ``Retry-After``.
    """

    on: frozenset[ErrorClass] = DEFAULT_FALLBACK_CLASSES
    retry_after: Literal["fallback_first", "wait", "ignore"] = "fallback_first"
    max_retry_wait: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    max_retries: int = Field(default=1, ge=0, le=10)

    def allows(self, error_class: ErrorClass) -> bool:
        return error_class in self.on


class KVOptions(_Settings):
    propagation_delay: float = Field(default=0.0, ge=0, description="seconds before a write is visible")
    write_interval: float = Field(default=1.0, ge=0, description="minimum seconds between writes to one key")
    settle_from_snapshot: bool = Field(
        default=False, description="add usage to the values read at admission, as the platform does"
    )


class PlatformQuirks(_Settings):
    """Behaviours of the platform's code that depart from its contract, off by default. Turning one on makes
    the reference gateway behave as the platform does, so that a scenario written to expose that behaviour
    can be checked on the embedded fake before it is run against a deployment."""

    stream_model_header_primary: bool = False
    """A stream's ``x-model-id`` names the primary model, even when the fallback served."""
    stream_usage_estimates_only: bool = False
    """Usage frames in streams are ignored: ``done.usage`` and the ledger use estimates."""
    done_names_last_candidate: bool = False
    """After a total failure ``done.usage`` names the last failed candidate with the input estimate; after a
    mid-stream failure ``done`` carries no usage."""
    truncation_is_success: bool = False
    """A stream that ends without its terminator ends like a complete answer."""
    no_charge_on_stream_failure: bool = False
    """A stream that fails after its first token (or whose client leaves) is not charged."""
    append_before_budget_check: bool = False
    """The user's message enters the session history before the budget check, so a refused turn stays in
    the history (and is sent and charged with every later turn)."""
    generic_error_code: bool = False
    """Every failed answer is ``ai_error`` "AI provider unavailable" (502 on JSON), whatever its cause:
    a content filter, a conversation too long for the model or an unknown requested model look like an
    outage."""


class GatewaySettings(_Settings):
    tenants_dir: Path | None = None
    tenants: list[TenantConfig] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="environment overrides (wrangler vars)")
    upstream: UpstreamSettings
    budget_store: Literal["atomic", "kv"] = "atomic"
    kv: KVOptions = Field(default_factory=KVOptions)
    output_reservation: int = Field(
        default=0, ge=0, description="tokens reserved for the answer at admission"
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)
    fallback: FallbackPolicy = Field(default_factory=FallbackPolicy)
    malformed_frames: MalformedFrames = Field(
        default="skip", description="skip: a frame that is not JSON is skipped and counted; fail: it fails"
    )
    trace_ids: Literal["platform", "always"] = Field(
        default="platform",
        description="platform: cf-ray, else x-request-id, else none; always: x-trace-id, else a new UUID",
    )
    quirks: PlatformQuirks = Field(default_factory=PlatformQuirks)
    clock: Clock = Field(default_factory=SystemClock, exclude=True)
    transport: httpx.AsyncBaseTransport | None = Field(default=None, exclude=True)
    metrics_jsonl: Path | None = None
    observers: list[MetricsObserver] = Field(default_factory=list, exclude=True)

    @field_validator("env")
    @classmethod
    def _known_env(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(ENV_KEYS))
        if unknown:
            raise ValueError(f"unknown keys {', '.join(unknown)}; the known ones are {', '.join(ENV_KEYS)}")
        return value

    @model_validator(mode="after")
    def _some_tenants(self) -> GatewaySettings:
        if self.tenants_dir is None and not self.tenants:
            raise ValueError("name the tenants: tenants_dir or a tenants list")
        return self

    @classmethod
    def for_upstream(cls, base_url: str, **kwargs: Any) -> GatewaySettings:
        """Shorthand: ``GatewaySettings.for_upstream(fake.base_url, account_id=..., api_token=..., ...)``."""
        upstream_keys = {"account_id", "api_token", "gateway_token"}
        upstream = UpstreamSettings(
            base_url=base_url, **{k: kwargs.pop(k) for k in list(kwargs) if k in upstream_keys}
        )
        return cls(upstream=upstream, **kwargs)
