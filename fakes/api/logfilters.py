"""The Logs API query language: ``filters``, ``search``, ordering, paging and the deprecated flat parameters.

``filters`` is a JSON array of ``{"key", "operator", "value": [...]}`` sent in the query string (as the
TypeScript SDK and dashboards send it), or the Python SDK's repeated dotted form
(``filters.key=a&filters.operator=eq&filters.value=x&filters.value=y&filters.key=b...``, where each
``filters.key`` starts the next filter). Keys and
operators are those of Cloudflare's API; an unknown one is refused with code 7001 and a message in the
style of the live API (``Invalid enum value. Expected 'id' | 'created_at' | ..., received 'x'``). A filter
matches when any of its values matches (``neq``: when none does); filters combine with AND.
``metadata.key`` and ``metadata.value`` are matched independently, as observed live. ``search`` is free
text matched, case-insensitively, against metadata keys and values, the model, the provider and the ids.

Paging is 1-based; ``per_page`` is 1-50 (default 20; larger values are clamped), ordering defaults to
``created_at`` descending, with arrival order breaking ties. A page past the end is empty, which is how
the SDKs' auto-pagination stops.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aigw_fakes.hardened_http import loads_strict
from aigw_fakes.state.logs import GatewayLog

__all__ = [
    "DELETE_ORDER_KEYS",
    "FILTER_KEYS",
    "LIST_ORDER_KEYS",
    "OPERATORS",
    "LogFilter",
    "LogQuery",
    "LogQueryError",
    "Page",
    "dotted_filters",
    "matches",
    "order_logs",
    "page_logs",
    "parse_filters",
    "parse_log_query",
    "summary_stats",
]

FILTER_KEYS = (
    "id",
    "created_at",
    "request_content_type",
    "response_content_type",
    "request_type",
    "success",
    "cached",
    "provider",
    "model",
    "model_type",
    "cost",
    "tokens",
    "tokens_in",
    "tokens_out",
    "duration",
    "feedback",
    "event_id",
    "metadata.key",
    "metadata.value",
    "authentication",
    "wholesale",
    "compatibilityMode",
    "dlp_action",
    "user_agent",
    "prompts.prompt_id",
    "prompts.version_id",
)
OPERATORS = ("eq", "neq", "contains", "lt", "gt")
LIST_ORDER_KEYS = ("created_at", "provider", "model", "model_type", "success", "cached")
DELETE_ORDER_KEYS = (*LIST_ORDER_KEYS, "cost", "tokens_in", "tokens_out", "duration", "feedback")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 50

type FilterValue = str | float | bool | None


class LogQueryError(ValueError):
    """A query the Logs API refuses; ``code`` is Cloudflare's, ``field`` names the parameter."""

    def __init__(self, message: str, *, field: str, code: int = 7001) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


def _enum_message(allowed: Iterable[str], received: object) -> str:
    expected = " | ".join(f"'{name}'" for name in allowed)
    return f"Invalid enum value. Expected {expected}, received '{received}'"


@dataclass(frozen=True, slots=True)
class LogFilter:
    key: str
    operator: Literal["eq", "neq", "contains", "lt", "gt"]
    values: tuple[FilterValue, ...]


