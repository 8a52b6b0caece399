"""Gateways and their settings, per account: what the gateway API manages and the pipeline reads.

Fields are those of Cloudflare's gateway API. Create and update require ``cache_invalidate_on_update``,
``cache_ttl``, ``collect_logs``, ``rate_limiting_interval`` and ``rate_limiting_limit``; the rest are
optional and validated (``retry_max_attempts`` 1-5, ``retry_delay`` 0-5000 ms, ``spend_limits`` rules, ...).
Answers add ``created_at``, ``modified_at`` and ``is_default``. A ``cache_ttl`` of ``null`` is stored as 0,
as observed live.

Since 2026-11-03 new gateways require authentication (AI Gateway changelog, "New AI Gateways require
authentication"): a create without ``authentication`` gets it on, ``authentication: false`` answers 400,
and an update that would turn it off answers 400; an update that leaves the field out keeps it.
``require_authentication = False`` is the earlier rule (the field as given, off when omitted).

The ``default`` gateway is created on first use with the documented defaults (authentication on, logs on,
caching off, no rate limit); any other unknown gateway is an error: code 2001 ("gateway does not exist"),
HTTP 400 on gateway paths and 404 on the API. An account holds at most ``max_gateways`` gateways (20, the
paid plan's limit); ids are 1-64 letters, digits, ``-`` or ``_``.

The API that manages them is ``aigw_fakes.api.gateways``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pydantic

from aigw_fakes.state.spend import SpendLimits

__all__ = [
    "DEFAULT_GATEWAY_ID",
    "Gateway",
    "GatewayError",
    "GatewayRegistry",
    "GatewaySettings",
    "default_settings",
    "parse_settings",
]

DEFAULT_GATEWAY_ID = "default"
_AUTHENTICATION_REQUIRED = (
    "authentication: new gateways require authentication, and once on it cannot be turned off"
)
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class GatewaySettings(pydantic.BaseModel):
    """What a client may set on a gateway (create/update body minus ``id``)."""

    model_config = pydantic.ConfigDict(extra="ignore")

    cache_invalidate_on_update: bool
    cache_ttl: Annotated[int, pydantic.Field(ge=0)] | None
    collect_logs: bool
    rate_limiting_interval: Annotated[int, pydantic.Field(ge=0)] | None
    rate_limiting_limit: Annotated[int, pydantic.Field(ge=0)] | None
    authentication: bool = False
    byok_only: bool = False
    rate_limiting_technique: Literal["fixed", "sliding"] | None = "fixed"
    log_management: int | None = None
    log_management_strategy: Literal["STOP_INSERTING", "DELETE_OLDEST"] | None = None
    logpush: bool = False
    logpush_public_key: str | None = None
    retry_max_attempts: Annotated[int, pydantic.Field(ge=1, le=5)] | None = None
    retry_delay: Annotated[int, pydantic.Field(ge=0, le=5000)] | None = None
    retry_backoff: Literal["constant", "linear", "exponential"] | None = None
    spend_limits: SpendLimits | None = None
    store_id: str | None = None
    workers_ai_billing_mode: Literal["postpaid", "unified"] = "postpaid"
    zdr: bool = False
    dlp: dict[str, Any] | None = None
    guardrails: dict[str, Any] | None = None
    log_classification: bool = False
    otel: list[dict[str, Any]] | None = None
    stripe: dict[str, Any] | None = None

    @pydantic.field_validator("cache_ttl", mode="after")
    @classmethod
    def _null_ttl_is_zero(cls, value: int | None) -> int:
        return value or 0


def default_settings(*, authentication: bool = True) -> GatewaySettings:
    """The auto-created ``default`` gateway: authentication on, logs on, cache off, no rate limit."""
    return GatewaySettings(
        cache_invalidate_on_update=False,
        cache_ttl=0,
        collect_logs=True,
        rate_limiting_interval=None,
        rate_limiting_limit=None,
        authentication=authentication,
    )


@dataclass(slots=True)
class Gateway:
    account_id: str
    id: str
    settings: GatewaySettings
    created_at: float
    modified_at: float

    @property
    def key(self) -> str:
        """Identifies the gateway across accounts (for per-gateway state: limits, cache, logs)."""
        return f"{self.account_id}/{self.id}"

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_GATEWAY_ID

    def to_json(self, iso: Any) -> dict[str, Any]:
        body = self.settings.model_dump(mode="json", by_alias=True, exclude_none=False)
        return {
            "id": self.id,
            **body,
            "created_at": iso(self.created_at),
            "modified_at": iso(self.modified_at),
            "is_default": self.is_default,
        }


class GatewayError(ValueError):
    """A refused gateway operation: HTTP ``status``, Cloudflare ``code`` and a message naming the field."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _validation_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_settings(body: Any) -> GatewaySettings:
    if not isinstance(body, dict):
        raise GatewayError(400, 7001, "body: expected a JSON object with the gateway's settings")
    try:
        return GatewaySettings.model_validate(body)
    except pydantic.ValidationError as exc:
        raise GatewayError(400, 7001, _validation_message(exc)) from exc


