"""Gateway request handling as an explicit pipeline of named stages.

Every model request (gateway host, API host, and the binding and Universal paths) becomes a
``GatewayCall`` and runs through the stages in order::

    record -> authenticate -> limits -> cache -> attempts -> upstream

Each stage is ``async def stage(call, call_next) -> Reply``: it may answer on its own (refuse, serve from
cache), call ``call_next(call)`` once or several times (retries), and inspect or wrap the ``Reply`` it gets
back (store it in a cache, wrap its stream). Stages signal refusals by raising ``CloudflareError``;
``record`` turns that into the error response, so refused requests are logged with their status and
cost 0, and get ``cf-aig-log-id`` like any other.

Stages this module provides:
- ``record``: allocates the log id and the ``RequestRecord``, adds the ``cf-aig-*`` response headers,
  completes the record when the body has been written (tokens, cost, duration, time to first byte);
- ``authenticate``: API tokens (``Authorization``) and gateway authentication (``cf-aig-authorization``);
- ``limits``, ``cache``: pass through until a feature module replaces them;
- ``attempts``: one attempt (``call.attempt = 1``); a retry stage replaces it and calls ``call_next``
  once per attempt, setting ``call.attempt`` each time;
- ``upstream``: runs the scripted model for one attempt (``aigw_fakes.gateway.upstream``), applying
  ``cf-aig-request-timeout`` to the first byte.

The base pipeline is built by ``aigw_fakes.parts.FakeParts.build``. The seam for feature modules:
``parts.pipeline.replace("cache", my_stage)``, ``insert_after(...)``,
``insert_before(...)``. Stages keep per-call scratch data in ``call.extras`` and facts about a reply in
``reply.meta`` (``usage``: a ``Usage``; ``cached``; ``error_code``; ``timeout``: the first byte came too
late; ``behaviour``: the scripted step that answered). ``run(call, start="attempts")`` runs the tail of
the pipeline, for callers (Universal steps) that did the head themselves. ``record`` and ``upstream``
stay first and last.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aigw_fakes.behaviour import Outcome
from aigw_fakes.gateway.metadata import RequestOptions, bearer
from aigw_fakes.models.catalogue import ModelInfo
from aigw_fakes.models.cost import log_cost
from aigw_fakes.state.fake import FakeState
from aigw_fakes.state.gateways import Gateway
from aigw_fakes.state.store import RequestRecord
from aigw_fakes.wire.errors import CloudflareError
from aigw_fakes.wire.http import IncomingRequest, Reply, ReplyResult
from aigw_fakes.wire.ids import request_uuid, ulid, uuid7

__all__ = [
    "GatewayCall",
    "Host",
    "Next",
    "Pipeline",
    "Stage",
    "Surface",
    "Usage",
    "error_reply",
]


class Host(StrEnum):
    """Which Cloudflare host the request came in on; decides error shapes and authentication."""

    GATEWAY = "gateway"  # gateway.ai.cloudflare.com/v1/...
    API = "api"  # api.cloudflare.com/client/v4/...
    BINDING = "binding"  # workers-binding.ai (pre-authenticated)


class Surface(StrEnum):
    """How a model's output is presented."""

    RUN = "run"  # REST envelope {"result": ..., "success": true, ...}; native SSE
    OPENAI = "openai"  # bare chat.completion / chat.completion.chunk
    BINDING = "binding"  # bare result (what env.AI.run returns)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    neurons: float | None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class GatewayCall:
    state: FakeState
    request: IncomingRequest
    host: Host
    surface: Surface
    request_type: str
    account_id: str
    gateway_id: str | None  # None: straight to Workers AI
    provider: str
    model: str
    body: dict[str, Any]
    stream: bool
    options: RequestOptions = field(default_factory=RequestOptions)
    model_info: ModelInfo | None = None
    gateway: Gateway | None = None  # resolved by authenticate
    credential: str | None = None  # the provider credential (Authorization bearer)
    override: Outcome | None = None  # from the x-aigw-behaviour header
    input_error: CloudflareError | None = None  # bad input, answered by Workers AI after authentication
    step: int = 0
    attempt: int = 0
    record: RequestRecord | None = None
    started_at: float = 0.0  # loop time
    extras: dict[str, Any] = field(default_factory=dict)


