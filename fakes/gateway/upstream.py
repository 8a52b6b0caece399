"""The ``upstream`` pipeline stage: Workers AI itself, running the scripted behaviour for one attempt.

It validates the input and the model, asks the behaviour controller for this call's outcome, waits the
time to first byte (bounded by ``cf-aig-request-timeout``), then answers: an error from Cloudflare's
tables, a non-streamed body, or a stream of timed writes with the scripted faults. It never raises for
an outcome: errors come back as replies (``reply.meta["error_code"]``, ``reply.meta["timeout"]``) so that a
retry or fallback stage can look at them.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aigw_fakes.behaviour import CallInfo, StreamFaults
from aigw_fakes.gateway.pipeline import GatewayCall, Next, Surface, Usage, error_reply
from aigw_fakes.models.catalogue import Availability, ModelInfo
from aigw_fakes.models.generation import Generation, generate
from aigw_fakes.models.streams import (
    ChatIdentity,
    chat_chunks,
    chat_completion,
    dumps,
    native_frames,
    native_result,
    plain_native_chunks,
    plain_native_writes,
    plan_writes,
    play,
)
from aigw_fakes.state.store import AttemptRecord, RequestRecord
from aigw_fakes.wire.errors import CloudflareError, error_row
from aigw_fakes.wire.http import Reply, ReplyResult
from aigw_fakes.wire.ids import completion_id, request_uuid

__all__ = ["upstream_stage"]

SSE = "text/event-stream"


def _timeout_error(status: int) -> CloudflareError:
    row = error_row("timeout")
    if row is None:
        raise RuntimeError("the Workers AI error table has no 'timeout' row")
    return CloudflareError(row, status=status)


async def upstream_stage(call: GatewayCall, call_next: Next) -> Reply:
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await _attempt(call)
    record = call.record
    if record is not None:
        _record_attempt(call, record, reply, started, loop.time())
    return reply


def _record_attempt(
    call: GatewayCall, record: RequestRecord, reply: Reply, started: float, now: float
) -> None:
    scale = call.state.config.time_scale

    def at(loop_time: float) -> float:  # the fake's clock, moving with uncompressed durations
        return record.created_at + (loop_time - call.started_at) / scale

    attempt = AttemptRecord(
        number=max(call.attempt, 1),
        status=0 if reply.reset else reply.status,
        started_at=at(started),
        ended_at=at(now),
        error_code=reply.meta.get("error_code"),
        behaviour=reply.meta.get("behaviour"),
        timeout=bool(reply.meta.get("timeout")),
    )
    record.attempts.append(attempt)

    def ended(result: ReplyResult) -> None:  # the reply that is written ends when its body does
        attempt.ended_at = at(result.ended_at)
        attempt.cut = result.cut or result.disconnected

    reply.on_close.append(ended)


async def _attempt(call: GatewayCall) -> Reply:
    state = call.state
    rng = random.Random(state.rng.getrandbits(64))
    req_id = request_uuid(rng)
    if call.input_error is not None:
        return _with_id(error_reply(call.input_error), req_id)
    found = _model_for(call)
    if isinstance(found, CloudflareError):
        return _with_id(error_reply(found), req_id)
    model = call.model_info = found
    info = CallInfo(
        call.model,
        call.provider,
        call.gateway_id,
        call.account_id,
        call.request.path,
        call.stream,
        call.body,
        call.request.headers,
    )
    chosen = state.behaviour.choose(info, call.override)
    outcome = chosen.outcome
    scale = state.config.time_scale
    timeout_ms = call.options.request_timeout_ms
    gen = generate(state.seed, call.model, call.body, outcome, model.max_tokens_default)
    waits = outcome.ttfb_ms or (outcome.error is None and not call.stream and outcome.token_delay_ms)
    try:
        if waits:  # a timeout context only where there is something to time
            async with asyncio.timeout(timeout_ms / 1000 * scale if timeout_ms is not None else None):
                if outcome.ttfb_ms:
                    await asyncio.sleep(outcome.ttfb_ms / 1000 * scale)
                if outcome.error is None and not call.stream and outcome.token_delay_ms:
                    await asyncio.sleep(
                        _generation_time(gen, outcome.token_delay_ms, outcome.jitter_ms, rng) * scale
                    )
    except TimeoutError:
        reply = error_reply(_timeout_error(state.config.fidelity.timeout_status))
        reply.meta["timeout"] = True
        reply.meta["behaviour"] = chosen.label
        return _with_id(reply, req_id)
    too_long = _context_window_error(call, model, gen, outcome.error is None)
    if outcome.reset_before_head:
        reply = Reply(0, reset=True)
    elif outcome.raw_response is not None:
        raw = outcome.raw_response
        headers = [("content-type", raw.content_type), *((k.lower(), v) for k, v in raw.headers.items())]
        reply = Reply(raw.status, headers, raw.body_bytes())
        reply.cut_after_bytes = outcome.stream.cut_after_bytes
    elif outcome.error is not None:
        reply = error_reply(outcome.error.to_error(**_error_detail(call, model, gen, req_id)))
        if outcome.error.retry_after is not None:
            reply.set_header("retry-after", str(outcome.error.retry_after))
    elif too_long is not None:
        reply = error_reply(too_long)
    elif call.stream:
        reply = _stream_reply(
            call, model, gen, rng, scale, outcome.token_delay_ms, outcome.jitter_ms, outcome.stream
        )
    else:
        reply = Reply(200, [("content-type", "application/json")], _body(call, model, gen, rng).encode())
        reply.cut_after_bytes = outcome.stream.cut_after_bytes
    if outcome.stall_after_head_ms:
        reply.head_stall = outcome.stall_after_head_ms / 1000 * scale
    if reply.status == 200 and outcome.raw_response is None and not reply.reset:
        neurons = model.neurons(gen.prompt_tokens, gen.completion_tokens)
        reply.meta["usage"] = Usage(gen.prompt_tokens, gen.completion_tokens, neurons)
    reply.meta["behaviour"] = chosen.label
    return _with_id(reply, req_id)


def _max_tokens(call: GatewayCall, model: ModelInfo) -> int:
    asked = call.body.get("max_tokens")
    return asked if isinstance(asked, int) and not isinstance(asked, bool) else model.max_tokens_default


def _error_detail(call: GatewayCall, model: ModelInfo, gen: Generation, req_id: str) -> dict[str, str]:
    """What a scripted error's message may name (``{model}``, ``{detail}``, the context window's figures)."""
    max_tokens = _max_tokens(call, model)
    window = model.context_window or max(1, gen.prompt_tokens + max_tokens - 1)
    return {
        "model": call.model,
        "provider": call.provider,
        "detail": req_id,
        "prompt_tokens": str(gen.prompt_tokens),
        "max_tokens": str(max_tokens),
        "context_window": str(window),
    }


def _context_window_error(
    call: GatewayCall, model: ModelInfo, gen: Generation, applies: bool
) -> CloudflareError | None:
    """The prompt and the requested ``max_tokens`` must fit the model's context window, when known."""
    if not applies or model.context_window is None:
        return None
    max_tokens = _max_tokens(call, model)
    if gen.prompt_tokens + max_tokens <= model.context_window:
        return None
    return CloudflareError.of(
        "context_window_exceeded",
        prompt_tokens=str(gen.prompt_tokens),
        max_tokens=str(max_tokens),
        context_window=str(model.context_window),
    )


