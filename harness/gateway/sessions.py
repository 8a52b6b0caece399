"""Chat session history, as the platform's session Durable Object keeps it.

Messages ``{role, content, timestamp, tokenCount?}`` per ``{tenantId}:{sessionId}``. An append prunes
messages older than the tenant's retention and keeps the newest ``maxMessagesPerSession``; a history read
returns the newest ``limit`` messages, oldest first (the platform reads newest-first and reverses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aigw_harness.gateway.clock import Clock

__all__ = ["SessionStore", "StoredMessage"]

_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class StoredMessage:
    role: str
    content: str
    timestamp: int
    token_count: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content, "timestamp": self.timestamp}
        if self.token_count is not None:
            out["tokenCount"] = self.token_count
        return out


class SessionStore:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._messages: dict[str, list[StoredMessage]] = {}

    @staticmethod
    def key(tenant_id: str, session_id: str) -> str:
        return f"{tenant_id}:{session_id}"

    def _now(self) -> int:
        return int(self.clock.now() * 1000)

    def _prune(
        self, messages: list[StoredMessage], retention_days: int, max_messages: int
    ) -> list[StoredMessage]:
        cutoff = self._now() - retention_days * _DAY_MS
        kept = sorted((m for m in messages if m.timestamp >= cutoff), key=lambda m: m.timestamp)
        return kept[-max_messages:] if len(kept) > max_messages else kept

    def append(
        self,
        key: str,
        role: str,
        content: str,
        *,
        retention_days: int,
        max_messages: int,
        token_count: int | None = None,
    ) -> None:
        # One prune after the append keeps what pruning before and after it kept: the newest messages
        # inside the retention, the new one among them.
        messages = [*self._messages.get(key, ()), StoredMessage(role, content, self._now(), token_count)]
        self._messages[key] = self._prune(messages, retention_days, max_messages)

    def history(self, key: str, *, limit: int, retention_days: int, max_messages: int) -> list[StoredMessage]:
        messages = self._prune(self._messages.get(key, []), retention_days, max_messages)
        if key in self._messages:
            self._messages[key] = messages
        newest_first = messages[::-1][: max(0, limit)]
        return newest_first[::-1]

    def stored(self, key: str) -> list[StoredMessage]:
        """Every message kept under ``key``, oldest first, as stored (nothing pruned by this read)."""
        return list(self._messages.get(key, []))

    def clear(self, key: str) -> None:
        self._messages.pop(key, None)