def parse_filters(raw: str | Sequence[Any] | None) -> list[LogFilter]:
    """The ``filters`` parameter (JSON text or an already decoded list)."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            decoded = loads_strict(raw)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise LogQueryError(f"filters: not valid JSON ({reason})", field="filters") from None
    else:
        decoded = raw
    if not isinstance(decoded, list):
        raise LogQueryError("filters: expected a JSON array of {key, operator, value}", field="filters")
    parsed: list[LogFilter] = []
    for index, item in enumerate(decoded):
        where = f"filters[{index}]"
        if not isinstance(item, dict):
            raise LogQueryError(f"{where}: expected an object with key, operator and value", field=where)
        key, operator, value = item.get("key"), item.get("operator"), item.get("value")
        if key not in FILTER_KEYS:
            raise LogQueryError(f"{where}.key: {_enum_message(FILTER_KEYS, key)}", field=f"{where}.key")
        if operator not in OPERATORS:
            raise LogQueryError(
                f"{where}.operator: {_enum_message(OPERATORS, operator)}", field=f"{where}.operator"
            )
        if not isinstance(value, list) or not value:
            raise LogQueryError(
                f"{where}.value: expected a non-empty array of values", field=f"{where}.value"
            )
        for position, element in enumerate(value):
            if element is not None and not isinstance(element, str | int | float | bool):
                raise LogQueryError(
                    f"{where}.value[{position}]: expected a string, number, boolean or null",
                    field=f"{where}.value[{position}]",
                )
        parsed.append(LogFilter(str(key), operator, tuple(value)))
    return parsed


def _parse_time(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int | float):
        return bool(value)
    return None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


_FIELD_KINDS: dict[str, str] = {
    "success": "bool",
    "cached": "bool",
    "authentication": "bool",
    "wholesale": "bool",
    "compatibilityMode": "bool",
    "cost": "number",
    "tokens": "number",
    "tokens_in": "number",
    "tokens_out": "number",
    "duration": "number",
    "feedback": "number",
    "created_at": "time",
}


def _field_values(log: GatewayLog, key: str) -> list[Any]:
    """What a filter key compares against (a list: metadata keys and values are many)."""
    if key == "metadata.key":
        return list((log.metadata or {}).keys())
    if key == "metadata.value":
        return [_text(v) for v in (log.metadata or {}).values()]
    if key == "tokens":
        return [log.tokens]
    if key == "compatibilityMode":
        return [log.path.startswith("compat/") or "/compat/" in log.path]
    if key in ("dlp_action", "prompts.prompt_id", "prompts.version_id"):
        return [None]
    return [getattr(log, key, None)]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _compare(kind: str, operator: str, actual: Any, wanted: FilterValue) -> bool:
    if operator == "contains":
        return wanted is not None and _text(wanted).lower() in _text(actual).lower()
    if kind == "bool":
        want_b, have_b = _as_bool(wanted), _as_bool(actual)
        equal = want_b is not None and have_b == want_b
        return equal if operator == "eq" else (not equal if operator == "neq" else False)
    if kind in ("number", "time"):
        convert = _parse_time if kind == "time" else _as_float
        want_n, have_n = convert(wanted), convert(actual)
        if want_n is None or have_n is None:
            equal = wanted is None and actual is None
            return equal if operator == "eq" else (not equal if operator == "neq" else False)
        if operator == "lt":
            return have_n < want_n
        if operator == "gt":
            return have_n > want_n
        return (have_n == want_n) == (operator == "eq")
    if operator in ("lt", "gt"):
        if actual is None or wanted is None:
            return False
        return _text(actual) < _text(wanted) if operator == "lt" else _text(actual) > _text(wanted)
    equal = (actual is None and wanted is None) or (
        actual is not None and wanted is not None and _text(actual) == _text(wanted)
    )
    return equal if operator == "eq" else not equal


def _filter_matches(log: GatewayLog, flt: LogFilter) -> bool:
    kind = _FIELD_KINDS.get(flt.key, "text")
    actuals = _field_values(log, flt.key)
    if flt.operator == "neq":
        return all(_compare(kind, "neq", a, w) for a in actuals for w in flt.values)
    return any(_compare(kind, flt.operator, a, w) for a in actuals for w in flt.values)


def _search_matches(log: GatewayLog, text: str) -> bool:
    needle = text.lower()
    haystack = [log.id, log.model, log.provider, log.event_id or ""]
    for key, value in (log.metadata or {}).items():
        haystack += [key, _text(value)]
    return any(needle in item.lower() for item in haystack)


@dataclass(frozen=True, slots=True)
class LogQuery:
    filters: tuple[LogFilter, ...] = ()
    search: str | None = None
    start: float | None = None
    end: float | None = None
    order_by: str = "created_at"
    descending: bool = True
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    meta_info: bool = False
    limit: int | None = None  # DELETE only
    extra: tuple[Callable[[GatewayLog], bool], ...] = field(default=(), compare=False)


def matches(log: GatewayLog, query: LogQuery) -> bool:
    if query.start is not None and log.created_at < query.start:
        return False
    if query.end is not None and log.created_at > query.end:
        return False
    if query.search and not _search_matches(log, query.search):
        return False
    if not all(_filter_matches(log, flt) for flt in query.filters):
        return False
    return all(check(log) for check in query.extra)


def _order_value(log: GatewayLog, key: str) -> tuple[int, Any]:
    value = getattr(log, key, None)
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    return (1, value)


def order_logs(logs: Iterable[GatewayLog], query: LogQuery) -> list[GatewayLog]:
    def key(log: GatewayLog) -> tuple[Any, ...]:
        return (_order_value(log, query.order_by), log.created_at, log.sequence)

    return sorted(logs, key=key, reverse=query.descending)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[GatewayLog]
    total_count: int


def page_logs(ordered: Sequence[GatewayLog], query: LogQuery) -> Page:
    start = (query.page - 1) * query.per_page
    return Page(list(ordered[start : start + query.per_page]), len(ordered))


def summary_stats(logs: Sequence[GatewayLog]) -> dict[str, float]:
    """The min/max figures ``meta_info=true`` adds to ``result_info``."""

    def spread(name: str, values: list[float]) -> dict[str, float]:
        return {f"max_{name}": max(values, default=0), f"min_{name}": min(values, default=0)}

    return (
        spread("cost", [log.cost or 0.0 for log in logs])
        | spread("duration", [float(log.duration) for log in logs])
        | spread("tokens_in", [float(log.tokens_in or 0) for log in logs])
        | spread("tokens_out", [float(log.tokens_out or 0) for log in logs])
        | spread("total_tokens", [float(log.tokens) for log in logs])
    )


def _int_param(params: Mapping[str, str], name: str, default: int, low: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise LogQueryError(f"{name}: expected an integer, got {raw!r}", field=name, code=7001) from exc
    if value < low:
        raise LogQueryError(f"{name}: must be {low} or more, got {value}", field=name, code=7001)
    return value


def _bool_param(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = _as_bool(raw)
    if value is None:
        raise LogQueryError(f"{name}: expected true or false, got {raw!r}", field=name)
    return value


def _time_param(params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = _parse_time(raw)
    if value is None:
        raise LogQueryError(f"{name}: expected an ISO-8601 date-time, got {raw!r}", field=name)
    return value


type _Check = Callable[[GatewayLog], bool]


def _equals(name: str, wanted: object) -> _Check:
    return lambda log: getattr(log, name) == wanted


def _flag(name: str, wanted: bool) -> _Check:
    return lambda log: bool(getattr(log, name)) == wanted


def _bound(read: Callable[[GatewayLog], float], limit: float, *, lower: bool) -> _Check:
    return (lambda log: read(log) >= limit) if lower else (lambda log: read(log) <= limit)


_BOUNDED: dict[str, Callable[[GatewayLog], float]] = {
    "cost": lambda log: log.cost or 0.0,
    "duration": lambda log: float(log.duration),
    "tokens_in": lambda log: float(log.tokens_in or 0),
    "tokens_out": lambda log: float(log.tokens_out or 0),
    "total_tokens": lambda log: float(log.tokens),
}


def _flat_filters(params: Mapping[str, str]) -> list[_Check]:
    """The deprecated flat parameters (``provider=``, ``min_cost=``...), as extra predicates."""
    checks: list[_Check] = []
    for name in ("model", "model_type", "provider", "request_content_type", "response_content_type"):
        wanted = params.get(name)
        if wanted:
            checks.append(_equals(name, wanted))
    for name in ("cached", "success"):
        flag = _bool_param(params, name)
        if flag is not None:
            checks.append(_flag(name, flag))
    feedback = params.get("feedback")
    if feedback:
        wanted_feedback = _as_float(feedback)
        checks.append(lambda log: float(log.feedback or 0) == wanted_feedback)
    for name, read in _BOUNDED.items():
        for side in ("min", "max"):
            raw = params.get(f"{side}_{name}")
            if raw is None or raw == "":
                continue
            limit = _as_float(raw)
            if limit is None:
                raise LogQueryError(f"{side}_{name}: expected a number, got {raw!r}", field=f"{side}_{name}")
            checks.append(_bound(read, limit, lower=side == "min"))
    return checks


def dotted_filters(items: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The Python SDK's ``filters.key``/``filters.operator``/``filters.value`` items, grouped per filter."""
    grouped: list[dict[str, Any]] = []
    for name, value in items:
        if name == "filters.key":
            grouped.append({"key": value, "value": []})
        elif name in ("filters.operator", "filters.value"):
            if not grouped:
                raise LogQueryError(f"{name}: comes before any filters.key", field="filters")
            if name == "filters.operator":
                grouped[-1]["operator"] = value
            else:
                grouped[-1]["value"].append(value)
    return grouped


