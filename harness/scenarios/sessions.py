"""Reading what a system under test stored in a chat session, whatever the shape it is kept or served in.

Sources, best first: the SUT's own storage (a Worker's Durable Object read through Miniflare, a deployment's
state probe, the reference gateway's store), else its history route, ``GET /chat/{sessionId}/history``.
Both give a document that ``messages_of`` reads into messages, oldest first where the document says which
end is the newest.

The history contract has documented variants, all accepted:

- shape: the messages at ``data.messages`` (the reference gateway: ``{"ok", "data": {"sessionId",
  "messages"}}``), at ``data`` itself (a bare list in the envelope), at ``messages`` or ``history`` (no
  envelope), or the document is the list;
- order: oldest first (the reference gateway, the platform's chat handler) or newest first (the slice the
  platform's session Durable Object returns). Timestamps (``timestamp``, ``createdAt`` or ``ts``) decide
  which; without them the order is ``unknown`` and checks accept either.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from aigw_harness.scenarios.state import check_placeholders
from aigw_harness.scenarios.targets import StoredSession

__all__ = [
    "DEFAULT_SESSION_KEY",
    "DEFAULT_SESSION_NAME",
    "ProbeSessions",
    "RouteSessions",
    "check_session_pattern",
    "entries_document",
    "messages_of",
    "session_name",
    "stored_session",
]

DEFAULT_SESSION_NAME = "{tenant}:{session}"
"""The platform's session Durable Object name: one object per ``{tenantId}:{sessionId}``."""
DEFAULT_SESSION_KEY = "messages"
"""The storage key under which the platform's session object keeps its messages (a list, oldest first)."""

_LIST_PLACES = (("data", "messages"), ("data", "history"), ("data",), ("messages",), ("history",))
_TIME_FIELDS = ("timestamp", "createdAt", "ts")

type Order = Literal["oldest_first", "unknown"]


def session_name(pattern: str, tenant_id: str, session_id: str) -> str:
    """``pattern`` with ``{tenant}`` and ``{session}`` filled in."""
    return pattern.format(tenant=tenant_id, session=session_id)


def check_session_pattern(pattern: str, option: str) -> str:
    """``pattern`` when it uses ``{tenant}`` and ``{session}`` only; a ``ConfigError`` naming ``option``."""
    return check_placeholders(pattern, option, ("tenant", "session"))


def _message_list(document: Any) -> list[Any] | None:
    if isinstance(document, list):
        return document
    for place in _LIST_PLACES:
        current: Any = document
        for key in place:
            current = current.get(key) if isinstance(current, Mapping) else None
        if isinstance(current, list):
            return current
    return None


def _time(message: Mapping[str, Any]) -> float | None:
    for name in _TIME_FIELDS:
        value = message.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def messages_of(document: Any) -> tuple[list[Mapping[str, Any]], Order] | None:
    """The messages a stored value or a history response holds, oldest first when timestamps say which end
    is the newest (``unknown`` otherwise); ``None`` when the document holds no list of messages."""
    found = _message_list(document)
    if found is None or not all(isinstance(m, Mapping) for m in found):
        return None
    messages: list[Mapping[str, Any]] = list(found)
    times = [_time(m) for m in messages]
    known = [t for t in times if t is not None]
    if len(known) != len(messages) or len(set(known)) < 2:
        return messages, "unknown"
    if all(a <= b for a, b in itertools.pairwise(known)):
        return messages, "oldest_first"
    if all(a >= b for a, b in itertools.pairwise(known)):
        return messages[::-1], "oldest_first"
    return messages, "unknown"  # neither order: checks judge it as given, both ways


def stored_session(document: Any, source: str) -> StoredSession:
    """A ``StoredSession`` from what a source gave (``None``: the session was never written)."""
    if document is None:
        return StoredSession(messages=[], source=source)
    read = messages_of(document)
    if read is None:
        shown = json.dumps(document, default=str)[:200]
        raise ValueError(f"{source} holds no list of messages: {shown}")
    messages, order = read
    return StoredSession(messages=messages, source=source, order=order)


def entries_document(entries: Sequence[Sequence[Any]], key: str | None) -> Any:
    """The document of Durable Object storage entries ``[[key, value], ...]``: the value under ``key``, or,
    for a prefix (one message per key, in key order), the list of values."""
    if key is not None:
        return entries[0][1] if entries else None
    return [value for _, value in entries] if entries else None


def _read(response: httpx.Response, source: str) -> StoredSession:
    """A session from a route's or probe's answer: 404 is no session, another error a ``ValueError``."""
    if response.status_code == 404:
        return StoredSession(messages=[], source=f"{source} (404: no session)")
    if response.status_code >= 400:
        raise ValueError(f"{source} answered {response.status_code}: {response.text[:200]}")
    try:
        document = response.json()
    except ValueError:
        raise ValueError(f"{source} answered with a body that is not JSON: {response.text[:200]}") from None
    return stored_session(document, source)


class RouteSessions:
    """``SessionView`` over the SUT's own history route, ``GET /chat/{sessionId}/history`` with the tenant in
    ``x-tenant-id``, in any of the documented shapes and orders."""

    def __init__(self, client: httpx.AsyncClient, chat_url: str) -> None:
        self._client = client
        self._chat_url = chat_url.rstrip("/")

    async def session(self, tenant_id: str, session_id: str) -> StoredSession:
        path = f"/chat/{session_id}/history"
        response = await self._client.get(self._chat_url + path, headers={"x-tenant-id": tenant_id})
        return _read(response, f"the history route GET {path}")


class ProbeSessions:
    """``SessionView`` over a deployment's state probe: ``GET`` a URL with ``{tenant}`` and ``{session}``
    that answers with the session's stored messages (any shape ``messages_of`` reads); 404 is no session."""

    def __init__(self, client: httpx.AsyncClient, pattern: str) -> None:
        self._client = client
        self._pattern = pattern

    async def session(self, tenant_id: str, session_id: str) -> StoredSession:
        url = session_name(self._pattern, tenant_id, session_id)
        return _read(await self._client.get(url), f"the state probe {url}")
