"""Reading what a system under test stored: its budget ledger under a key pattern, and the usage figures
stored there. Shared by the targets that read a SUT's state (the Worker's KV, a deployment's state probe).

Knows nothing of how the state is reached; targets fetch the values and hand them here to be read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from aigw_harness.errors import ConfigError

__all__ = ["DEFAULT_LEDGER_KEY", "check_pattern", "check_placeholders", "ledger_key", "parse_usage"]

DEFAULT_LEDGER_KEY = "{tenant}:token-usage:{period}:{date}"
"""The platform's budget keys: ``{tenant}:token-usage:daily:{YYYY-MM-DD}`` and ``...:monthly:{YYYY-MM}``."""


def ledger_key(pattern: str, tenant_id: str, period: Literal["daily", "monthly"], at: datetime) -> str:
    """The KV key of a tenant's usage for the period holding ``at``: ``pattern`` with ``{tenant}``,
    ``{period}``, ``{day}`` (YYYY-MM-DD), ``{month}`` (YYYY-MM) and ``{date}`` (the period's own)."""
    utc = at.astimezone(UTC)
    day, month = utc.strftime("%Y-%m-%d"), utc.strftime("%Y-%m")
    return pattern.format(
        tenant=tenant_id, period=period, day=day, month=month, date=day if period == "daily" else month
    )


def check_placeholders(pattern: str, option: str, placeholders: Sequence[str]) -> str:
    """``pattern`` when ``str.format`` fills it from ``placeholders`` alone; a ``ConfigError`` naming
    ``option`` and the placeholders it may use otherwise."""
    try:
        pattern.format(**dict.fromkeys(placeholders, "x"))
    except (KeyError, IndexError, ValueError) as exc:
        names = [f"{{{name}}}" for name in placeholders]
        allowed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        raise ConfigError(
            f"{option}={pattern!r}: use the placeholders {allowed} only ({exc!r} is not one)"
        ) from None
    return pattern


def check_pattern(pattern: str, option: str = "ledger_key") -> str:
    """A ledger key pattern (``ledger_key``'s placeholders only), or a ``ConfigError`` naming ``option``."""
    return check_placeholders(pattern, option, ("tenant", "period", "day", "month", "date"))


def parse_usage(value: str | None) -> int:
    """A stored usage figure: a decimal string (the platform's), or JSON with a number at the top or in
    ``used``/``total``/``tokens``. Anything else reads as 0, as the platform's own read does."""
    if not value:
        return 0
    try:
        return int(float(value))
    except ValueError:
        pass
    try:
        document = json.loads(value)
    except json.JSONDecodeError:
        return 0
    if isinstance(document, dict):
        for key in ("used", "total", "tokens"):
            if isinstance(document.get(key), (int, float)) and not isinstance(document.get(key), bool):
                return int(document[key])
    return 0
