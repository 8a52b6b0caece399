"""Workers AI endpoints on both hosts; each request becomes a ``GatewayCall`` for the pipeline.

Gateway host (``/v1/{account}/{gateway}/...``):
- ``workers-ai/{model}`` (and ``workers-ai/run/{model}``): native input and output, REST envelope;
- ``workers-ai/v1/chat/completions``: OpenAI chat completions, ``model: "@cf/..."``;
- ``compat/chat/completions``: OpenAI chat completions, ``model: "workers-ai/@cf/..."``.

API host (``/client/v4/accounts/{account}/ai/...``): ``run/{model}`` and ``v1/chat/completions``, through a
gateway when ``cf-aig-gateway-id`` is given, straight to Workers AI otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aigw_fakes.behaviour import parse_outcome
from aigw_fakes.datafiles import DataFileError
from aigw_fakes.gateway.metadata import request_options
from aigw_fakes.gateway.pipeline import GatewayCall, Host, Surface
from aigw_fakes.parts import FakeParts
from aigw_fakes.wire.errors import CloudflareError
from aigw_fakes.wire.http import IncomingRequest, Reply, json_reply
from aigw_fakes.wire.ids import request_uuid

__all__ = ["BEHAVIOUR_HEADER", "install"]

BEHAVIOUR_HEADER = "x-aigw-behaviour"
_ACCOUNT = r"(?P<account>[^/]+)"
_GATEWAY = r"(?P<gateway>[^/]+)"


def install(parts: FakeParts) -> None:
    state, router = parts.state, parts.router

    async def gateway_openai(request: IncomingRequest) -> Reply:
        return await _handle(
            parts, request, Host.GATEWAY, Surface.OPENAI, "workers-ai", request.params["gateway"]
        )

    async def gateway_compat(request: IncomingRequest) -> Reply:
        return await _handle(
            parts, request, Host.GATEWAY, Surface.OPENAI, "compat", request.params["gateway"]
        )

    async def gateway_run(request: IncomingRequest) -> Reply:
        if request.params.get("run") and not state.config.fidelity.accept_run_segment:
            raise CloudflareError.of("no_such_model", model="run/" + request.params["model"])
        return await _handle(
            parts, request, Host.GATEWAY, Surface.RUN, "workers-ai", request.params["gateway"]
        )

    async def api_run(request: IncomingRequest) -> Reply:
        gateway = request.headers.get("cf-aig-gateway-id")
        return await _handle(parts, request, Host.API, Surface.RUN, "workers-ai", gateway)

    async def api_openai(request: IncomingRequest) -> Reply:
        gateway = request.headers.get("cf-aig-gateway-id")
        return await _handle(parts, request, Host.API, Surface.OPENAI, "workers-ai", gateway)

    base = f"/v1/{_ACCOUNT}/{_GATEWAY}"
    router.add(
        ["POST"], f"{base}/workers-ai/v1/chat/completions", gateway_openai, "gateway workers-ai openai"
    )
    router.add(["POST"], f"{base}/compat/chat/completions", gateway_compat, "gateway compat")
    router.add(
        ["POST"], f"{base}/workers-ai/(?P<run>run/)?(?P<model>@.+)", gateway_run, "gateway workers-ai run"
    )
    api = f"/client/v4/accounts/{_ACCOUNT}/ai"
    router.add(["POST"], f"{api}/v1/chat/completions", api_openai, "api openai")
    router.add(["POST"], f"{api}/run/(?P<model>@.+)", api_run, "api run")


def _parse_body(
    request: IncomingRequest, error_id: Callable[[], str]
) -> tuple[dict[str, Any], CloudflareError | None]:
    if not request.body.strip():
        return {}, CloudflareError.of("incomplete_request", detail="body")
    body: Any = None
    if not request.headers.get("content-type", "").startswith("multipart/"):
        try:
            body = request.json()
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return {}, CloudflareError.of("invalid_input", detail=error_id())
    return body, None


def _input_problem(body: dict[str, Any], surface: Surface) -> bool:
    has_prompt = "prompt" in body
    has_messages = "messages" in body
    if surface is Surface.OPENAI:
        if not isinstance(body.get("model"), str):
            return True
        if has_prompt or not has_messages:
            return True
    elif has_prompt == has_messages:  # neither, or both (they are mutually exclusive)
        return True
    if has_prompt and not (isinstance(body["prompt"], str) and body["prompt"]):
        return True
    if has_messages:
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return True
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            return True
    return "stream" in body and not isinstance(body["stream"], bool)


async def _handle(
    parts: FakeParts,
    request: IncomingRequest,
    host: Host,
    surface: Surface,
    request_type: str,
    gateway_id: str | None,
) -> Reply:
    state = parts.state
    override = None
    header = request.headers.get(BEHAVIOUR_HEADER)
    if header is not None:
        try:
            override = parse_outcome(header)
        except DataFileError as exc:
            return json_reply(400, {"success": False, "errors": [{"code": 400, "message": str(exc)}]})
    options = request_options(request.headers, state.config.fidelity.invalid_metadata)

    def error_id() -> str:  # the id Workers AI puts in "Invalid input (<id>)"
        return request_uuid(state.rng)

    body, input_error = _parse_body(request, error_id)
    provider = "workers-ai"
    if surface is Surface.OPENAI:
        model = body.get("model") if isinstance(body.get("model"), str) else ""
        if request_type == "compat":
            provider, _, model = str(model).partition("/")
            if input_error is None and provider != "workers-ai":
                input_error = CloudflareError.of(
                    "invalid_request", detail=f"provider '{provider}' is not available in this fake gateway"
                )
    else:
        model = request.params["model"]
    if input_error is None and _input_problem(body, surface):
        input_error = CloudflareError.of("invalid_input", detail=error_id())
    call = GatewayCall(
        state=state,
        request=request,
        host=host,
        surface=surface,
        request_type=request_type,
        account_id=request.params["account"],
        gateway_id=gateway_id,
        provider=provider,
        model=str(model),
        body=body,
        stream=body.get("stream") is True,
        options=options,
        model_info=state.catalogue.get(str(model)),
        override=override,
        input_error=input_error,
    )
    return await parts.pipeline.run(call)
