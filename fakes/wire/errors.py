"""Cloudflare's error tables and the three body shapes errors come in.

- Workers AI errors (``WORKERS_AI_ERRORS``) answer in the REST shape,
  ``{"errors":[{"message","code"}],"success":false,"result":{},"messages":[]}``.
- Gateway-originated errors (``GATEWAY_ERRORS``) answer in the ``AiGatewayError`` shape with a singular
  ``error`` key, ``name``, ``httpCode``, ``internalCode``, ``message`` and ``description``.
- The Cloudflare API itself (authentication, routing) answers in the v4 envelope with ``result: null``.

``CloudflareError`` is the exception the fake raises anywhere in request handling; the app turns it into
the response. Messages with a ``{placeholder}`` are filled from ``CloudflareError.detail``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "API_ERRORS",
    "GATEWAY_ERRORS",
    "WORKERS_AI_ERRORS",
    "CloudflareError",
    "ErrorRow",
    "ErrorShape",
    "error_row",
    "http_refusal",
]


class ErrorShape(StrEnum):
    WORKERS_AI = "workers_ai"
    GATEWAY = "gateway"
    API = "api"


@dataclass(frozen=True, slots=True)
class ErrorRow:
    code: int
    status: int
    message: str
    shape: ErrorShape
    name: str  # a short handle usable in behaviour files ("out_of_capacity")


def _rows(shape: ErrorShape, *rows: tuple[str, int, int, str]) -> dict[int, ErrorRow]:
    return {code: ErrorRow(code, status, message, shape, name) for name, code, status, message in rows}


# Workers AI documented codes (workers-ai/platform/errors) and observed extras.
WORKERS_AI_ERRORS = _rows(
    ErrorShape.WORKERS_AI,
    ("no_such_model", 5007, 400, "No such model {model} or task"),
    ("invalid_data", 5004, 400, "Invalid data type for base64 input: {detail}"),
    ("finetune_missing_files", 3039, 400, "Finetune is missing required files"),
    ("incomplete_request", 3003, 400, "Request is missing headers or body: {detail}"),
    ("account_not_allowed_private_model", 5018, 403, "Account is not allowed to access this model"),
    ("private_model_not_allowed", 3041, 403, "Account is not allowed to access this model"),
    ("model_agreement", 5016, 403, "User has not agreed to Llama3.2 model terms"),
    ("account_blocked", 3023, 403, "Service unavailable for account"),
    ("deprecated_sdk_version", 5019, 405, "Request trying to use deprecated SDK version"),
    ("lora_unsupported", 5005, 405, "The model does not support LoRA inference"),
    ("invalid_model_id", 3042, 404, "The model name is invalid"),
    ("request_too_large", 3006, 413, "Request is too large"),
    ("timeout", 3007, 408, "Request timeout"),
    ("aborted", 3008, 408, "Request was aborted"),
    (
        "account_limited",
        3036,
        429,
        "You have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's "
        "Workers Paid plan if you would like to continue usage.",
    ),
    ("out_of_capacity", 3040, 429, "Capacity temporarily exceeded, please try again."),
    ("daily_free_allocation", 4006, 429, "you have used up your daily free allocation of 10,000 neurons"),
    ("paid_plan_required", 5035, 403, "This model requires the Workers Paid plan."),
    ("invalid_input", 8001, 400, "AiError: AiError: Invalid input ({detail})"),
    ("nsfw_prompt", 8007, 400, "AiError: AiError: Input prompt contains NSFW content ({detail})"),
    ("model_execution_failed", 7003, 400, "Model execution failed (User Input Error): {detail}"),
    ("internal_error", 3043, 500, "Internal server error"),
)

# Errors the gateway itself answers (name "AiGatewayError").
GATEWAY_ERRORS = _rows(
    ErrorShape.GATEWAY,
    ("gateway_not_found", 2001, 400, "gateway does not exist"),
    ("rate_limited", 2003, 429, "Rate limited"),
    ("unauthorized", 2009, 401, "Unauthorized"),
    ("insufficient_balance", 2021, 402, "Insufficient balance; add money to your gateway or use BYOK"),
    ("byok_missing", 2040, 400, "Provider '{provider}' has no BYOK credential named '{detail}'"),
    ("spend_limit", 2041, 429, "Spend limit exceeded: {detail}"),
    ("spend_limit_exceeded", 2045, 429, "Spend limit exceeded: {detail}"),
    ("invalid_logs_filter", 7001, 400, "{detail}"),
    ("model_not_found", 7003, 404, "Model not found: {model}"),
    ("invalid_request", 2002, 400, "{detail}"),
)

# The Cloudflare v4 API itself.
API_ERRORS = _rows(
    ErrorShape.API,
    ("authentication_error", 10000, 401, "Authentication error"),
    ("no_route", 7000, 400, "No route for that URI"),
    ("could_not_route", 7003, 400, "Could not route to {path}, perhaps your object identifier is invalid?"),
    ("method_not_allowed", 7001, 405, "Method not allowed"),
    ("invalid_request_headers", 6003, 400, "Invalid request headers"),
)

# Named answers that share a code with a row above. Workers AI documents no error for a prompt longer than
# the model's context window; the fake answers as its observed user-input errors do (code 7003, 400).
_VARIANTS = (
    ErrorRow(
        7003,
        400,
        "Model execution failed (User Input Error): the prompt ({prompt_tokens} tokens) and max_tokens "
        "({max_tokens}) exceed the model's context window of {context_window} tokens",
        ErrorShape.WORKERS_AI,
        "context_window_exceeded",
    ),
)

_BY_NAME = {
    row.name: row for table in (WORKERS_AI_ERRORS, GATEWAY_ERRORS, API_ERRORS) for row in table.values()
} | {row.name: row for row in _VARIANTS}


def error_row(key: int | str) -> ErrorRow | None:
    """Find a row by code or by name; codes shared between tables resolve to Workers AI first."""
    if isinstance(key, str):
        return _BY_NAME.get(key)
    return WORKERS_AI_ERRORS.get(key) or GATEWAY_ERRORS.get(key) or API_ERRORS.get(key)


class _SafeFormat(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class CloudflareError(Exception):
    """An error answer: status, code, message and body shape. ``body`` overrides the built body."""

    def __init__(
        self,
        row: ErrorRow,
        *,
        status: int | None = None,
        message: str | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        detail: Mapping[str, str] | None = None,
    ) -> None:
        self.row = row
        self.status = status or row.status
        self.message = message if message is not None else row.message.format_map(_SafeFormat(detail or {}))
        self.raw_body = body
        self.content_type = content_type
        self.preceding: tuple[
            CloudflareError, ...
        ] = ()  # earlier entries of the same ``errors`` array (API shape only)
        super().__init__(f"{self.status} {row.code}: {self.message}")

    @classmethod
    def of(cls, key: int | str, **detail: str) -> CloudflareError:
        row = error_row(key)
        if row is None:
            raise KeyError(f"no Cloudflare error with code or name {key!r}")
        return cls(row, detail=detail)

    def with_preceding(self, preceding: tuple[CloudflareError, ...]) -> CloudflareError:
        self.preceding = preceding
        return self

    @property
    def code(self) -> int:
        return self.row.code

    def body(self) -> bytes:
        if self.raw_body is not None:
            return self.raw_body
        code, message = self.row.code, self.message
        if self.row.shape is ErrorShape.GATEWAY:
            doc: dict[str, object] = {
                "success": False,
                "result": [],
                "messages": [],
                "error": [{"code": code, "message": message}],
                "name": "AiGatewayError",
                "httpCode": self.status,
                "internalCode": code,
                "message": message,
                "description": message,
            }
        elif self.row.shape is ErrorShape.API:
            errors = [{"code": e.code, "message": e.message} for e in self.preceding]
            errors.append({"code": code, "message": message})
            if code == 10000:  # the observed authentication body leads with result
                doc = {"result": None, "success": False, "errors": errors, "messages": []}
            else:
                doc = {"success": False, "errors": errors, "messages": [], "result": None}
        else:
            doc = {
                "errors": [{"message": message, "code": code}],
                "success": False,
                "result": {},
                "messages": [],
            }
        return json.dumps(doc, separators=(",", ":")).encode()


def http_refusal(status: int, message: str) -> bytes:
    """The body for a request refused below the app (``aigw_fakes.hardened_http``): a body that is too large
    (3006) or too slow (3007) as Workers AI answers them, anything else the HTTP parser refuses in the v4
    envelope (6003), with what was wrong."""
    if status == 413:
        return CloudflareError.of("request_too_large").body()
    if status == 408:
        return CloudflareError.of("timeout").body()
    row = API_ERRORS[6003]
    return CloudflareError(row, status=status, message=f"{row.message}: {message}").body()
