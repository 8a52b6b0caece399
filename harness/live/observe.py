"""What a client saw of one AI Gateway response: status, gateway headers, timing, tokens, usage, frames.

The same observation is made of the real gateway, the fake, a replayed cassette or the spike Worker, so
that the spike report and the fidelity comparison read one shape. Frames are decoded with
``aigw_harness.sse``; a frame's *shape* is its sorted top-level keys (``choices|object|usage``), which is what
fidelity compares
(values differ between runs; shapes should not).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aigw_harness.sse import ServerSentEvent, SSEDecoder

__all__ = ["GATEWAY_HEADERS", "Observation", "frame_shape", "observe"]

# The spike Worker hands the binding's ``aiGatewayLogId`` back in this header of its own.
WORKER_LOG_ID_HEADER = "x-aigw-log-id"
GATEWAY_HEADERS = (
    "content-type",
    "cf-aig-log-id",
    "cf-aig-cache-status",
    "cf-aig-step",
    "cf-aig-event-id",
    "cf-aig-request-id",
    "cf-ai-req-id",
    WORKER_LOG_ID_HEADER,
)
"""Response headers an observation keeps (values) — the rest are only listed by name."""


def frame_shape(event: ServerSentEvent) -> str:
    if event.is_done_marker():
        return "[DONE]"
    try:
        payload = json.loads(event.data)
    except ValueError:
        return "<not json>"
    if isinstance(payload, dict):
        return "|".join(sorted(payload))
    return f"<{type(payload).__name__}>"


def _token_text(payload: Mapping[str, Any]) -> str:
    response = payload.get("response")
    if isinstance(response, str):
        return response
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta") or choices[0].get("message") or {}
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            return str(delta["content"])
    return ""


@dataclass
class Observation:
    name: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    header_names: list[str] = field(default_factory=list)
    stream: bool = False
    head_ms: float | None = None
    first_token_ms: float | None = None
    end_ms: float | None = None
    token_events: int = 0
    token_gaps_ms: list[float] = field(default_factory=list)
    text: str = ""
    usage: dict[str, Any] | None = None
    usage_in_stream: bool = False
    done_marker: bool = False
    truncated: bool = False
    frame_shapes: list[str] = field(default_factory=list)
    body: Any = None
    """A JSON (non-stream or error) body, parsed."""
    error: str | None = None
    """A transport error (connection refused, timeout), already redacted by the caller."""

    @property
    def log_id(self) -> str | None:
        return self.headers.get("cf-aig-log-id") or self.headers.get(WORKER_LOG_ID_HEADER)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "headers": dict(self.headers),
            "header_names": list(self.header_names),
            "stream": self.stream,
            "head_ms": self.head_ms,
            "first_token_ms": self.first_token_ms,
            "end_ms": self.end_ms,
            "token_events": self.token_events,
            "token_gaps_ms": list(self.token_gaps_ms),
            "text": self.text,
            "usage": self.usage,
            "usage_in_stream": self.usage_in_stream,
            "done_marker": self.done_marker,
            "truncated": self.truncated,
            "frame_shapes": list(self.frame_shapes),
            "body": self.body,
            "error": self.error,
        }


async def observe(
    name: str,
    status: int,
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes],
    *,
    started: float,
    clock: Callable[[], float] = time.monotonic,
) -> Observation:
    """Read a response body to the end and describe it; times are ms after ``started`` on ``clock``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    obs = Observation(
        name=name,
        status=status,
        headers={k: lowered[k] for k in GATEWAY_HEADERS if k in lowered},
        header_names=sorted(lowered),
        head_ms=(clock() - started) * 1000.0,
    )
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    obs.stream = content_type == "text/event-stream"
    if not obs.stream:
        raw = b"".join([chunk async for chunk in chunks])
        obs.end_ms = (clock() - started) * 1000.0
        _read_json_body(obs, raw)
        return obs
    decoder = SSEDecoder()
    last_token: float | None = None
    async for chunk in chunks:
        now = (clock() - started) * 1000.0
        for event in decoder.feed(chunk):
            last_token = _read_event(obs, event, now, last_token)
    for event in decoder.flush():
        last_token = _read_event(obs, event, (clock() - started) * 1000.0, last_token)
    obs.truncated = decoder.truncated or not obs.done_marker
    obs.end_ms = (clock() - started) * 1000.0
    return obs


def _read_json_body(obs: Observation, raw: bytes) -> None:
    try:
        obs.body = json.loads(raw) if raw else None
    except ValueError:
        obs.body = raw.decode("utf-8", "replace")
        return
    if not isinstance(obs.body, dict):
        return
    result = obs.body.get("result", obs.body)
    if isinstance(result, dict):
        obs.text = _token_text(result)
        usage = result.get("usage")
        if isinstance(usage, dict):
            obs.usage = usage


def _read_event(
    obs: Observation, event: ServerSentEvent, now: float, last_token: float | None
) -> float | None:
    obs.frame_shapes.append(frame_shape(event))
    if event.is_done_marker():
        obs.done_marker = True
        return last_token
    try:
        payload = json.loads(event.data)
    except ValueError:
        return last_token
    if not isinstance(payload, dict):
        return last_token
    usage = payload.get("usage")
    if isinstance(usage, dict):
        obs.usage_in_stream = True
        # A trailing native-format usage frame is cumulative; per-chunk usage is incremental: keep the last
        # native one when there is one, else the last seen.
        if "response" in payload or obs.usage is None:
            obs.usage = usage
    text = _token_text(payload)
    if not text:
        return last_token
    obs.text += text
    obs.token_events += 1
    if obs.first_token_ms is None:
        obs.first_token_ms = now
    elif last_token is not None:
        obs.token_gaps_ms.append(now - last_token)
    return now
