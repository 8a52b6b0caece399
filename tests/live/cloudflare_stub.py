"""A test-side stand-in for the parts of Cloudflare a live run touches, served on loopback.

It answers as the documented contract says (gateway provider-native Workers AI endpoint, token verify,
gateway settings, Logs API with a visibility delay, model search) and as the spike Worker would on the
binding path. It exists because these tests must run without the account; it is deliberately small.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aigw_harness.sse import encode_event

ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid() -> str:
    return "01" + "".join(secrets.choice(ULID_ALPHABET) for _ in range(24))


@dataclass
class StubAccount:
    account_id: str
    api_token: str
    gateway_id: str
    gateway_token: str | None = None
    spike_key: str = "spike-key-0000"
    token_permissions: set[str] = field(default_factory=lambda: {"gateway", "logs", "workers-ai"})
    token_active: bool = True
    collect_logs: bool = True
    log_delay_s: float = 0.05
    tokens: tuple[str, ...] = ("1", " 2", " 3", " 4")
    usage_in_stream: bool = True
    logs: list[dict[str, Any]] = field(default_factory=list)
    visible_at: dict[str, float] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"name": "@cf/meta/llama-3.1-8b-instruct-fp8-fast", "properties": []},
            {"name": "@cf/meta/llama-3.1-8b-instruct-fast", "properties": []},
        ]
    )
    """The account's model list (``ai/models/search`` entries)."""


def _auth_error() -> JSONResponse:
    return JSONResponse(
        {
            "success": False,
            "errors": [{"code": 10000, "message": "Authentication error"}],
            "messages": [],
            "result": None,
        },
        status_code=403,
    )