def parse_log_query(
    params: Mapping[str, str], *, items: Iterable[tuple[str, str]] = (), for_delete: bool = False
) -> LogQuery:
    """A list (or delete) query from URL query parameters (``items``: all of them, in order, for the
    dotted filter form); ``LogQueryError`` names the bad parameter."""
    order_keys = DELETE_ORDER_KEYS if for_delete else LIST_ORDER_KEYS
    order_by = params.get("order_by") or "created_at"
    if order_by not in order_keys:
        raise LogQueryError(f"order_by: {_enum_message(order_keys, order_by)}", field="order_by")
    direction = params.get("order_by_direction") or params.get("direction") or "desc"
    if direction not in ("asc", "desc"):
        raise LogQueryError(
            f"order_by_direction: {_enum_message(('asc', 'desc'), direction)}", field="order_by_direction"
        )
    limit = _int_param(params, "limit", 0, 1) if for_delete and params.get("limit") else None
    return LogQuery(
        filters=tuple(parse_filters(params.get("filters") or dotted_filters(items) or None)),
        search=params.get("search") or None,
        start=_time_param(params, "start_date"),
        end=_time_param(params, "end_date"),
        order_by=order_by,
        descending=direction == "desc",
        page=_int_param(params, "page", 1, 1),
        per_page=min(MAX_PER_PAGE, _int_param(params, "per_page", DEFAULT_PER_PAGE, 1)),
        meta_info=bool(_bool_param(params, "meta_info")),
        limit=limit,
        extra=tuple(_flat_filters(params)),
    )