type Next = Callable[[GatewayCall], Awaitable[Reply]]
type Stage = Callable[[GatewayCall, Next], Awaitable[Reply]]


class Pipeline:
    def __init__(self, stages: list[tuple[str, Stage]]) -> None:
        self._stages = list(stages)
        self._chains: dict[str, Next] = {}  # by start stage; rebuilt after any change

    def names(self) -> list[str]:
        return [name for name, _ in self._stages]

    def stage(self, name: str) -> Stage:
        return self._stages[self._index(name)][1]

    def replace(self, name: str, stage: Stage) -> None:
        self._stages[self._index(name)] = (name, stage)
        self._chains.clear()

    def insert_before(self, anchor: str, name: str, stage: Stage) -> None:
        self._check_new(name)
        self._stages.insert(self._index(anchor), (name, stage))
        self._chains.clear()

    def insert_after(self, anchor: str, name: str, stage: Stage) -> None:
        self._check_new(name)
        self._stages.insert(self._index(anchor) + 1, (name, stage))
        self._chains.clear()

    def _check_new(self, name: str) -> None:
        if name in self.names():
            raise ValueError(f"the pipeline already has a stage named {name!r}")

    def _index(self, name: str) -> int:
        for index, (stage_name, _) in enumerate(self._stages):
            if stage_name == name:
                return index
        raise KeyError(f"no pipeline stage named {name!r}; stages: {', '.join(self.names())}")

    async def run(self, call: GatewayCall, start: str = "record") -> Reply:
        chain = self._chains.get(start)
        if chain is None:
            chain = self._chains[start] = self._chain(start)
        return await chain(call)

    def _chain(self, start: str) -> Next:
        """Each stage bound to the one after it, once: a request then costs no closures of its own."""

        async def past_the_end(call: GatewayCall) -> Reply:
            raise RuntimeError("the last pipeline stage called call_next; nothing comes after it")

        following: Next = past_the_end
        for _, stage in reversed(self._stages[self._index(start) :]):
            following = functools.partial(_step, stage, following)
        return following


def _step(stage: Stage, following: Next, call: GatewayCall) -> Awaitable[Reply]:
    return stage(call, following)


async def pass_through(call: GatewayCall, call_next: Next) -> Reply:
    return await call_next(call)


async def single_attempt(call: GatewayCall, call_next: Next) -> Reply:
    call.attempt = 1
    return await call_next(call)


def error_reply(error: CloudflareError) -> Reply:
    reply = Reply(error.status, [("content-type", error.content_type)], error.body())
    reply.meta["error_code"] = error.code
    return reply


def _authentication_error(call: GatewayCall) -> CloudflareError:
    if call.host is Host.API:
        return CloudflareError.of("authentication_error")
    return CloudflareError.of("unauthorized")


async def authenticate_stage(call: GatewayCall, call_next: Next) -> Reply:
    state = call.state
    account = state.account(call.account_id)
    if account is None:
        raise _authentication_error(call)
    aig_token_valid = call.options.aig_authorization is not None and state.token_valid(
        call.account_id, call.options.aig_authorization
    )
    if call.gateway_id is not None:
        gateway = state.gateway(call.account_id, call.gateway_id)
        if gateway is None:
            raise CloudflareError.of("gateway_not_found")
        call.gateway = gateway
        settings = gateway.settings
        if call.record is not None:
            collect = settings.collect_logs if call.options.collect_log is None else call.options.collect_log
            call.record.logged = collect
            call.record.authentication = aig_token_valid
        if settings.authentication and call.host is Host.GATEWAY and not aig_token_valid:
            raise CloudflareError.of("unauthorized")
    if call.host is Host.BINDING:
        return await call_next(call)
    credential = bearer(call.request.headers.get("authorization"))
    call.credential = credential
    if credential is None and call.host is Host.GATEWAY and aig_token_valid:
        # An authenticated gateway call to Workers AI without a provider key: the gateway token serves.
        return await call_next(call)
    if not state.token_valid(call.account_id, credential):
        raise _authentication_error(call)
    return await call_next(call)


