"""The gateway's settings at work in the request pipeline: ``limits -> cache -> spend -> attempts``.

- ``limits``: the gateway's rate limit (``rate_limiting_limit`` per ``rate_limiting_interval`` seconds,
  ``fixed`` or ``sliding``: 429 with code 2003). Cache hits count against it unless
  ``FeatureOptions.rate_limit_cache_hits`` is off (then the check moves after the cache).
- ``cache``: serves and stores responses by the rules in ``aigw_fakes.state.cache``; a hit answers
  ``cf-aig-cache-status: HIT`` and is logged ``cached`` with zero tokens and cost 0.
- ``spend``: the gateway's spend limits, checked before the request goes upstream against recorded cost
  (429 with code 2045 and the observed message); after the cache, since hits were served live even to a
  spend-blocked user. A request's cost is charged when its response has ended, so a stream in flight is
  never cut.
- ``attempts``: retries a failed attempt (408, 409, 429, 5xx, or a request timeout) by the gateway's
  ``retry_*`` settings and the request's ``cf-aig-max-attempts``/``-retry-delay``/``-backoff``; the number of
  attempts made is the record's ``attempt``. Delays are scaled by the fake's time scale.

Calls that do not go through a gateway pass every stage untouched. Rate windows, spend and cache are per
gateway and are cleared by ``reset()``.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aigw_fakes.gateway.pipeline import GatewayCall, Host, Next, Usage
from aigw_fakes.gateway.retries import RetryPolicy, is_retryable_status, policy_from_headers, run_attempts
from aigw_fakes.parts import FakeParts
from aigw_fakes.state.cache import cache_key, effective_ttl, parse_cache_directives
from aigw_fakes.state.limits import RateLimitTechnique
from aigw_fakes.state.spend import spend_limit_detail
from aigw_fakes.wire.errors import CloudflareError
from aigw_fakes.wire.http import Reply, ReplyResult

__all__ = ["attempts_stage", "cache_stage", "install", "limits_stage", "spend_stage"]

_PER_REQUEST_HEADERS = {
    "cf-aig-cache-status",
    "cf-aig-log-id",
    "cf-aig-request-id",
    "cf-aig-step",
    "cf-aig-event-id",
}


def _check_rate(call: GatewayCall) -> None:
    if call.gateway is None:
        return
    gateway = call.gateway.settings
    rate = call.state.features.rate_limiter.check(
        call.gateway.key,
        limit=gateway.rate_limiting_limit,
        interval=gateway.rate_limiting_interval,
        technique=RateLimitTechnique(gateway.rate_limiting_technique or "fixed"),
        now=call.state.clock.time(),
    )
    if not rate.admitted:
        raise CloudflareError.of("rate_limited")


async def limits_stage(call: GatewayCall, call_next: Next) -> Reply:
    """The rate limit, before the cache (so that cache hits count) unless the options say otherwise."""
    if call.gateway is not None and call.state.features.options.rate_limit_cache_hits:
        _check_rate(call)
    return await call_next(call)


async def spend_stage(call: GatewayCall, call_next: Next) -> Reply:
    """Spend limits, after the cache: live, cache hits were served even to a spend-blocked user."""
    if call.gateway_id is None or call.gateway is None:
        return await call_next(call)
    features = call.state.features
    if not features.options.rate_limit_cache_hits:
        _check_rate(call)
    clock = call.state.clock
    key = call.gateway.key
    limits = call.gateway.settings.spend_limits
    metadata = call.options.metadata
    spend = features.ledger.check(
        limits, provider=call.provider, model=call.model, metadata=metadata, now=clock.time(), scope=key
    )
    if not spend.admitted and spend.rule is not None:
        detail = spend_limit_detail(spend.rule, call.provider, call.model)
        raise CloudflareError.of(features.options.spend_limit_code, detail=detail)
    reply = await call_next(call)
    if limits is not None:
        record = call.record

        def charge(_: ReplyResult) -> None:
            if record is not None and record.cost > 0:
                features.ledger.record(
                    limits,
                    provider=call.provider,
                    model=call.model,
                    metadata=metadata,
                    cost=record.cost,
                    now=clock.time(),
                    scope=key,
                )

        reply.on_close.append(charge)
    return reply


async def cache_stage(call: GatewayCall, call_next: Next) -> Reply:
    if call.gateway_id is None or call.gateway is None:
        return await call_next(call)
    gateway = call.gateway.settings
    scope = call.gateway.key
    features = call.state.features
    options = features.options
    directives = parse_cache_directives(call.request.headers)
    ttl = effective_ttl(
        gateway.cache_ttl,
        directives,
        streaming=call.stream,
        cache_streaming=options.cache_streaming,
        unkeyed_default_ttl=options.binding_unkeyed_cache_ttl if call.host is Host.BINDING else 0,
    )
    if ttl <= 0:
        return await call_next(call)
    key = cache_key(
        account_id=call.account_id,
        gateway_id=call.gateway_id,
        path=f"{call.surface}:{call.provider}/{call.model}",
        body=call.body,
        custom_key=directives.key,
    )
    clock = call.state.clock
    hit = features.cache.lookup(key, clock.time())
    if hit is not None:
        reply = Reply(hit.status, list(hit.headers), hit.body)
        reply.set_header("cf-aig-cache-status", "HIT")
        reply.meta["cached"] = True
        reply.meta["usage"] = Usage(0, 0, None)
        return reply
    reply = await call_next(call)
    reply.set_header("cf-aig-cache-status", "MISS")
    if 200 <= reply.status < 300:
        stored_headers = tuple((k, v) for k, v in reply.headers if k.lower() not in _PER_REQUEST_HEADERS)
        reply.capture = True

        def store(result: ReplyResult) -> None:
            if result.cut or result.disconnected:
                return
            features.cache.store(
                key,
                status=reply.status,
                headers=stored_headers,
                body=result.sent,
                ttl=ttl,
                now=clock.time(),
                provider=call.provider,
                model=call.model,
                scope=scope,
            )

        reply.on_close.append(store)
    return reply


def _failed(reply: Reply) -> bool:
    return bool(reply.meta.get("timeout")) or is_retryable_status(reply.status)


async def attempts_stage(call: GatewayCall, call_next: Next) -> Reply:
    if call.gateway_id is None or call.gateway is None:
        call.attempt = 1
        return await call_next(call)
    gateway = call.gateway.settings
    base = RetryPolicy.from_gateway(gateway.retry_max_attempts, gateway.retry_delay, gateway.retry_backoff)
    policy = policy_from_headers(base, call.request.headers)
    asked = call.options
    features = call.state.features
    scale = call.state.config.time_scale

    async def attempt(number: int) -> Reply:
        call.attempt = number
        if number == policy.max_attempts and number > 1 and features.options.last_attempt_waits:
            call.options = dataclasses.replace(asked, request_timeout_ms=None)
        try:
            return await call_next(call)
        finally:
            call.options = asked

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds * scale)

    attempts = await run_attempts(policy, attempt, is_failure=_failed, sleep=sleep)
    reply = attempts.last
    reply.meta["attempt_statuses"] = [r.status for r in attempts.outcomes]
    return reply


def install(parts: FakeParts) -> None:
    parts.pipeline.replace("limits", limits_stage)
    parts.pipeline.replace("cache", cache_stage)
    parts.pipeline.insert_after("cache", "spend", spend_stage)
    parts.pipeline.replace("attempts", attempts_stage)
