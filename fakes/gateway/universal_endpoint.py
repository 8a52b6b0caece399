"""The Universal endpoint on the fake: ``POST /v1/{account_id}/{gateway_id}`` (and the binding's
``POST /ai-gateway/universal/run/{gateway_id}``, served by ``aigw_fakes.api.binding``).

Each step becomes its own gateway call through the whole request pipeline (authentication, limits, cache,
retries by the step's merged headers, the scripted model), so each step attempt is logged with its
``step`` index, and the answer carries ``cf-aig-step``. Steps are tried in order by
``aigw_fakes.gateway.universal``; which answers count as failures and which answer is returned when all fail
follow ``FeatureOptions.universal_failure`` and ``universal_all_failed``.

Step providers: ``workers-ai`` with ``endpoint`` a model id (native input, REST envelope) or
``v1/chat/completions`` (OpenAI shape, ``model`` in the query). Other providers are answered with a 400
gateway error saying the fake does not serve them, which counts as a failure, so fallback still works.
A step's ``x-aigw-behaviour`` header scripts that step alone.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers

from aigw_fakes.behaviour import Outcome, parse_outcome
from aigw_fakes.datafiles import DataFileError
from aigw_fakes.gateway.metadata import bearer, request_options
from aigw_fakes.gateway.pipeline import GatewayCall, Host, Surface
from aigw_fakes.gateway.universal import (
    AllFailed,
    FailureClass,
    FailurePolicy,
    UniversalError,
    UniversalStep,
    parse_steps,
    run_steps,
)
from aigw_fakes.parts import FakeParts
from aigw_fakes.state.fake import FakeState
from aigw_fakes.wire.errors import CloudflareError
from aigw_fakes.wire.http import IncomingRequest, Reply, ReplyResult
from aigw_fakes.wire.ids import request_uuid

__all__ = ["BEHAVIOUR_HEADER", "close_unsent", "install", "run_universal"]

BEHAVIOUR_HEADER = "x-aigw-behaviour"
_OPENAI_ENDPOINTS = ("v1/chat/completions", "chat/completions")


def close_unsent(reply: Reply) -> None:
    """Finish a reply that will never be written (a failed step), so that its record completes."""
    now = asyncio.get_running_loop().time()
    result = ReplyResult(reply.body, None, now)
    for callback in reply.on_close:
        callback(result)


def _step_call(
    state: FakeState,
    request: IncomingRequest,
    host: Host,
    account_id: str,
    gateway_id: str,
    index: int,
    step: UniversalStep,
    headers: dict[str, str],
    override: Outcome | None,
) -> GatewayCall:
    endpoint = step.endpoint.strip("/")
    query = step.query if isinstance(step.query, dict) else {}
    surface = Surface.OPENAI if endpoint in _OPENAI_ENDPOINTS else Surface.RUN
    model = str(query.get("model", "")) if surface is Surface.OPENAI else endpoint
    input_error: CloudflareError | None = None
    if step.provider != "workers-ai":
        input_error = CloudflareError.of(
            "invalid_request", detail=f"provider '{step.provider}' is not available in this fake gateway"
        )
    elif not isinstance(step.query, dict):
        input_error = CloudflareError.of("invalid_input", detail=request_uuid(state.rng))
    step_request = IncomingRequest(
        method="POST",
        path=f"{request.path.rstrip('/')}/{step.provider}/{endpoint}",
        query=request.query,
        headers=Headers(headers),
        body=request.body,
        params={"account": account_id, "gateway": gateway_id},
        client=request.client,
    )
    return GatewayCall(
        state=state,
        request=step_request,
        host=host,
        surface=surface,
        request_type="universal",
        account_id=account_id,
        gateway_id=gateway_id,
        provider=step.provider,
        model=model,
        body=query,
        stream=query.get("stream") is True,
        options=request_options(step_request.headers, state.config.fidelity.invalid_metadata),
        model_info=state.catalogue.get(model),
        override=override,
        step=index,
        input_error=input_error,
    )


def _override(headers: dict[str, str]) -> Outcome | None:
    raw = headers.get(BEHAVIOUR_HEADER)
    if raw is None:
        return None
    try:
        return parse_outcome(raw)
    except DataFileError as exc:
        raise CloudflareError.of("invalid_request", detail=str(exc)) from None


def _check_gateway(
    state: FakeState, request: IncomingRequest, host: Host, account_id: str, gateway_id: str
) -> None:
    """Refuse an unknown gateway or a missing gateway token before saying what is wrong with the body."""
    gateway = state.gateway(account_id, gateway_id) if state.account(account_id) else None
    if gateway is None:
        raise CloudflareError.of("gateway_not_found")
    token = bearer(request.headers.get("cf-aig-authorization"))
    if host is Host.GATEWAY and gateway.settings.authentication and not state.token_valid(account_id, token):
        raise CloudflareError.of("unauthorized")


async def run_universal(
    parts: FakeParts, request: IncomingRequest, host: Host, account_id: str, gateway_id: str
) -> Reply:
    state = parts.state
    try:
        steps = parse_steps(request.json())
    except (ValueError, UniversalError) as exc:
        _check_gateway(state, request, host, account_id, gateway_id)
        detail = str(exc) if isinstance(exc, UniversalError) else "body: not valid JSON"
        raise CloudflareError.of("invalid_request", detail=detail) from None
    options = state.features.options
    policy = FailurePolicy(FailureClass(options.universal_failure), AllFailed(options.universal_all_failed))
    outer = {name: value for name, value in request.headers.items() if name != "content-length"}
    for step in steps:  # a bad behaviour header is refused before any step runs
        _override({**outer, **{k.lower(): str(v) for k, v in step.headers.items()}})

    async def attempt(index: int, step: UniversalStep, headers: dict[str, str]) -> Reply:
        call = _step_call(
            state, request, host, account_id, gateway_id, index, step, headers, _override(headers)
        )
        return await parts.pipeline.run(call)

    result = await run_steps(steps, outer, attempt, status_of=lambda reply: reply.status, policy=policy)
    for answer in result.answers:
        if answer.outcome is not result.outcome:
            close_unsent(answer.outcome)
    return result.outcome


def install(parts: FakeParts) -> None:
    async def universal(request: IncomingRequest) -> Reply:
        return await run_universal(
            parts, request, Host.GATEWAY, request.params["account"], request.params["gateway"]
        )

    parts.router.add(["POST"], "/v1/(?P<account>[^/]+)/(?P<gateway>[^/]+)/?", universal, "gateway universal")
