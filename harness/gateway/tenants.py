"""Tenant configurations, environment overrides and tenant resolution, as the platform defines them.

A tenant file has the platform's schema (``tenant.config.json``): ids, gateway, models, allow-list, feature
flags, token budget, rate limit and session limits. Files load through ``aigw_fakes.datafiles`` so that every
mistake names the file, line and field. Resolution follows the platform: the ``x-tenant-id`` header (any
non-empty value, trusted), then the request's host name, then the ``x-api-key`` header.

This module knows nothing about HTTP servers or upstream calls.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from aigw_fakes.datafiles import DataFileError, Problem, line_of, parse_data, read_text, validate_data
from aigw_harness.errors import ConfigError

__all__ = [
    "ENV_KEYS",
    "EnvOverrides",
    "TenantConfig",
    "TenantRegistry",
    "load_tenants",
]

PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    # Unknown keys are ignored, as the platform's schema strips them; this keeps real tenant files loadable.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class AiModels(_Model):
    chat: NonEmpty
    embeddings: NonEmpty


class RateLimit(_Model):
    per_minute: PositiveInt = Field(alias="perMinute")
    burst: PositiveInt
    window_sec: PositiveInt = Field(default=60, alias="windowSec")


class TokenBudget(_Model):
    daily: PositiveInt | None = None
    monthly: PositiveInt | None = None

    @property
    def enforced(self) -> bool:
        return self.daily is not None or self.monthly is not None


class TenantConfig(_Model):
    """One tenant, with the platform's field names (camelCase in files, snake_case in Python)."""

    tenant_id: NonEmpty = Field(alias="tenantId")
    account_id: NonEmpty = Field(alias="accountId")
    ai_gateway_id: NonEmpty = Field(alias="aiGatewayId")
    ai_models: AiModels = Field(alias="aiModels")
    vectorize_namespace: NonEmpty = Field(alias="vectorizeNamespace")
    rate_limit: RateLimit = Field(alias="rateLimit")
    feature_flags: dict[str, StrictBool] = Field(alias="featureFlags")
    allowed_hosts: list[str] = Field(alias="allowedHosts")
    api_keys: list[str] = Field(alias="apiKeys")
    allowed_models: list[str] = Field(default_factory=list, alias="allowedModels")
    token_budget: TokenBudget | None = Field(default=None, alias="tokenBudget")
    session_retention_days: PositiveInt = Field(default=30, alias="sessionRetentionDays")
    max_messages_per_session: PositiveInt = Field(default=1000, alias="maxMessagesPerSession")

    @property
    def allow_list_enabled(self) -> bool:
        return self.feature_flags.get("modelAllowList") is True


ENV_KEYS = (
    "MODEL_ID",
    "FALLBACK_MODEL_ID",
    "MAX_MESSAGE_LENGTH",
    "MAX_MESSAGE_COUNT",
    "MAX_REQUEST_BODY_SIZE",
    "ENVIRONMENT",
)


def _js_number(text: str) -> float:
    """``Number(text)`` as JavaScript computes it for the decimal strings wrangler vars hold."""
    stripped = text.strip()
    if not stripped:
        return 0.0
    try:
        return float(stripped)
    except ValueError:
        return math.nan


class EnvOverrides:
    """The Worker's environment variables that change gateway behaviour (wrangler ``vars``)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        values = dict(values or {})
        unknown = sorted(set(values) - set(ENV_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown environment override {', '.join(unknown)}; the known ones are {', '.join(ENV_KEYS)}"
            )
        for key, value in values.items():
            if not isinstance(value, str):
                raise ConfigError(f"environment override {key} must be a string, got {value!r}")
        self.values: dict[str, str] = values

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def model_id(self) -> str | None:
        return self._non_empty("MODEL_ID")

    def fallback_model_id(self) -> str | None:
        return self._non_empty("FALLBACK_MODEL_ID")

    def environment(self) -> str:
        return self.values.get("ENVIRONMENT", "unknown")

    def max_message_length(self) -> float | None:
        """``None`` when unset; a JS-truthy string is compared as ``Number(value)`` (NaN never matches)."""
        value = self.values.get("MAX_MESSAGE_LENGTH")
        return _js_number(value) if value else None

    def max_message_count(self) -> int | None:
        value = self.values.get("MAX_MESSAGE_COUNT")
        if value is None:
            return None
        number = _js_number(value)
        return int(number) if math.isfinite(number) and number >= 0 else None

    def max_request_body_size(self) -> float:
        value = self.values.get("MAX_REQUEST_BODY_SIZE")
        return 10240.0 if value is None else _js_number(value)

    def _non_empty(self, key: str) -> str | None:
        value = self.values.get(key)
        return value if value else None


class TenantRegistry:
    """Tenants by id, plus the host and API-key maps; later tenants win on a duplicate host or key."""

    def __init__(self, tenants: Iterable[TenantConfig]) -> None:
        self.by_id: dict[str, TenantConfig] = {}
        self.host_map: dict[str, str] = {}
        self.api_key_map: dict[str, str] = {}
        for tenant in tenants:
            if tenant.tenant_id in self.by_id:
                raise ConfigError(f"tenant {tenant.tenant_id!r} is configured twice")
            self.by_id[tenant.tenant_id] = tenant
            for host in tenant.allowed_hosts:
                self.host_map[host.lower()] = tenant.tenant_id
            for key in tenant.api_keys:
                self.api_key_map[key] = tenant.tenant_id

    def resolve_id(self, *, tenant_header: str | None, hostname: str, api_key: str | None) -> str | None:
        if tenant_header:
            return tenant_header
        by_host = self.host_map.get(hostname.lower())
        if by_host is not None:
            return by_host
        if api_key:
            return self.api_key_map.get(api_key)
        return None

    def get(self, tenant_id: str) -> TenantConfig | None:
        return self.by_id.get(tenant_id)

    def __iter__(self) -> Iterator[TenantConfig]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)


def _tenant_files(directory: Path) -> list[Path]:
    """``DIR/*.json`` (one file per tenant) and the platform's layout ``DIR/<tenant>/tenant.config.json``."""
    return sorted(directory.glob("*.json")) + sorted(directory.glob("*/tenant.config.json"))


def load_tenants(directory: str | Path) -> list[TenantConfig]:
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"tenants directory {directory} does not exist or is not a directory")
    files = _tenant_files(directory)
    if not files:
        raise ConfigError(
            f"no tenant files in {directory}: expected *.json or */tenant.config.json files there"
        )
    tenants: list[TenantConfig] = []
    seen: dict[str, Path] = {}
    for path in files:
        data, positions = parse_data(read_text(path), str(path))
        tenant = validate_data(data, TenantConfig, str(path), positions)
        if tenant.tenant_id in seen:
            raise DataFileError(
                str(path),
                [
                    Problem(
                        "tenantId",
                        f"tenant {tenant.tenant_id!r} is already defined in {seen[tenant.tenant_id]}",
                        line=line_of(positions, ("tenantId",)),
                    )
                ],
            )
        seen[tenant.tenant_id] = path
        tenants.append(tenant)
    return tenants
