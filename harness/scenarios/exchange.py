"""One HTTP exchange with the system under test, recorded event by event with timings.

Streams are read as they arrive through ``aigw_harness.sse.SSEDecoder``; each event is stamped with the time
since the request was sent. Timings are stored at the scenario's nominal scale (real milliseconds divided by
the time scale). A client disconnect is simulated by closing the connection after N data events.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from aigw_harness.report.results import EventRecord, Exchange
from aigw_harness.scenarios.model import RequestSpec
from aigw_harness.sse import SSEDecoder

__all__ = ["PreparedRequest", "perform", "prepare"]

_RAW_LIMIT = 16 * 1024
_TEXT_LIMIT = 4 * 1024
# Headers worth keeping as evidence; everything else is noise in a report.
_KEPT_HEADERS = (
    "content-type",
    "cache-control",
    "x-tenant-id",
    "x-trace-id",
    "x-model-id",
    "x-tokens-in",
    "x-tokens-out",
    "x-tokens-total",
    "x-ai-latency-ms",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "cf-aig-log-id",
    "cf-aig-step",
    "retry-after",
)


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    id: str
    step: str
    index: int
    concurrency: int
    method: str
    path: str
    tenant: str | None
    headers: dict[str, str]
    content: bytes | None
    body: Any
    trace_id: str
    disconnect_after_events: int | None
    timeout_s: float


def prepare(
    spec: RequestSpec, *, rid: str, step: str, index: int, concurrency: int, session: str, trace_id: str
) -> PreparedRequest:
    headers = {"x-request-id": trace_id, "x-trace-id": trace_id}
    if spec.tenant is not None:
        headers["x-tenant-id"] = spec.tenant
    body: Any
    if spec.body is not None:
        body = spec.body
    else:
        body = {"sessionId": spec.session or session}
        if spec.new_session:
            body["sessionId"] = str(uuid.UUID(int=random.Random(trace_id).getrandbits(128), version=4))
        body["message"] = "x" * spec.message_chars if spec.message_chars else spec.message
        if spec.model is not None:
            body["modelId"] = spec.model
        if spec.stream is not None:
            body["stream"] = spec.stream
        if spec.user_id is not None:
            body["userId"] = spec.user_id
    content: bytes | None = None
    if spec.method not in ("GET", "DELETE") or spec.body is not None:
        content = body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":")).encode()
        headers["content-type"] = "application/json"
    headers.update(spec.headers)
    return PreparedRequest(
        id=rid,
        step=step,
        index=index,
        concurrency=concurrency,
        method=spec.method,
        path=spec.path,
        tenant=spec.tenant,
        headers=headers,
        content=content,
        body=body if len(json.dumps(body)) <= 2048 else {"omitted": f"{len(json.dumps(body))} characters"},
        trace_id=trace_id,
        disconnect_after_events=spec.disconnect_after_events,
        timeout_s=spec.timeout_s,
    )


async def perform(
    client: httpx.AsyncClient, base_url: str, request: PreparedRequest, *, started: float, time_scale: float
) -> Exchange:
    """Send one request and record the response; never raises for HTTP or transport trouble."""
    scale = 1000.0 / time_scale  # real seconds → nominal milliseconds
    sent = time.perf_counter()
    exchange = Exchange(
        id=request.id,
        step=request.step,
        index=request.index,
        concurrency=request.concurrency,
        method=request.method,
        path=request.path,
        tenant=request.tenant,
        request_body=request.body,
        started_ms=round((sent - started) * scale, 3),
        trace_id=request.trace_id,
    )
    raw = bytearray()
    try:
        async with asyncio.timeout(request.timeout_s):
            async with client.stream(
                request.method,
                base_url.rstrip("/") + request.path,
                content=request.content,
                headers=request.headers,
            ) as response:
                exchange.status = response.status_code
                exchange.headers = {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}
                if response.headers.get("content-type", "").startswith("text/event-stream"):
                    exchange.stream = True
                    await _read_stream(response, exchange, raw, sent, scale, request.disconnect_after_events)
                else:
                    body = await response.aread()
                    _store_body(exchange, body)
    except TimeoutError:
        exchange.timed_out = True
    except httpx.HTTPError as exc:
        exchange.transport_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    exchange.duration_ms = round((time.perf_counter() - sent) * scale, 3)
    if exchange.stream:
        exchange.raw_stream = raw[:_RAW_LIMIT].decode("utf-8", errors="replace")
    first = next((e for e in exchange.events if e.event == "message"), None)
    exchange.ttft_ms = first.t_ms if first else None
    return exchange


async def _read_stream(
    response: httpx.Response,
    exchange: Exchange,
    raw: bytearray,
    sent: float,
    scale: float,
    disconnect_after: int | None,
) -> None:
    decoder = SSEDecoder()
    data_events = 0
    if disconnect_after == 0:
        exchange.disconnected = True
        return
    async for chunk in response.aiter_raw():
        now = round((time.perf_counter() - sent) * scale, 3)
        raw.extend(chunk)
        for event in decoder.feed(chunk):
            exchange.events.append(EventRecord(t_ms=now, event=event.event, data=event.data))
            if event.event == "message":
                data_events += 1
                if disconnect_after is not None and data_events >= disconnect_after:
                    exchange.disconnected = True
                    return  # leaving the context manager closes the connection mid-stream
    now = round((time.perf_counter() - sent) * scale, 3)
    exchange.events.extend(EventRecord(t_ms=now, event=e.event, data=e.data) for e in decoder.flush())


def _store_body(exchange: Exchange, body: bytes) -> None:
    text = body.decode("utf-8", errors="replace")
    try:
        exchange.body_json = json.loads(text) if text else None
    except json.JSONDecodeError:
        exchange.body_text = text[:_TEXT_LIMIT]
    else:
        if exchange.body_json is None and text:
            exchange.body_text = text[:_TEXT_LIMIT]
