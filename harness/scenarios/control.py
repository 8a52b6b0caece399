"""Sources that read the fake AI Gateway over HTTP: its ``/__aigw/`` control API and its Logs API.

Used by every target whose upstream is our fake, in this process or another: the embedded ``fake`` target
and the ``url`` target given ``--upstream-url``. Records are turned into the runner's plain records here,
so that a change in the fake's JSON touches one function.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from aigw_harness.scenarios.targets import Capability, GatewayLogRecord, UpstreamCall

__all__ = [
    "ControlApiUpstream",
    "FakeSources",
    "LogsApiReader",
    "fake_sources",
    "gateway_log_record",
    "upstream_call",
]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _metadata(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def upstream_call(record: Mapping[str, Any]) -> UpstreamCall:
    """One entry of ``GET /__aigw/requests`` as an ``UpstreamCall``."""
    return UpstreamCall(
        id=str(record.get("id", "")),
        model=_str(record.get("model")),
        status=_int(record.get("status_code")) or 0,
        log_id=_str(record.get("id")) if record.get("logged", True) else None,
        gateway_id=_str(record.get("gateway_id")),
        metadata=_metadata(record.get("metadata")),
        tokens_in=_int(record.get("tokens_in")),
        tokens_out=_int(record.get("tokens_out")),
        cost=_float(record.get("cost")),
        stream=record.get("stream") if isinstance(record.get("stream"), bool) else None,
        outcome=_str(record.get("behaviour")),
        created_at=_str(record.get("created_at")),
        duration_ms=_float(record.get("duration_ms")),
        ttfb_ms=_float(record.get("ttfb_ms")),
        complete=record.get("complete") is True,
        cut=record.get("cut") is True,
        request=_json_object(record.get("request_body")),
        request_headers={str(k).lower(): str(v) for k, v in _metadata(record.get("request_head")).items()},
    )


def _json_object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def gateway_log_record(record: Mapping[str, Any], gateway_id: str | None) -> GatewayLogRecord:
    """One Logs API entry as a ``GatewayLogRecord``."""
    return GatewayLogRecord(
        id=str(record.get("id", "")),
        gateway_id=_str(record.get("gateway_id")) or gateway_id,
        model=_str(record.get("model")),
        provider=_str(record.get("provider")),
        status_code=_int(record.get("status_code")),
        success=record.get("success") if isinstance(record.get("success"), bool) else None,
        tokens_in=_int(record.get("tokens_in")),
        tokens_out=_int(record.get("tokens_out")),
        cost=_float(record.get("cost")),
        duration_ms=_float(record.get("duration")),
        metadata=_metadata(record.get("metadata")),
        cached=record.get("cached") if isinstance(record.get("cached"), bool) else None,
        step=_int(record.get("step")),
        created_at=_str(record.get("created_at")),
    )


class ControlApiUpstream:
    """``UpstreamControl`` over the fake's ``/__aigw/`` control API."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")

    async def load_behaviour(self, document: Mapping[str, Any]) -> None:
        response = await self._client.put(f"{self._base}/__aigw/behaviour", json=dict(document))
        if response.status_code >= 400:
            raise RuntimeError(
                f"the fake refused the behaviour document ({response.status_code}): {response.text}"
            )

    async def reset(self) -> None:
        response = await self._client.post(f"{self._base}/__aigw/reset")
        response.raise_for_status()

    async def requests(self) -> list[UpstreamCall]:
        # Request bodies are read for conformance checks (what the SUT asked); answers are not needed.
        response = await self._client.get(f"{self._base}/__aigw/requests")
        response.raise_for_status()
        body = response.json()
        items = body.get("result") or [] if isinstance(body, Mapping) else body
        return [upstream_call(item) for item in items if isinstance(item, Mapping)]


class LogsApiReader:
    """``GatewayLogs`` over Cloudflare's Logs API (the fake's, or any compatible server)."""

    def __init__(self, client: httpx.AsyncClient, api_base: str, account_id: str, api_token: str) -> None:
        self._client = client
        self._base = f"{api_base.rstrip('/')}/client/v4/accounts/{account_id}/ai-gateway/gateways"
        self._headers = {"authorization": f"Bearer {api_token}"}

    async def served(self) -> bool:
        """Whether the server answers the Logs API at all."""
        response = await self._client.get(self._base, headers=self._headers, params={"per_page": 1})
        return response.status_code == 200

    async def _gateways(self) -> list[str]:
        response = await self._client.get(self._base, headers=self._headers, params={"per_page": 50})
        response.raise_for_status()
        return [
            str(g["id"]) for g in response.json().get("result", []) if isinstance(g, Mapping) and "id" in g
        ]

    async def list(self, gateway_id: str | None = None) -> list[GatewayLogRecord]:
        records: list[GatewayLogRecord] = []
        for gateway in [gateway_id] if gateway_id else await self._gateways():
            page = 1
            while True:
                response = await self._client.get(
                    f"{self._base}/{gateway}/logs",
                    headers=self._headers,
                    params={
                        "page": page,
                        "per_page": 50,
                        "order_by": "created_at",
                        "order_by_direction": "asc",
                    },
                )
                if response.status_code == 404:
                    break
                response.raise_for_status()
                body = response.json()
                items = body.get("result") or []
                records.extend(
                    gateway_log_record(item, gateway) for item in items if isinstance(item, Mapping)
                )
                info = body.get("result_info") or {}
                total = info.get("total_count")
                if not items or (isinstance(total, int) and page * 50 >= total):
                    break
                page += 1
        records.sort(key=lambda r: (r.created_at or "", r.id))
        return records

    async def get(self, gateway_id: str, log_id: str) -> GatewayLogRecord | None:
        response = await self._client.get(f"{self._base}/{gateway_id}/logs/{log_id}", headers=self._headers)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return gateway_log_record(response.json().get("result") or {}, gateway_id)


@dataclass(frozen=True, slots=True)
class FakeSources:
    """What a target whose upstream is our fake hands the runner about that fake."""

    upstream: ControlApiUpstream
    logs: LogsApiReader | None
    capabilities: frozenset[Capability]


async def fake_sources(
    client: httpx.AsyncClient,
    base_url: str,
    account_id: str,
    api_token: str,
    capabilities: frozenset[Capability],
) -> FakeSources:
    """The fake's control API and Logs API; ``GATEWAY_LOGS`` is dropped when the fake serves no Logs API."""
    upstream = ControlApiUpstream(client, base_url)
    logs = LogsApiReader(client, base_url, account_id, api_token)
    if await logs.served():
        return FakeSources(upstream, logs, capabilities)
    return FakeSources(upstream, None, capabilities - {Capability.GATEWAY_LOGS})
