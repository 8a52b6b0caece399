"""The gateway's response cache: exact-match keys, TTL rules, and a volatile in-memory store.

Rules (Cloudflare's caching page unless noted):
- The key is the account, gateway, path and the request body (JSON compared canonically). Headers, and so
  ``cf-aig-metadata``, are not part of it: live hits were shared across different metadata.
- ``cf-aig-cache-key`` replaces the computed key (within the gateway).
- The TTL is the gateway's ``cache_ttl``, overridden by ``cf-aig-cache-ttl`` (60 s to one month; values
  outside are clamped into it, and 0 disables caching for the request, as the Universal example does).
- With gateway caching off, a request carrying ``cf-aig-cache-key`` is cached for 5 minutes.
- ``cf-aig-skip-cache: true`` neither reads nor writes the cache.
- Streaming responses are not cached by default.
- Only successful (2xx) responses are stored. The cache is volatile: two identical requests in flight at
  once both miss, because a response is stored only when it has completed.
The deprecated ``cf-cache-ttl`` and ``cf-skip-cache`` headers are honoured when the new ones are absent.

Pure logic: the caller passes the time; nothing here reads wall time or knows about HTTP serving.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aigw_fakes.hardened_http import loads_strict

__all__ = [
    "CUSTOM_KEY_DEFAULT_TTL",
    "MAX_TTL",
    "MIN_TTL",
    "CacheDirectives",
    "CachedResponse",
    "ResponseCache",
    "cache_key",
    "effective_ttl",
    "parse_cache_directives",
]

MIN_TTL = 60
MAX_TTL = 30 * 24 * 3600  # one month
CUSTOM_KEY_DEFAULT_TTL = 300


def _truthy(raw: str | None) -> bool | None:
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    return None


@dataclass(frozen=True, slots=True)
class CacheDirectives:
    """What one request asks of the cache; ``None`` means "not said"."""

    skip: bool = False
    ttl: int | None = None
    key: str | None = None


def parse_cache_directives(headers: Mapping[str, str]) -> CacheDirectives:
    """Read the cache headers; ``headers`` must be case-insensitive or lower-cased."""
    skip = _truthy(headers.get("cf-aig-skip-cache"))
    if skip is None:
        skip = _truthy(headers.get("cf-skip-cache"))
    raw_ttl = headers.get("cf-aig-cache-ttl", headers.get("cf-cache-ttl"))
    ttl: int | None = None
    if raw_ttl is not None:
        try:
            ttl = int(float(raw_ttl.strip()))
        except ValueError:
            ttl = None
    key = headers.get("cf-aig-cache-key")
    return CacheDirectives(skip=bool(skip), ttl=ttl, key=key or None)


def effective_ttl(
    gateway_ttl: int | None,
    directives: CacheDirectives,
    *,
    streaming: bool,
    cache_streaming: bool = False,
    unkeyed_default_ttl: int = 0,
) -> int:
    """Seconds to keep this request's response; 0 means "do not cache".

    ``unkeyed_default_ttl`` models the live quirk where binding requests were cached for about 300 s on a
    gateway with caching off; it is 0 (off) unless a caller opts in.
    """
    if directives.skip or (streaming and not cache_streaming):
        return 0
    if directives.ttl is not None:
        if directives.ttl <= 0:
            return 0
        return max(MIN_TTL, min(MAX_TTL, directives.ttl))
    if gateway_ttl:
        return max(0, gateway_ttl)
    if directives.key is not None:
        return CUSTOM_KEY_DEFAULT_TTL
    return unkeyed_default_ttl


def _canonical_body(body: bytes | Any) -> bytes:
    if isinstance(body, bytes | bytearray):
        try:
            parsed = loads_strict(bytes(body))
        except ValueError:
            return bytes(body)
    else:
        parsed = body
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def cache_key(
    *, account_id: str, gateway_id: str, path: str, body: bytes | Any, custom_key: str | None = None
) -> str:
    """The exact-match key for a request; ``body`` is raw bytes or an already parsed JSON value."""
    digest = hashlib.sha256()
    if custom_key is not None:
        parts = [b"custom", account_id.encode(), gateway_id.encode(), custom_key.encode()]
    else:
        parts = [b"exact", account_id.encode(), gateway_id.encode(), path.encode(), _canonical_body(body)]
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stored_at: float
    expires_at: float
    provider: str = ""
    model: str = ""
    scope: str = ""  # the gateway the entry belongs to, for invalidation


class ResponseCache:
    """Key to response, dropping the oldest entry beyond ``max_entries`` (the cache is volatile)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError(f"cache max_entries must be 1 or more, got {max_entries}")
        self._entries: OrderedDict[str, CachedResponse] = OrderedDict()
        self._max_entries = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str, now: float) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.expires_at:
            del self._entries[key]
            return None
        return entry

    def store(
        self,
        key: str,
        *,
        status: int,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        ttl: int,
        now: float,
        provider: str = "",
        model: str = "",
        scope: str = "",
    ) -> bool:
        """Keep a response for ``ttl`` seconds; only 2xx responses with a positive TTL are kept."""
        if ttl <= 0 or not 200 <= status < 300:
            return False
        self._entries.pop(key, None)
        self._entries[key] = CachedResponse(status, headers, body, now, now + ttl, provider, model, scope)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return True

    def invalidate(self, scope: str) -> int:
        """Drop every entry of one gateway (``cache_invalidate_on_update``); returns how many."""
        doomed = [key for key, entry in self._entries.items() if entry.scope == scope]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()
