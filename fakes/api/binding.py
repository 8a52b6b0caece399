"""The Workers AI binding's wire protocol, served at the fake's root, so that ``env.AI`` can point here.

What the binding (workerd's ``ai-api.ts`` and ``aig-api.ts``) sends to ``https://workers-binding.ai``:
- ``POST /run?version=3`` (no gateway) and ``POST /ai-gateway/run?version=3`` (``options.gateway.id`` set),
  body ``{"inputs": {...}, "options": {...}}``, model in the ``cf-consn-model-id`` header (``prefix:`` too).
  Gateway options travel in the body; they are applied exactly as their ``cf-aig-*`` header equivalents
  (``cacheKey``, ``cacheTtl``, ``skipCache``, ``metadata``, ``collectLog``, ``eventId``, ``requestTimeoutMs``,
  ``retries.{maxAttempts,retryDelayMs,backoff}``). Binding calls are pre-authenticated: gateway
  authentication does not apply.
  Success: the bare result (``{"response": ..., "usage": ...}``, no REST envelope) as ``application/json``,
  or the SSE stream; the ``cf-aig-log-id`` and ``cf-ai-req-id`` headers set ``aiGatewayLogId`` and
  ``lastRequestId``. Errors keep Cloudflare's bodies: gateway errors carry ``internalCode``/``description``
  (thrown as ``"2045: Spend limit exceeded: ..."``), Workers AI errors ``errors[0]`` (``"3040: ..."``).
- ``GET|PATCH /ai-gateway/gateways/{gateway}/logs/{id}``: ``{"result": log}``; 404 with
  ``errors[0].message`` when the log does not exist (yet).
- ``GET /ai-gateway/gateways/{gateway}/url/{provider}``: ``{"result": {"url": ...}}``, a URL on this fake.
- ``POST /ai-gateway/universal/run/{gateway}``: the Universal endpoint
(``aigw_fakes.gateway.universal_endpoint``). The account is the fake's default account.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers

from aigw_fakes.api.common import envelope, not_found
from aigw_fakes.api.gateways import gateway_url
from aigw_fakes.api.logs import LOG_NOT_FOUND, LogReader, patch_record
from aigw_fakes.behaviour import parse_outcome
from aigw_fakes.datafiles import DataFileError
from aigw_fakes.gateway.metadata import request_options
from aigw_fakes.gateway.pipeline import GatewayCall, Host, Surface
from aigw_fakes.gateway.universal_endpoint import BEHAVIOUR_HEADER, run_universal
from aigw_fakes.parts import FakeParts
from aigw_fakes.wire.errors import CloudflareError
from aigw_fakes.wire.http import IncomingRequest, Reply
from aigw_fakes.wire.ids import request_uuid

__all__ = ["binding_headers", "install"]

_GATEWAY_OPTION_HEADERS = {
    "cacheKey": "cf-aig-cache-key",
    "cacheTtl": "cf-aig-cache-ttl",
    "skipCache": "cf-aig-skip-cache",
    "metadata": "cf-aig-metadata",
    "collectLog": "cf-aig-collect-log",
    "eventId": "cf-aig-event-id",
    "requestTimeoutMs": "cf-aig-request-timeout",
}
_RETRY_OPTION_HEADERS = {
    "maxAttempts": "cf-aig-max-attempts",
    "retryDelayMs": "cf-aig-retry-delay",
    "backoff": "cf-aig-backoff",
}


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def binding_headers(incoming: Headers, gateway: dict[str, Any]) -> dict[str, str]:
    """The request's headers plus the ``cf-aig-*`` equivalents of its ``options.gateway`` object."""
    headers = {name: value for name, value in incoming.items() if name != "content-length"}
    for option, header in _GATEWAY_OPTION_HEADERS.items():
        if gateway.get(option) is not None:
            headers[header] = _header_value(gateway[option])
    retries = gateway.get("retries")
    if isinstance(retries, dict):
        for option, header in _RETRY_OPTION_HEADERS.items():
            if retries.get(option) is not None:
                headers[header] = _header_value(retries[option])
    return headers


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _model_id(header: str | None) -> str | None:
    if not header:
        return None
    prefix, sep, rest = header.partition(":")
    # "prefix:model" (AiOptions.prefix); model ids themselves start with "@"
    return rest if sep and not prefix.startswith("@") else header


