"""The fake's ASGI application: routes the request, reads its body (bounded in size and time, by
``aigw_fakes.hardened_http``), answers every failure in Cloudflare's shapes, and writes the reply.

One app serves both host shapes: gateway paths under ``/v1/``, API paths under ``/client/v4/``, the
control API under ``/__aigw/`` and whatever feature modules add. An unexpected exception is logged and
answered with a Cloudflare-shaped 500; the server keeps serving.
"""

from __future__ import annotations

import importlib
import logging
from typing import Protocol, cast

from starlette.datastructures import QueryParams
from starlette.types import Receive, Scope, Send

from aigw_fakes.config import FakeConfig
from aigw_fakes.features import FEATURES
from aigw_fakes.gateway.pipeline import error_reply
from aigw_fakes.hardened_http import Disconnected, Refused, check_head, read_body
from aigw_fakes.parts import FakeParts
from aigw_fakes.state.fake import FakeState
from aigw_fakes.wire.errors import CloudflareError, http_refusal
from aigw_fakes.wire.http import IncomingRequest, Reply, RequestHeaders, write_reply

__all__ = ["FakeApp", "build_app"]

logger = logging.getLogger("aigw_fakes")


class _Feature(Protocol):
    def install(self, parts: FakeParts) -> None: ...


class FakeApp:
    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.limits = state.config.limits()
        self.parts = FakeParts.build(state)
        for name in FEATURES:
            cast(_Feature, importlib.import_module(name)).install(self.parts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        reply = await self._answer(scope, receive)
        await write_reply(reply, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> Reply:
        headers = RequestHeaders(scope)
        path: str = scope["path"]
        method: str = scope["method"]
        route, params, other_method = self.parts.router.match(method, path)
        try:
            check_head(scope, self.limits)
            body = await read_body(
                receive,
                self.limits,
                headers.get("content-length"),
                route.max_body_bytes if route is not None else None,
            )
        except Disconnected:
            return Reply(499)
        except Refused as refused:
            if refused.status == 431:
                reply = Reply(431, [("content-type", "application/json")], http_refusal(431, refused.message))
                reply.meta["error_code"] = 6003
                return reply
            if refused.status != 408:
                # The server discards the rest of the body (for at most body_timeout_s).
                return error_reply(CloudflareError.of("request_too_large"))
            reply = error_reply(CloudflareError.of("timeout"))
            reply.set_header("connection", "close")  # the client stalled mid-body: nothing more will come
            return reply
        if route is None:
            if other_method:
                return error_reply(CloudflareError.of("method_not_allowed"))
            preceding = (CloudflareError.of("could_not_route", path=path),)
            return error_reply(CloudflareError.of("no_route").with_preceding(preceding))
        client = scope.get("client")
        request = IncomingRequest(
            method=method,
            path=path,
            query=QueryParams(scope.get("query_string", b"")),
            headers=headers,
            body=body,
            params=params,
            client=f"{client[0]}:{client[1]}" if client else "",
            max_json_depth=self.limits.max_json_depth,
        )
        try:
            return await route.handler(request)
        except CloudflareError as error:
            return error_reply(error)
        except Exception:
            logger.exception("fake gateway: unexpected error answering %s %s", method, path)
            return error_reply(CloudflareError.of("internal_error"))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(config: FakeConfig | None = None) -> FakeApp:
    return FakeApp(FakeState(config))