@dataclass(slots=True)
class GatewayRegistry:
    max_gateways: int = 20
    default_authentication: bool = True
    require_authentication: bool = True
    _gateways: dict[str, dict[str, Gateway]] = field(default_factory=dict)

    def list(self, account_id: str, search: str | None = None) -> list[Gateway]:
        gateways = sorted(self._gateways.get(account_id, {}).values(), key=lambda g: (g.created_at, g.id))
        if search:
            gateways = [g for g in gateways if search.lower() in g.id.lower()]
        return gateways

    def get(self, account_id: str, gateway_id: str) -> Gateway | None:
        return self._gateways.get(account_id, {}).get(gateway_id)

    def resolve(self, account_id: str, gateway_id: str, now: float) -> Gateway | None:
        """The gateway a request names; ``default`` is created on first use, others must exist."""
        found = self.get(account_id, gateway_id)
        if found is None and gateway_id == DEFAULT_GATEWAY_ID:
            settings = default_settings(authentication=self.default_authentication)
            found = self._insert(account_id, DEFAULT_GATEWAY_ID, settings, now)
        return found

    def create(self, account_id: str, body: Any, now: float, *, by_api: bool = True) -> Gateway:
        """A new gateway; ``by_api=False`` for gateways the fake itself makes (configured ones, which
        stand for gateways made earlier, and ``auto_create_gateways``): today's authentication rule
        applies to API creates only."""
        gateway_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(gateway_id, str) or not _ID_PATTERN.match(gateway_id):
            raise GatewayError(
                400, 7001, f"id: expected 1-64 letters, digits, '-' or '_', got {gateway_id!r}"
            )
        if self.require_authentication and by_api:
            if body.get("authentication") is False:
                raise GatewayError(400, 7001, _AUTHENTICATION_REQUIRED)
            body = {**body, "authentication": True}
        settings = parse_settings(body)
        if self.get(account_id, gateway_id) is not None:
            raise GatewayError(400, 7001, f"id: a gateway named {gateway_id!r} already exists")
        if len(self._gateways.get(account_id, {})) >= self.max_gateways:
            raise GatewayError(
                400, 7004, f"the account already has {self.max_gateways} gateways, the most it may have"
            )
        return self._insert(account_id, gateway_id, settings, now)

    def update(self, account_id: str, gateway_id: str, body: Any, now: float) -> tuple[Gateway, bool]:
        """Replace a gateway's settings; the flag says whether its cache must be invalidated."""
        gateway = self.get(account_id, gateway_id)
        if gateway is None:
            raise GatewayError(404, 2001, "gateway does not exist")
        if self.require_authentication and isinstance(body, dict):
            if "authentication" not in body:
                body = {**body, "authentication": gateway.settings.authentication}
            elif body["authentication"] is False and gateway.settings.authentication:
                raise GatewayError(400, 7001, _AUTHENTICATION_REQUIRED)
        settings = parse_settings(body)
        gateway.settings = settings
        gateway.modified_at = now
        return gateway, settings.cache_invalidate_on_update

    def delete(self, account_id: str, gateway_id: str) -> Gateway:
        gateway = self._gateways.get(account_id, {}).pop(gateway_id, None)
        if gateway is None:
            raise GatewayError(404, 2001, "gateway does not exist")
        return gateway

    def reset(self) -> None:
        self._gateways.clear()

    def _insert(self, account_id: str, gateway_id: str, settings: GatewaySettings, now: float) -> Gateway:
        gateway = Gateway(account_id, gateway_id, settings, now, now)
        self._gateways.setdefault(account_id, {})[gateway_id] = gateway
        return gateway
