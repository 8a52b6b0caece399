"""The one HTTP client of live runs: Cloudflare's REST API and the AI Gateway endpoint.

Every request goes through an injected ``httpx.AsyncClient`` (tests give one pointed at the fake on
loopback); every error message passes through the credentials' redactor before it is raised, so that a
URL with the account id or an echoed header cannot carry a secret into a traceback or a report.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from aigw_harness.errors import HarnessError
from aigw_harness.live.cost import PlannedRequest
from aigw_harness.live.credentials import LiveCredentials
from aigw_harness.live.observe import Observation, observe

__all__ = ["ApiAnswer", "CloudflareClient", "LiveError", "gateway_metadata"]


class LiveError(HarnessError):
    """A live call failed in a way the user must act on; the message is already redacted."""


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: Any

    @property
    def error_codes(self) -> list[int]:
        """Codes from ``errors`` (REST) or ``error`` (gateway-originated) arrays."""
        if not isinstance(self.body, dict):
            return []
        items = self.body.get("errors") or self.body.get("error") or []
        return [int(i["code"]) for i in items if isinstance(i, dict) and isinstance(i.get("code"), int)]

    @property
    def result(self) -> Any:
        return self.body.get("result") if isinstance(self.body, dict) else None


def gateway_metadata(tenant_id: str, run_id: str, probe: str) -> dict[str, str]:
    """The ``cf-aig-metadata`` of every live request (AI Gateway keeps at most five entries)."""
    return {"tenantId": tenant_id, "runId": run_id, "probe": probe}


class CloudflareClient:
    def __init__(
        self,
        credentials: LiveCredentials,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self.http = http
        self.clock = clock
        self.redactor = credentials.redactor()

    async def api_get(self, path: str, params: Mapping[str, str] | None = None) -> ApiAnswer:
        """``GET {api_base}/{path}`` (``path`` absolute under the API base, e.g. ``/user/tokens/verify``)."""
        url = f"{self.credentials.api_base}/{path.lstrip('/')}"
        try:
            response = await self.http.get(url, params=params, headers=self.credentials.api_headers())
        except httpx.HTTPError as exc:
            raise LiveError(self.redactor.text(f"cannot reach Cloudflare's API at {url}: {exc!r}")) from None
        try:
            body = response.json()
        except ValueError:
            body = self.redactor.text(response.text[:500])
        return ApiAnswer(response.status_code, body)

    async def account_get(self, path: str, params: Mapping[str, str] | None = None) -> ApiAnswer:
        return await self.api_get(
            f"accounts/{self.credentials.account_id.reveal()}/{path.lstrip('/')}", params
        )

    async def get_log(self, log_id: str) -> ApiAnswer:
        return await self.account_get(f"ai-gateway/gateways/{self.credentials.gateway_id}/logs/{log_id}")

    async def list_logs(self, run_id: str, per_page: int = 50) -> ApiAnswer:
        filters = [{"key": "metadata.value", "operator": "eq", "value": [run_id]}]
        return await self.account_get(
            f"ai-gateway/gateways/{self.credentials.gateway_id}/logs",
            {"filters": json.dumps(filters), "per_page": str(per_page), "order_by_direction": "asc"},
        )

    async def run_probe(self, request: PlannedRequest, *, tenant_id: str, run_id: str) -> Observation:
        """Send one probe to the gateway's provider-native Workers AI endpoint and observe the answer."""
        headers = self.credentials.gateway_headers() | {
            "content-type": "application/json",
            "cf-aig-metadata": json.dumps(gateway_metadata(tenant_id, run_id, request.name)),
            "cf-aig-event-id": f"{run_id}.{request.name}",
            # A probe measures the model, not the cache.
            "cf-aig-skip-cache": "true",
        }
        url = self.credentials.gateway_url(f"workers-ai/{request.model}")
        return await self.observe_post(request.name, url, request.body(), headers)

    async def observe_post(
        self,
        name: str,
        url: str,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        *,
        raw: bytes | None = None,
    ) -> Observation:
        """POST ``body`` as JSON (or ``raw`` bytes as they are) and observe the answer."""
        started = self.clock()
        content = raw if raw is not None else json.dumps(dict(body or {})).encode()
        failures: list[httpx.HTTPError] = []
        try:
            sent_headers = {"content-type": "application/json"} | dict(headers)
            async with self.http.stream("POST", url, content=content, headers=sent_headers) as response:
                obs = await observe(
                    name,
                    response.status_code,
                    dict(response.headers),
                    _chunks(response, failures),
                    started=started,
                    clock=self.clock,
                )
        except httpx.HTTPError as exc:
            return Observation(name=name, error=self.redactor.text(f"{type(exc).__name__}: {exc}"))
        if failures:
            # The body broke off: keep what arrived (status, tokens, timings) and say how it ended.
            obs.error = self.redactor.text(f"{type(failures[0]).__name__}: {failures[0]}")
            obs.truncated = True
        return obs


async def _chunks(response: httpx.Response, failures: list[httpx.HTTPError]) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:
        failures.append(exc)