def _secret_free_head(call: GatewayCall) -> dict[str, str]:
    hidden = {"authorization", "cf-aig-authorization", "x-api-key", "cookie"}
    return {k: ("[redacted]" if k in hidden else v) for k, v in call.request.headers.items()}


async def record_stage(call: GatewayCall, call_next: Next) -> Reply:
    state = call.state
    loop = asyncio.get_running_loop()
    call.started_at = loop.time()
    now = state.clock.time()
    if state.config.fidelity.log_ids == "ulid":
        # Before 2026-10-08: ULID log ids, random request ids, event id only when the client set one.
        log_id, gateway_request_id = ulid(now, state.rng), request_uuid(state.rng)
    else:
        log_id = gateway_request_id = uuid7(now, state.rng)
    record = RequestRecord(
        id=log_id,
        created_at=now,
        account_id=call.account_id,
        gateway_id=call.gateway_id,
        provider=call.provider,
        model=call.model,
        path=call.request.path,
        request_type=call.request_type,
        model_type=call.model_info.model_type if call.model_info else None,
        stream=call.stream,
        metadata=call.options.metadata,
        event_id=call.options.event_id,
        request_head=_secret_free_head(call),
        request_body=call.request.body,
        request_content_type=call.request.headers.get("content-type"),
        request_size=len(call.request.body),
        logged=call.options.collect_log is not False,
        log_payload=call.options.collect_log_payload is not False,
    )
    call.record = record
    state.store.add(record)
    try:
        reply = await call_next(call)
    except CloudflareError as error:
        reply = error_reply(error)
    if call.gateway_id is not None:
        gateway_headers = {
            "cf-aig-log-id": log_id,
            "cf-aig-request-id": gateway_request_id,
            "cf-aig-step": str(call.step),
        }
        if reply.header("cf-aig-cache-status") is None:
            gateway_headers["cf-aig-cache-status"] = "MISS"
        if call.options.event_id is not None:
            gateway_headers["cf-aig-event-id"] = call.options.event_id
        elif gateway_request_id == log_id:
            gateway_headers["cf-aig-event-id"] = log_id
        reply.set_headers(gateway_headers)
    record.status_code = reply.status
    record.success = 200 <= reply.status < 300
    record.step = call.step
    record.attempt = max(call.attempt, 1)
    record.cached = bool(reply.meta.get("cached"))
    record.error_code = reply.meta.get("error_code")
    record.behaviour = reply.meta.get("behaviour")
    record.request_id = reply.header("cf-ai-req-id")
    record.response_content_type = reply.header("content-type")
    record.response_head = dict(reply.headers)
    usage: Usage | None = reply.meta.get("usage")
    if usage is not None and record.success:
        record.tokens_in = 0 if record.cached else usage.prompt_tokens
        record.tokens_out = usage.completion_tokens
        record.neurons = None if record.cached else usage.neurons
        info = call.model_info
        cost = log_cost(
            tokens_in=usage.prompt_tokens,
            tokens_out=usage.completion_tokens,
            neurons_per_m_in=info.neurons_per_m_input if info else None,
            neurons_per_m_out=info.neurons_per_m_output if info else None,
            custom=call.options.custom_cost,
            charged=not record.cached,
        )
        record.cost, record.custom_cost = cost.cost or 0.0, cost.custom
    scale = state.config.time_scale

    def complete(result: ReplyResult) -> None:
        record.duration_ms = round((result.ended_at - call.started_at) * 1000 / scale)
        if result.first_byte_at is not None:
            record.ttfb_ms = round((result.first_byte_at - call.started_at) * 1000 / scale)
        record.response_body = result.sent
        record.response_size = len(result.sent)
        record.cut = result.cut or result.disconnected
        record.complete = True

    reply.capture = True
    reply.on_close.append(complete)
    return reply