def _model_for(call: GatewayCall) -> ModelInfo | CloudflareError:
    """The model that answers at the fake's present date, or the refusal (unknown, retired, plan)."""
    state = call.state
    account = state.account(call.account_id)
    free = account is not None and account.plan == "free"
    if free and call.gateway is not None and call.gateway.settings.workers_ai_billing_mode == "unified":
        free = False  # prepaid credits give the frontier models without Workers Paid (2026-08-06)
    resolved = state.catalogue.resolve(call.model, state.clock.time(), free_plan=free)
    retired = state.config.fidelity.retired_model
    if resolved.availability is Availability.PAID_PLAN:
        return CloudflareError.of("paid_plan_required")
    if resolved.availability is Availability.RETIRED and retired == "invalid_model_id":
        return CloudflareError.of("invalid_model_id")
    if resolved.model is None or (resolved.availability is Availability.RETIRED and retired != "served"):
        if call.request_type == "compat":
            return CloudflareError.of("model_not_found", model=f"{call.provider}/{call.model}")
        return CloudflareError.of("no_such_model", model=call.model)
    return resolved.model


def _with_id(reply: Reply, req_id: str) -> Reply:
    reply.set_header("cf-ai-req-id", req_id)
    return reply


def _generation_time(gen: Generation, delay_ms: float, jitter_ms: float, rng: random.Random) -> float:
    total = 0.0
    for _ in range(max(gen.completion_tokens - 1, 0)):
        total += max(0.0, delay_ms + (rng.uniform(-jitter_ms, jitter_ms) if jitter_ms else 0.0))
    return total / 1000


def _identity(call: GatewayCall, model: ModelInfo, rng: random.Random) -> ChatIdentity:
    return ChatIdentity(completion_id(rng), int(call.state.clock.time()), model.response_model or model.id)


def _body(call: GatewayCall, model: ModelInfo, gen: Generation, rng: random.Random) -> str:
    result: dict[str, Any]
    if call.surface is Surface.OPENAI or model.shape == "chat":
        result = chat_completion(gen, model, _identity(call, model, rng))
    else:
        result = native_result(gen, model)
    if call.surface is Surface.RUN:
        return dumps({"result": result, "success": True, "errors": [], "messages": []})
    return dumps(result)


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _stream_reply(
    call: GatewayCall,
    model: ModelInfo,
    gen: Generation,
    rng: random.Random,
    scale: float,
    delay_ms: float,
    jitter_ms: float,
    faults: StreamFaults,
) -> Reply:
    fidelity = call.state.config.fidelity
    if call.surface is Surface.OPENAI or model.shape == "chat":
        openai = call.surface is Surface.OPENAI
        frames = chat_chunks(
            gen,
            model,
            _identity(call, model, rng),
            faults,
            rng,
            include_usage=_include_usage(call.body),
            chunk_usage=fidelity.chunk_usage,
            pad=fidelity.openai_stream_padding if openai else True,
            cumulative_usage_chunk=openai,
            trailing_native_usage=fidelity.openai_stream_trailing_usage_frame if openai else True,
        )
    elif faults.plain and not (delay_ms or jitter_ms):
        chunks = plain_native_chunks(gen, model, rng)
        return Reply(200, [("content-type", SSE)], chunks=chunks)
    elif faults.plain:
        writes = plain_native_writes(
            gen, model, rng, token_delay=delay_ms / 1000 * scale, jitter=jitter_ms / 1000 * scale
        )
        return Reply(200, [("content-type", SSE)], stream=play(writes))
    else:
        frames = native_frames(gen, model, faults, rng)
    writes = plan_writes(
        frames,
        faults,
        token_delay=delay_ms / 1000 * scale,
        jitter=jitter_ms / 1000 * scale,
        rng=rng,
        scale=scale,
    )
    waits = any(write.delay for write in writes)
    return Reply(200, [("content-type", SSE)], stream=play(writes), stream_waits=waits)
