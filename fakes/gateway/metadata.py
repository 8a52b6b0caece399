"""The per-request gateway options a request carries in ``cf-aig-*`` headers and that this part of the
fake applies: metadata, event id, custom cost, the first-byte timeout, log collection, and gateway
authentication. (Cache, retry and limit headers are read by the modules that apply them.)

Metadata follows Cloudflare's rules (``aigw_fakes.state.logs.normalise_metadata``). Header text that is not a
JSON object is undocumented: ``FidelityOptions.invalid_metadata`` chooses between storing no metadata and
refusing the request with a 400 that names the header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers

from aigw_fakes.hardened_http import loads_strict
from aigw_fakes.models.cost import CustomCost, parse_custom_cost
from aigw_fakes.state.logs import normalise_metadata
from aigw_fakes.state.store import MetadataValue
from aigw_fakes.wire.errors import CloudflareError

__all__ = ["RequestOptions", "bearer", "parse_metadata", "request_options"]


class MetadataNotAnObject(ValueError):
    pass


def parse_metadata(text: str | None) -> dict[str, MetadataValue] | None:
    """``cf-aig-metadata`` as stored; text that is not a JSON object raises ``MetadataNotAnObject``."""
    if text is None:
        return None
    try:
        value = loads_strict(text)
    except ValueError:
        raise MetadataNotAnObject("cf-aig-metadata: not valid JSON") from None
    if not isinstance(value, dict):
        raise MetadataNotAnObject("cf-aig-metadata: expected a JSON object")
    return normalise_metadata(value)


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """One request's gateway options, from ``cf-aig-*`` headers (or the binding's ``gateway`` object)."""

    metadata: dict[str, MetadataValue] | None = None
    event_id: str | None = None
    custom_cost: CustomCost | None = None
    request_timeout_ms: float | None = None
    collect_log: bool | None = None
    collect_log_payload: bool | None = None
    aig_authorization: str | None = None  # the token in cf-aig-authorization, without "Bearer "


def _bool(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.strip().lower() == "true"


def bearer(text: str | None) -> str | None:
    if text is None:
        return None
    scheme, _, token = text.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def request_options(
    headers: Headers, invalid_metadata: Literal["ignore", "reject"] = "ignore"
) -> RequestOptions:
    try:
        metadata = parse_metadata(headers.get("cf-aig-metadata"))
    except MetadataNotAnObject as exc:
        if invalid_metadata == "reject":
            raise CloudflareError.of("invalid_request", detail=str(exc)) from None
        metadata = None
    timeout: float | None = None
    raw_timeout = headers.get("cf-aig-request-timeout", "").strip()
    if raw_timeout.isdigit() and int(raw_timeout) > 0:
        timeout = float(raw_timeout)
    return RequestOptions(
        metadata=metadata,
        event_id=headers.get("cf-aig-event-id"),
        custom_cost=parse_custom_cost(headers.get("cf-aig-custom-cost")),
        request_timeout_ms=timeout,
        collect_log=_bool(headers.get("cf-aig-collect-log")),
        collect_log_payload=_bool(headers.get("cf-aig-collect-log-payload")),
        aig_authorization=bearer(headers.get("cf-aig-authorization")),
    )