def build_app(acct: StubAccount) -> Starlette:
    def token_ok(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {acct.api_token}"

    def allowed(request: Request, permission: str) -> bool:
        return token_ok(request) and permission in acct.token_permissions

    async def verify(request: Request) -> Response:
        if not token_ok(request):
            return JSONResponse(
                {
                    "success": False,
                    "errors": [{"code": 1000, "message": "Invalid API Token"}],
                    "result": None,
                },
                status_code=401,
            )
        status = "active" if acct.token_active else "expired"
        return JSONResponse({"success": True, "result": {"id": "t", "status": status}, "errors": []})

    async def gateway(request: Request) -> Response:
        if request.path_params["account"] != acct.account_id or not allowed(request, "gateway"):
            return _auth_error()
        if request.path_params["gw"] != acct.gateway_id:
            return JSONResponse(
                {"success": False, "errors": [{"code": 7002, "message": "Not Found"}]}, status_code=404
            )
        return JSONResponse(
            {
                "success": True,
                "result": {
                    "id": acct.gateway_id,
                    "collect_logs": acct.collect_logs,
                    "authentication": acct.gateway_token is not None,
                },
            }
        )

    def visible(log: dict[str, Any]) -> bool:
        return time.monotonic() >= acct.visible_at[log["id"]]

    async def list_logs(request: Request) -> Response:
        if not allowed(request, "logs"):
            return _auth_error()
        found = [log for log in acct.logs if visible(log)]
        raw = request.query_params.get("filters")
        if raw:
            for item in json.loads(raw):
                if item["key"] == "metadata.value":
                    found = [
                        log for log in found if set(item["value"]) & set((log["metadata"] or {}).values())
                    ]
        return JSONResponse({"success": True, "result": found, "result_info": {"count": len(found)}})

    async def get_log(request: Request) -> Response:
        if not allowed(request, "logs"):
            return _auth_error()
        for log in acct.logs:
            if log["id"] == request.path_params["log_id"] and visible(log):
                return JSONResponse({"success": True, "result": log})
        return JSONResponse(
            {"success": False, "errors": [{"code": 7002, "message": "Log not found"}]}, status_code=404
        )

    async def models(request: Request) -> Response:
        if not allowed(request, "workers-ai"):
            return _auth_error()
        search = request.query_params.get("search", "")
        return JSONResponse({"success": True, "result": [m for m in acct.models if search in m["name"]]})

    def answer(model: str, body: dict[str, Any], metadata: dict[str, Any] | None) -> Response:
        log_id = _ulid()
        prompt_tokens, completion_tokens = 12, len(acct.tokens)
        acct.logs.append(
            {
                "id": log_id,
                "provider": "workers-ai",
                "model": model,
                "status_code": 200,
                "success": True,
                "cached": False,
                "tokens_in": prompt_tokens,
                "tokens_out": completion_tokens,
                "metadata": metadata,
                "created_at": "2026-11-27T00:00:00Z",
            }
        )
        # Logs become readable a while after the response has ended (never before).
        acct.visible_at[log_id] = float("inf")

        def written() -> None:
            acct.visible_at[log_id] = time.monotonic() + acct.log_delay_s

        headers = {"cf-aig-log-id": log_id, "cf-aig-cache-status": "MISS", "cf-aig-step": "0"}
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not body.get("stream"):
            result = {"response": "".join(acct.tokens), "usage": usage}
            written()
            return JSONResponse(
                {"result": result, "success": True, "errors": [], "messages": []}, headers=headers
            )

        async def frames() -> AsyncIterator[bytes]:
            for token in acct.tokens:
                yield encode_event(json.dumps({"response": token, "p": "abc"}))
            yield encode_event(json.dumps({"response": ""}))
            if acct.usage_in_stream:
                yield encode_event(json.dumps({"response": "", "usage": usage}))
            yield encode_event("[DONE]")
            written()

        return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)

    async def run(request: Request) -> Response:
        p = request.path_params
        acct.requests.append({"path": request.url.path, "headers": dict(request.headers)})
        if p["account"] != acct.account_id or not allowed(request, "workers-ai"):
            return _auth_error()
        if (
            acct.gateway_token
            and request.headers.get("cf-aig-authorization") != f"Bearer {acct.gateway_token}"
        ):
            error = {"code": 2009, "message": "Unauthorized"}
            return JSONResponse(
                {
                    "success": False,
                    "result": [],
                    "messages": [],
                    "error": [error],
                    "name": "AiGatewayError",
                    "httpCode": 401,
                    "internalCode": 2009,
                    "message": "Unauthorized",
                },
                status_code=401,
            )
        try:
            body = await request.json()
        except ValueError:
            error = {"code": 8001, "message": "AiError: Invalid input"}
            return JSONResponse(
                {"errors": [error], "success": False, "result": {}, "messages": []}, status_code=400
            )
        metadata = json.loads(request.headers.get("cf-aig-metadata", "null"))
        return answer(p["model"], body, metadata)

    async def worker(request: Request) -> Response:
        """The spike Worker's answer: env.AI.run through the gateway, log id in x-aigw-log-id."""
        if request.headers.get("x-spike-key") != acct.spike_key:
            return JSONResponse({"error": "missing or wrong x-spike-key"}, status_code=401)
        body = await request.json()
        metadata = {k: body[k] for k in ("tenantId", "runId", "probe") if k in body}
        response = answer(body["model"], {"stream": body.get("stream", True)}, metadata)
        response.headers["x-aigw-log-id"] = response.headers["cf-aig-log-id"]
        for name in ("cf-aig-log-id", "cf-aig-cache-status", "cf-aig-step"):
            del response.headers[name]
        return response

    return Starlette(
        routes=[
            Route("/client/v4/user/tokens/verify", verify),
            Route("/client/v4/accounts/{account}/tokens/verify", verify),
            Route("/client/v4/accounts/{account}/ai-gateway/gateways/{gw}", gateway),
            Route("/client/v4/accounts/{account}/ai-gateway/gateways/{gw}/logs", list_logs),
            Route("/client/v4/accounts/{account}/ai-gateway/gateways/{gw}/logs/{log_id}", get_log),
            Route("/client/v4/accounts/{account}/ai/models/search", models),
            Route("/v1/{account}/{gw}/workers-ai/{model:path}", run, methods=["POST"]),
            Route("/worker/run", worker, methods=["POST"]),
        ]
    )