def _inputs_problem(inputs: Any) -> bool:
    if not isinstance(inputs, dict):
        return True
    has_prompt, has_messages = "prompt" in inputs, "messages" in inputs
    if has_prompt == has_messages:
        return True
    if has_prompt and not (isinstance(inputs["prompt"], str) and inputs["prompt"]):
        return True
    if has_messages and not (isinstance(inputs["messages"], list) and inputs["messages"]):
        return True
    return "stream" in inputs and not isinstance(inputs["stream"], bool)


async def _run(parts: FakeParts, request: IncomingRequest, *, through_gateway: bool) -> Reply:
    state = parts.state
    account_id = state.config.default_account.id
    try:
        document = request.json()
    except ValueError:
        document = None
    error_id = request_uuid(state.rng)
    input_error: CloudflareError | None = None
    if not isinstance(document, dict):
        document, input_error = {}, CloudflareError.of("invalid_input", detail=error_id)
    inputs = document.get("inputs")
    options = _object(document.get("options"))
    gateway = _object(options.get("gateway"))
    gateway_id: str | None = None
    if through_gateway:
        gateway_id = gateway.get("id") if isinstance(gateway.get("id"), str) else None
        if not gateway_id:
            raise CloudflareError.of("invalid_request", detail="options.gateway.id: a gateway id is required")
    model = _model_id(request.headers.get("cf-consn-model-id"))
    if model is None:
        raise CloudflareError.of("incomplete_request", detail="cf-consn-model-id header")
    if input_error is None and _inputs_problem(inputs):
        input_error = CloudflareError.of("invalid_input", detail=error_id)
    headers = Headers(binding_headers(request.headers, gateway))
    override = None
    if headers.get(BEHAVIOUR_HEADER) is not None:
        try:
            override = parse_outcome(headers[BEHAVIOUR_HEADER])
        except DataFileError as exc:
            raise CloudflareError.of("invalid_request", detail=str(exc)) from None
    call_request = IncomingRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=headers,
        body=request.body,
        params={"account": account_id, **({"gateway": gateway_id} if gateway_id else {})},
        client=request.client,
    )
    body = inputs if isinstance(inputs, dict) else {}
    call = GatewayCall(
        state=state,
        request=call_request,
        host=Host.BINDING,
        surface=Surface.BINDING,
        request_type="binding",
        account_id=account_id,
        gateway_id=gateway_id,
        provider="workers-ai",
        model=model,
        body=body,
        stream=body.get("stream") is True,
        options=request_options(headers, state.config.fidelity.invalid_metadata),
        model_info=state.catalogue.get(model),
        override=override,
        input_error=input_error,
    )
    return await parts.pipeline.run(call)


def install(parts: FakeParts) -> None:
    state = parts.state
    reader = LogReader(state)

    def account() -> str:
        return state.config.default_account.id

    async def run(request: IncomingRequest) -> Reply:
        return await _run(parts, request, through_gateway=False)

    async def gateway_run(request: IncomingRequest) -> Reply:
        return await _run(parts, request, through_gateway=True)

    async def get_log(request: IncomingRequest) -> Reply:
        record = reader.find(account(), request.params["gateway"], request.params["log"])
        if record is None:
            raise not_found(7002, LOG_NOT_FOUND)
        return envelope(reader.render(reader.view(record), detail=True))

    async def patch_log(request: IncomingRequest) -> Reply:
        record = reader.find(account(), request.params["gateway"], request.params["log"])
        if record is None:
            raise not_found(7002, LOG_NOT_FOUND)
        try:
            body = request.json()
        except ValueError:
            body = None
        patch_record(record, body)
        return envelope(reader.render(reader.view(record), detail=True))

    async def url(request: IncomingRequest) -> Reply:
        provider = request.params["provider"]
        return envelope({"url": gateway_url(request, account(), request.params["gateway"], provider)})

    async def universal(request: IncomingRequest) -> Reply:
        return await run_universal(parts, request, Host.BINDING, account(), request.params["gateway"])

    gateways = "/ai-gateway/gateways/(?P<gateway>[^/]+)"
    parts.router.add(["POST"], "/run", run, "binding run")
    parts.router.add(["POST"], "/ai-gateway/run", gateway_run, "binding gateway run")
    parts.router.add(["GET"], f"{gateways}/logs/(?P<log>[^/]+)", get_log, "binding log get")
    parts.router.add(["PATCH"], f"{gateways}/logs/(?P<log>[^/]+)", patch_log, "binding log patch")
    parts.router.add(["GET"], f"{gateways}/url/(?P<provider>[^/]+)", url, "binding gateway url")
    parts.router.add(
        ["POST"], "/ai-gateway/universal/run/(?P<gateway>[^/]+)", universal, "binding universal run"
    )
