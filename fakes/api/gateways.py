"""The gateway API: create, list, get, update and delete gateways (``aigw_fakes.state.gateways`` holds them).

Routes (under ``/client/v4/accounts/{account_id}/ai-gateway``): ``POST /gateways``, ``GET /gateways``
(``page``, ``per_page`` up to 50, ``search`` by id), ``GET|PUT|DELETE /gateways/{id}`` and
``GET /gateways/{id}/url/{provider}`` (the gateway's URL on this fake). Answers use the v4 envelope;
refusals name the field (400, code 7001) or say the gateway does not exist (404, code 2001). Updating a
gateway with ``cache_invalidate_on_update`` drops its cached responses; deleting one drops its cache and
rate windows.
"""

from __future__ import annotations

from typing import Any

from aigw_fakes.api.common import API_BASE, bad_request, envelope, not_found, require_token
from aigw_fakes.clock import iso_timestamp
from aigw_fakes.parts import FakeParts
from aigw_fakes.state.gateways import Gateway, GatewayError
from aigw_fakes.wire.errors import CloudflareError, ErrorRow, ErrorShape
from aigw_fakes.wire.http import IncomingRequest, Reply

__all__ = ["gateway_url", "install"]


def _api_error(error: GatewayError) -> CloudflareError:
    return CloudflareError(ErrorRow(error.code, error.status, error.message, ErrorShape.API, "gateway_api"))


_DEFAULT_PER_PAGE = 20
_MAX_PER_PAGE = 50


def _page_params(request: IncomingRequest) -> tuple[int, int]:
    values = []
    for name, default in (("page", 1), ("per_page", _DEFAULT_PER_PAGE)):
        raw = request.query.get(name)
        try:
            value = default if raw in (None, "") else int(raw)
        except ValueError:
            raise bad_request(7001, f"{name}: expected an integer, got {raw!r}") from None
        if value < 1:
            raise bad_request(7001, f"{name}: must be 1 or more, got {value}")
        values.append(value)
    return values[0], min(values[1], _MAX_PER_PAGE)


def gateway_url(request: IncomingRequest, account_id: str, gateway_id: str, provider: str) -> str:
    """The gateway's URL on this fake (the stand-in for ``https://gateway.ai.cloudflare.com/v1/...``)."""
    host = request.headers.get("host", "127.0.0.1")
    base = f"http://{host}/v1/{account_id}/{gateway_id}/"
    return base if provider == "universal" else base + provider


def _json_body(request: IncomingRequest) -> Any:
    try:
        return request.json()
    except ValueError:
        raise bad_request(7001, "body: not valid JSON") from None


def install(parts: FakeParts) -> None:
    state = parts.state
    features = state.features

    def existing(account_id: str, gateway_id: str) -> Gateway:
        found = state.gateways.get(account_id, gateway_id)
        if found is None:
            raise not_found(2001, "gateway does not exist")
        return found

    async def create(request: IncomingRequest) -> Reply:
        account_id = require_token(state, request)
        try:
            gateway = state.gateways.create(account_id, _json_body(request), state.clock.time())
        except GatewayError as error:
            raise _api_error(error) from None
        return envelope(gateway.to_json(iso_timestamp))

    async def list_gateways(request: IncomingRequest) -> Reply:
        account_id = require_token(state, request)
        page, per_page = _page_params(request)
        rows = state.gateways.list(account_id, request.query.get("search") or None)
        chosen = rows[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chosen), "total_count": len(rows)}
        return envelope([g.to_json(iso_timestamp) for g in chosen], result_info=info)

    async def get(request: IncomingRequest) -> Reply:
        account_id = require_token(state, request)
        return envelope(existing(account_id, request.params["gateway"]).to_json(iso_timestamp))

    async def update(request: IncomingRequest) -> Reply:
        account_id = require_token(state, request)
        gateway_id = request.params["gateway"]
        try:
            gateway, invalidate = state.gateways.update(
                account_id, gateway_id, _json_body(request), state.clock.time()
            )
        except GatewayError as error:
            raise _api_error(error) from None
        if invalidate:
            features.cache.invalidate(gateway.key)
        return envelope(gateway.to_json(iso_timestamp))

    async def delete(request: IncomingRequest) -> Reply:
        account_id = require_token(state, request)
        try:
            gateway = state.gateways.delete(account_id, request.params["gateway"])
        except GatewayError as error:
            raise _api_error(error) from None
        features.cache.invalidate(gateway.key)
        features.rate_limiter.forget(gateway.key)
        return envelope(gateway.to_json(iso_timestamp))

    async def url(request: IncomingRequest) -> Reply:
        account_id = require_token(state, request)
        gateway = existing(account_id, request.params["gateway"])
        return envelope(gateway_url(request, account_id, gateway.id, request.params["provider"]))

    base = f"{API_BASE}/gateways"
    one = f"{base}/(?P<gateway>[^/]+)"
    parts.router.add(["POST"], base, create, "api gateways create")
    parts.router.add(["GET"], base, list_gateways, "api gateways list")
    parts.router.add(["GET"], one, get, "api gateway get")
    parts.router.add(["PUT"], one, update, "api gateway update")
    parts.router.add(["DELETE"], one, delete, "api gateway delete")
    parts.router.add(["GET"], f"{one}/url/(?P<provider>[^/]+)", url, "api gateway url")
