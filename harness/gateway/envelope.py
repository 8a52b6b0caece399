"""The platform's envelopes and error codes, and the raw ASGI writes that carry them.

Success is ``{"ok":true,"data":…,"traceId"?}``, failure ``{"ok":false,"error":{"code","message"},
"traceId"?}``: compact JSON, non-ASCII kept, ``traceId`` left out when there is none, as ``JSON.stringify``
writes them. A failed answer keeps its cause in the code (``ClientError``), inside that same envelope;
``docs/reference-gateway.md`` lists the codes.

Nothing here knows about tenants, models or attempts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from aigw_harness.gateway.upstream import ErrorClass, UpstreamError

__all__ = [
    "AI_ERROR",
    "ClientError",
    "ClientGone",
    "Receive",
    "Scope",
    "Send",
    "client_error",
    "dumps",
    "fail_body",
    "http_refusal",
    "http_refusal_code",
    "ok_body",
    "send_json",
    "write",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_TYPE = (b"content-type", b"application/json")


# One encoder for every call: json.dumps with options builds a new encoder each time, which shows in the
# profile of a stream (one call per token).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> bytes:
    """Compact JSON, non-ASCII kept, as ``JSON.stringify`` writes it."""
    return _ENCODER.encode(value).encode("utf-8")


def with_trace(payload: dict[str, Any], trace_id: str | None) -> dict[str, Any]:
    if trace_id is not None:
        payload["traceId"] = trace_id
    return payload


def ok_body(data: Any, trace_id: str | None) -> bytes:
    return dumps(with_trace({"ok": True, "data": data}, trace_id))


def fail_body(code: str, message: str, trace_id: str | None) -> bytes:
    return dumps(with_trace({"ok": False, "error": {"code": code, "message": message}}, trace_id))


@dataclass(frozen=True, slots=True)
class ClientError:
    """What the client is told when no model answered: the HTTP status of a JSON answer (a stream is
    already 200 and carries the code in its ``error`` event), the code and the message."""

    status: int
    code: str
    message: str


AI_ERROR = ClientError(502, "ai_error", "AI provider unavailable")

# Refusals caused by the request, not by an outage: retrying it unchanged will not help.
_REFUSALS = {
    ErrorClass.CONTENT_FILTER: ClientError(
        400, "ai_content_filtered", "The model's content filter refused the request"
    ),
    ErrorClass.CONTEXT_LENGTH: ClientError(
        400, "ai_context_length_exceeded", "The conversation is too long for the model"
    ),
    ErrorClass.INPUT: ClientError(400, "ai_request_refused", "The model refused the request as invalid"),
}
MODEL_UNAVAILABLE = ClientError(400, "model_unavailable", "Requested model is not available")


def client_error(error: UpstreamError | None, *, requested_model_failed: bool) -> ClientError:
    """The error the client gets for the error that ended its answer.

    A model problem is the client's own mistake only when the model refused is the one it asked for
    (``modelId``); a configured model that is missing is the operator's, an outage to the client."""
    if error is None:
        return AI_ERROR
    refusal = _REFUSALS.get(error.error_class)
    if refusal is not None:
        return refusal
    if requested_model_failed:
        return MODEL_UNAVAILABLE
    return AI_ERROR


# Refusals from the HTTP layer (aigw_fakes.hardened_http) and the body reader, in the platform's codes.
_HTTP_CODES = {
    400: "invalid_request",
    408: "request_timeout",
    413: "payload_too_large",
    431: "request_header_fields_too_large",
}


def http_refusal_code(status: int) -> str:
    return _HTTP_CODES.get(status, "invalid_request")


def http_refusal(status: int, message: str) -> bytes:
    """The platform's failure envelope for a refusal before any route ran (no trace id is known yet)."""
    return fail_body(http_refusal_code(status), message, None)


class ClientGone(Exception):
    """Writing to the client failed: it has gone."""


async def send_json(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON_TYPE, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def write(send: Send, chunk: bytes, *, more: bool = True) -> None:
    try:
        await send({"type": "http.response.body", "body": chunk, "more_body": more})
    except OSError as exc:
        raise ClientGone from exc
