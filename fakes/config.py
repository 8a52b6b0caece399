"""Start-up configuration of the fake: accounts and their tokens, gateways and their settings, fidelity
switches for behaviour Cloudflare does not document, seed, time scale and clock.

``FakeConfig()`` with no arguments is a working fake: one account with one API token, gateways created on
first use. Everything here is data (loadable with ``aigw_fakes.datafiles.load_model``) except the clock, which
is an object so that tests can move it.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aigw_fakes.clock import Clock, SystemClock
from aigw_fakes.hardened_http import Limits
from aigw_fakes.state.gateways import GatewayError, default_settings, parse_settings

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_API_TOKEN",
    "AccountConfig",
    "FakeConfig",
    "FidelityOptions",
    "GatewayConfig",
]

DEFAULT_ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
DEFAULT_API_TOKEN = "aigw-fake-token-0000000000000000000000"


class GatewayConfig(BaseModel):
    """A gateway that exists from the start: its id and any fields of
    ``aigw_fakes.state.gateways.GatewaySettings`` (Cloudflare's gateway API names); unset fields take the
    defaults of an auto-created gateway, except
    ``authentication``, which is off unless set."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")

    def settings(self) -> dict[str, object]:
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _valid_settings(self) -> Self:
        try:
            parse_settings({**default_settings(authentication=False).model_dump(), **self.settings()})
        except GatewayError as exc:
            raise ValueError(exc.message) from None
        return self


class AccountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    api_tokens: list[str] = Field(min_length=1)
    gateways: list[GatewayConfig] = Field(default_factory=list)
    plan: Literal["paid", "free"] = "paid"
    """The account's Workers plan: on ``free``, models that need Workers Paid answer 403 code 5035 (unless
    the gateway bills Workers AI through Unified Billing)."""


class FidelityOptions(BaseModel):
    """Switches for behaviour the contract marks UNCONFIRMED; the defaults are the documented or most
    often observed choice."""

    model_config = ConfigDict(extra="forbid")

    auto_create_gateways: bool = False
    """Create any unknown gateway on first use (authentication off). Cloudflare creates only ``default``
    (authentication on, as documented); other unknown gateways get error 2001."""
    openai_stream_trailing_usage_frame: bool = False
    """On the OpenAI-compatible paths, end the chunk stream with the native ``{"response":"","usage"}``
    frame as the binding path does."""
    openai_stream_padding: bool = True
    """Add ``p`` padding to chunks on the OpenAI-compatible paths."""
    chunk_usage: bool = True
    """Chat-completion chunks carry incremental per-chunk ``usage``, as observed on Workers AI."""
    invalid_metadata: Literal["ignore", "reject"] = "ignore"
    """``cf-aig-metadata`` that is not a JSON object: stored as no metadata (``ignore``), or refused with a
    400 gateway error naming the header (``reject``)."""
    accept_run_segment: bool = True
    """Also accept ``.../workers-ai/run/{model}`` on the gateway host, besides the documented form."""
    new_gateways_require_authentication: bool = True
    """Gateways created through the API have authentication on (omitted means on; ``false`` answers 400)
    and an update cannot turn it off (400), as Cloudflare does since 2026-11-03. ``False`` restores the
    earlier rule: authentication is whatever the body says, off when omitted."""
    log_ids: Literal["uuidv7", "ulid"] = "uuidv7"
    """Gateway log and request ids: lowercase UUIDv7, one value in ``cf-aig-log-id``, ``cf-aig-request-id``
    and ``cf-aig-event-id`` (Cloudflare since 2026-10-08); or ``ulid``, the earlier behaviour (ULID log ids,
    random UUID request ids, ``cf-aig-event-id`` only when the client sent one), for stored data that
    expects it."""
    retired_model: Literal["no_such_model", "invalid_model_id", "served"] = "no_such_model"
    """What a retired model answers; Cloudflare documents nothing. ``no_such_model``: 400 code 5007 (as a
    model not in the catalogue); ``invalid_model_id``: 404 code 3042; ``served``: it keeps answering."""
    timeout_status: int = 408
    """Status of the error answered when ``cf-aig-request-timeout`` passes before the first byte."""


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    accounts: list[AccountConfig] = Field(
        default_factory=lambda: [AccountConfig(id=DEFAULT_ACCOUNT_ID, api_tokens=[DEFAULT_API_TOKEN])],
        min_length=1,
    )
    """The first account is the default one (``FakeGateway.account_id``)."""
    seed: int = 0
    """Seeds generated text, padding, jitter and ids: the same seed and requests give the same bytes."""
    time_scale: float = Field(default=1.0, ge=1e-6, le=1e6)
    """Multiplies every delay (time to first byte, token pacing, stalls); 0.01 runs a 1 s stream in 10 ms.
    Recorded durations are divided by it, so logs read as if time had not been compressed."""
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0, le=2**40)
    """Largest request body; larger ones are refused with 413 (code 3006) before they are read."""
    max_control_body_bytes: int = Field(default=1024 * 1024, gt=0, le=2**40)
    """Largest body of a ``/__aigw/`` control request (a behaviour document: YAML is slow to parse)."""
    max_head_bytes: int = Field(default=64 * 1024, gt=0, le=2**30)
    """Largest request line and headers; larger heads are refused with 431 in the v4 envelope."""
    head_timeout_s: float = Field(default=10.0, gt=0, le=86_400)
    """A request head that is not complete this long after its first byte (or after the connection opened)
    is answered 408 and the connection closed."""
    body_timeout_s: float = Field(default=30.0, gt=0, le=86_400)
    """A request body that is not complete this long after its head is answered 408 (code 3007)."""
    idle_timeout_s: float = Field(default=5.0, gt=0, le=86_400)
    """A kept-alive connection with no request this long is closed."""
    max_json_depth: int = Field(default=512, ge=1, le=10_000)
    """JSON bodies nested deeper are refused like any other malformed body."""
    max_records: int | None = Field(default=100_000, gt=0)
    """The request store keeps at most about this many records, dropping the oldest; None keeps all."""
    catalogue_file: str | None = None
    """A JSON or YAML file of extra models (same shape as ``fakes/catalogue.json``), merged over the
    built-in catalogue."""
    behaviour_file: str | None = None
    """A behaviour document loaded at start-up and restored by ``reset()``."""
    fidelity: FidelityOptions = Field(default_factory=FidelityOptions)
    clock: Clock = Field(default_factory=SystemClock, exclude=True)

    @field_validator("clock", mode="plain")
    @classmethod
    def _check_clock(cls, value: object) -> Clock:
        if not callable(getattr(value, "time", None)):
            raise ValueError("clock must have a time() method returning epoch seconds")
        return value  # type: ignore[return-value]

    @property
    def default_account(self) -> AccountConfig:
        return self.accounts[0]

    def limits(self) -> Limits:
        return Limits(
            max_body_bytes=self.max_body_bytes,
            max_head_bytes=self.max_head_bytes,
            head_timeout_s=self.head_timeout_s,
            body_timeout_s=self.body_timeout_s,
            idle_timeout_s=self.idle_timeout_s,
            max_json_depth=self.max_json_depth,
        )
