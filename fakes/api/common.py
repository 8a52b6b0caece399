"""What the Cloudflare v4 management routes (gateways, logs) share: the token check and the envelopes.

Management calls carry ``Authorization: Bearer <API token>``; a missing or unknown token, or an account
the token does not belong to, is answered 401 with code 10000, as the live API does. Successful answers use
the v4 envelope ``{"result", "success": true, "errors": [], "messages": []}``; lists add ``result_info``.
"""

from __future__ import annotations

from typing import Any

from aigw_fakes.gateway.metadata import bearer
from aigw_fakes.state.fake import FakeState
from aigw_fakes.wire.errors import CloudflareError, ErrorRow, ErrorShape
from aigw_fakes.wire.http import IncomingRequest, Reply, json_reply

__all__ = ["API_BASE", "bad_request", "envelope", "not_found", "require_token"]

API_BASE = "/client/v4/accounts/(?P<account>[^/]+)/ai-gateway"


def require_token(state: FakeState, request: IncomingRequest) -> str:
    """The account the request names, once its API token is checked."""
    account_id = request.params["account"]
    if not state.token_valid(account_id, bearer(request.headers.get("authorization"))):
        raise CloudflareError.of("authentication_error")
    return account_id


def envelope(result: Any, status: int = 200, **extra: Any) -> Reply:
    return json_reply(status, {"result": result, "success": True, "errors": [], "messages": [], **extra})


def not_found(code: int, message: str) -> CloudflareError:
    """A 404 in the v4 shape (Cloudflare does not document these codes; messages are the observed ones)."""
    return CloudflareError(ErrorRow(code, 404, message, ErrorShape.API, "not_found"))


def bad_request(code: int, message: str) -> CloudflareError:
    return CloudflareError(ErrorRow(code, 400, message, ErrorShape.API, "bad_request"))
