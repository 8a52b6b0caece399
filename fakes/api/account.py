"""Account-level API routes a client checks before it spends anything: token verification and model search.

Routes (under ``/client/v4``):
- ``GET /user/tokens/verify`` and ``GET /accounts/{account_id}/tokens/verify``: the bearer token's id and
  ``status`` (``active``); an unknown token is 401 with code 1000 "Invalid API Token", as Cloudflare
  answers. The token id is derived from the token (never the token itself).
- ``GET /accounts/{account_id}/ai/models/search``: the catalogue's models as Workers AI lists them
  (``name``, ``task``, ``properties``), filtered by ``search`` (name contains, case-insensitive) and
  ``task``, paged by ``page``/``per_page``; each model's lifecycle (``aigw_fakes.models.catalogue``) as the
  list's properties: ``planned_deprecation_date`` (its retirement date) and ``require_workers_paid``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from aigw_fakes.api.common import bad_request, envelope, require_token
from aigw_fakes.gateway.metadata import bearer
from aigw_fakes.models.catalogue import ModelInfo
from aigw_fakes.parts import FakeParts
from aigw_fakes.wire.errors import CloudflareError, ErrorRow, ErrorShape
from aigw_fakes.wire.http import IncomingRequest, Reply

__all__ = ["install"]

_INVALID_TOKEN = ErrorRow(1000, 401, "Invalid API Token", ErrorShape.API, "invalid_api_token")
_TASKS = {"text-generation": "Text Generation", "text-embeddings": "Text Embeddings"}


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _verified(token: str) -> Reply:
    return envelope({"id": _token_id(token), "status": "active"})


def _properties(model: ModelInfo, today: date) -> list[dict[str, str]]:
    """The lifecycle as the model list states it: ``planned_deprecation_date``, ``require_workers_paid``."""
    found = []
    if model.retired_on is not None:
        found.append({"property_id": "planned_deprecation_date", "value": model.retired_on.isoformat()})
    if model.paid_plan_from is not None and today >= model.paid_plan_from:
        found.append({"property_id": "require_workers_paid", "value": "true"})
    return found


def install(parts: FakeParts) -> None:
    state = parts.state

    async def verify_user_token(request: IncomingRequest) -> Reply:
        token = bearer(request.headers.get("authorization"))
        if token is None or not any(token in a.api_tokens for a in state.config.accounts):
            raise CloudflareError(_INVALID_TOKEN)
        return _verified(token)

    async def verify_account_token(request: IncomingRequest) -> Reply:
        token = bearer(request.headers.get("authorization"))
        if token is None or not state.token_valid(request.params["account"], token):
            raise CloudflareError(_INVALID_TOKEN)
        return _verified(token)

    async def search_models(request: IncomingRequest) -> Reply:
        require_token(state, request)
        search = (request.query.get("search") or "").lower()
        task = request.query.get("task") or ""
        try:
            page = int(request.query.get("page") or 1)
            per_page = int(request.query.get("per_page") or 50)
        except ValueError:
            raise bad_request(7001, "page and per_page: expected integers") from None
        if page < 1 or per_page < 1:
            raise bad_request(7001, "page and per_page: must be 1 or more")
        rows = []
        today = datetime.fromtimestamp(state.clock.time(), UTC).date()
        for model in sorted(state.catalogue, key=lambda m: m.id):
            task_name = _TASKS.get(model.model_type, model.model_type)
            if model.available_from is not None and today < model.available_from:
                continue  # not published yet
            if search in model.id.lower() and (not task or task == task_name):
                rows.append(
                    {
                        "id": _token_id(model.id),
                        "name": model.id,
                        "description": model.source,
                        "task": {"name": task_name},
                        "properties": _properties(model, today),
                    }
                )
        chosen = rows[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chosen), "total_count": len(rows)}
        return envelope(chosen, result_info=info)

    parts.router.add(["GET"], r"/client/v4/user/tokens/verify", verify_user_token, "api token verify")
    parts.router.add(
        ["GET"],
        r"/client/v4/accounts/(?P<account>[^/]+)/tokens/verify",
        verify_account_token,
        "api token verify",
    )
    parts.router.add(
        ["GET"], r"/client/v4/accounts/(?P<account>[^/]+)/ai/models/search", search_models, "api model search"
    )
