"""Evaluating expectations on responses and checks across a run, each with the evidence it rests on.

A failed check names the requests it saw fail (first) and what was observed; a passing one names the
requests it covered. Nothing here performs I/O: the runner gathers the observations (exchanges, upstream
calls, log records, usage records, ledger figures) and hands them in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aigw_harness import stream_contract
from aigw_harness.report.results import CheckResult, CheckStatus, Exchange, Measurement
from aigw_harness.scenarios.model import (
    AgreementCheck,
    Expect,
    LogsCheck,
    Match,
    MetricsCheck,
    SseExpect,
    UpstreamCallsCheck,
)
from aigw_harness.scenarios.targets import GatewayLogRecord, UpstreamCall, UsageRecord

__all__ = [
    "Observations",
    "agreement_check",
    "check_result",
    "expectation_checks",
    "get_path",
    "json_short",
    "logs_check",
    "match",
    "measurement_check",
    "metrics_check",
    "upstream_calls_check",
]

_MISSING = object()


def get_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``error.code``, ``choices.0.delta``), or ``_MISSING``."""
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def match(condition: Match, value: Any) -> str | None:
    """``None`` when ``value`` satisfies ``condition``; otherwise why not, in a few words."""
    present = value is not _MISSING and value is not None
    shown = "absent" if value is _MISSING else json.dumps(value, ensure_ascii=False, default=str)
    if condition.present is not None and condition.present != present:
        return f"expected {'present' if condition.present else 'absent'}, got {shown}"
    if "equals" in condition.model_fields_set and not _equal(condition.equals, value):
        return f"expected {condition.equals!r}, got {shown}"
    if condition.one_of is not None and not any(_equal(option, value) for option in condition.one_of):
        return f"expected one of {condition.one_of!r}, got {shown}"
    if condition.regex is not None and not (isinstance(value, str) and re.search(condition.regex, value)):
        return f"expected to match /{condition.regex}/, got {shown}"
    if condition.contains is not None and not (isinstance(value, str) and condition.contains in value):
        return f"expected to contain {condition.contains!r}, got {shown}"
    if condition.min is not None or condition.max is not None:
        number = _number(value)
        if number is None:
            return f"expected a number, got {shown}"
        if condition.min is not None and number < condition.min:
            return f"expected >= {condition.min:g}, got {number:g}"
        if condition.max is not None and number > condition.max:
            return f"expected <= {condition.max:g}, got {number:g}"
    return None


def _equal(expected: Any, value: Any) -> bool:
    if value is _MISSING:
        return False
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and isinstance(value, str):
        return _number(value) == expected  # header values are strings
    return bool(expected == value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def json_short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse(data: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return _MISSING


# --- per-response observations -------------------------------------------------------------------------

type Observer = Callable[[Exchange], tuple[str | None, Any]]
"""An exchange → (why it fails or None, the observed value)."""


def _sse_observers(sse: SseExpect) -> list[tuple[str, str, Observer]]:
    out: list[tuple[str, str, Observer]] = []

    def data_events(e: Exchange) -> list[Any]:
        return [ev for ev in e.events if ev.event == "message"]

    if sse.data_events is not None:
        count_condition = sse.data_events
        out.append(
            (
                "sse.data_events",
                f"data events {count_condition.describe()}",
                lambda e: (match(count_condition, len(data_events(e))), len(data_events(e))),
            )
        )
    if sse.terminal_done is not None:
        out.append(_contract("sse.terminal_done", "exactly one done event, and it is last", "terminal-done",
                             sse.terminal_done))  # fmt: skip
    if sse.nothing_after_done is not None:
        out.append(_contract("sse.nothing_after_done", "nothing after the done event", "after-done"))
    if sse.error_event is not None:
        wanted_error = sse.error_event

        def error_event(e: Exchange) -> tuple[str | None, Any]:
            seen = any(ev.event == "error" for ev in e.events)
            return (None if seen == wanted_error else ("an error event" if seen else "no error event"), seen)

        out.append(("sse.error_event", "an error event" if wanted_error else "no error event", error_event))
    for path, condition in (sse.data or {}).items():
        out.append(_data_field(path, condition))
    for name, fields in (("error", sse.error), ("done", sse.done)):
        for path, condition in (fields or {}).items():
            out.append(_event_field(name, path, condition))
    if sse.content is not None:
        content_condition = sse.content

        def content(e: Exchange) -> tuple[str | None, Any]:
            text = "".join(
                str(get_path(_parse(ev.data), "content"))
                for ev in data_events(e)
                if get_path(_parse(ev.data), "content") is not _MISSING
            )
            return (match(content_condition, text), text)

        out.append(("sse.content", f"content {content_condition.describe()}", content))
    if sse.events_json is not None:
        out.append(_contract("sse.events_json", "every event's data is compact JSON", "json"))
    if sse.progressive is not None:

        def progressive(e: Exchange) -> tuple[str | None, Any]:
            times = [ev.t_ms for ev in data_events(e)]
            if len(times) < 3 or times[-1] <= 0:
                return (f"only {len(times)} data events", len(times))
            # Events read together share a timestamp: a buffered stream arrives in one or two reads.
            reads = len(set(times))
            spread = (times[-1] - times[0]) / times[-1]
            observed = {"first_ms": times[0], "last_ms": times[-1], "reads": reads, "events": len(times)}
            ok = reads >= max(3, math.ceil(len(times) / 4)) and spread >= 0.1
            return (None if ok else f"tokens arrived together: {observed}", observed)

        out.append(
            (
                "sse.progressive",
                "data events arrive over time in many reads, not buffered together",
                progressive,
            )
        )
    if sse.framing is not None:
        out.append(
            _contract("sse.framing", "data:/event: fields only, blank line after each event", "framing")
        )
    return out


def _contract(key: str, description: str, rule: str, wanted: bool = True) -> tuple[str, str, Observer]:
    """An expectation that is one rule of the stream contract (``aigw_harness.stream_contract``); ``wanted``
    False expects the rule to be broken."""
    check = stream_contract.RULES[rule]

    def observe(e: Exchange) -> tuple[str | None, Any]:
        violations = check(stream_contract.exchange_record(e))
        shape = stream_contract.event_sequence(event.event for event in e.events)
        observed = [v.message for v in violations] or shape
        if bool(violations) != wanted:
            return (None, observed)
        return ("; ".join(observed) if violations else f"{rule} holds", observed)

    return (key, description, observe)


def _event_field(name: str, path: str, condition: Match) -> tuple[str, str, Observer]:
    def observe(e: Exchange) -> tuple[str | None, Any]:
        event = next((ev for ev in e.events if ev.event == name), None)
        value = get_path(_parse(event.data), path) if event else _MISSING
        shown = None if value is _MISSING else value
        return (match(condition, value), shown)

    return (f"sse.{name}.{path}", f"{name} event {path} {condition.describe()}", observe)


def _data_field(path: str, condition: Match) -> tuple[str, str, Observer]:
    def observe(e: Exchange) -> tuple[str | None, Any]:
        seen: list[Any] = []
        for ev in e.events:
            if ev.event != "message":
                continue
            value = get_path(_parse(ev.data), path)
            why = match(condition, value)
            if why is not None:
                return (f"data event: {why}", None if value is _MISSING else value)
            if value not in seen:
                seen.append(value)
        return (None, seen[0] if len(seen) == 1 else seen[:5])

    return (f"sse.data.{path}", f"every data event's {path} {condition.describe()}", observe)


def _response_observers(expect: Expect) -> list[tuple[str, str, Observer]]:
    out: list[tuple[str, str, Observer]] = []
    if expect.status is not None:
        status = expect.status
        out.append(
            ("status", f"status {status.describe()}", lambda e: (match(status, _status(e)), _status(e)))
        )
    if expect.content_type is not None:
        ct = expect.content_type
        out.append(
            (
                "content_type",
                f"content-type {ct.describe()}",
                lambda e: (match(ct, e.headers.get("content-type", _MISSING)), e.headers.get("content-type")),
            )
        )
    for header, condition in (expect.headers or {}).items():
        out.append(_header(header.lower(), condition))
    for path, condition in (expect.json_body or {}).items():
        out.append(_json_field(path, condition))
    if expect.sse is not None:
        out.extend(_sse_observers(expect.sse))
    if expect.ttft_ms is not None:
        ttft = expect.ttft_ms
        out.append(
            (
                "ttft_ms",
                f"time to first token {ttft.describe()} ms",
                lambda e: (match(ttft, e.ttft_ms if e.ttft_ms is not None else _MISSING), e.ttft_ms),
            )
        )
    if expect.duration_ms is not None:
        duration = expect.duration_ms
        out.append(
            (
                "duration_ms",
                f"duration {duration.describe()} ms",
                lambda e: (match(duration, e.duration_ms), e.duration_ms),
            )
        )
    return out


def _status(e: Exchange) -> Any:
    return e.status if e.status is not None else _MISSING


def _header(name: str, condition: Match) -> tuple[str, str, Observer]:
    return (
        f"headers.{name}",
        f"header {name} {condition.describe()}",
        lambda e: (match(condition, e.headers.get(name, _MISSING)), e.headers.get(name)),
    )


def _json_field(path: str, condition: Match) -> tuple[str, str, Observer]:
    def observe(e: Exchange) -> tuple[str | None, Any]:
        value = get_path(e.body_json, path) if e.body_json is not None else _MISSING
        return (match(condition, value), None if value is _MISSING else value)

    return (f"json.{path}", f"body {path} {condition.describe()}", observe)


def expectation_checks(step: str, expect: Expect, exchanges: Sequence[Exchange]) -> list[CheckResult]:
    """One check per expectation of a step, over every response the step received."""
    results: list[CheckResult] = []
    for key, description, observe in _response_observers(expect):
        failures: list[tuple[Exchange, str, Any]] = []
        observed: list[Any] = []
        for exchange in exchanges:
            if exchange.transport_error or exchange.timed_out:
                why = exchange.transport_error or "timed out"
                failures.append((exchange, f"no complete response: {why}", None))
                continue
            reason, value = observe(exchange)
            observed.append(value)
            if reason is not None:
                failures.append((exchange, reason, value))
        log_ids = [lid for e in exchanges for lid in e.log_ids]
        if failures:
            first_exchange, first_reason, first_value = failures[0]
            failing = [f[0].id for f in failures]
            reason = f"{len(failures)} of {len(exchanges)} responses: {first_exchange.id} {first_reason}"
            results.append(
                CheckResult(
                    id=f"{step}.{key}",
                    step=step,
                    kind="expect",
                    description=description,
                    status=CheckStatus.FAILED,
                    expected=description,
                    observed=first_value,
                    reason=reason,
                    exchanges=failing + [e.id for e in exchanges if e.id not in failing],
                    log_ids=log_ids,
                )
            )
        else:
            distinct = _distinct(observed)
            results.append(
                CheckResult(
                    id=f"{step}.{key}",
                    step=step,
                    kind="expect",
                    description=description,
                    status=CheckStatus.PASSED,
                    expected=description,
                    observed=distinct[0] if len(distinct) == 1 else distinct,
                    exchanges=[e.id for e in exchanges],
                    log_ids=log_ids,
                )
            )
    return results


def _distinct(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
        if len(out) >= 5:
            break
    return out


# --- checks across the run ------------------------------------------------------------------------------


@dataclass(slots=True)
class Observations:
    """What the runner gathered from the system under test after the steps."""

    exchanges: list[Exchange]
    upstream: list[UpstreamCall] | None = None
    logs: list[GatewayLogRecord] | None = None
    metrics: list[UsageRecord] | None = None
    by_trace: dict[str, list[UpstreamCall]] = field(default_factory=dict)


def check_result(
    check_id: str,
    kind: str,
    description: str,
    problems: list[str],
    expected: str,
    observed: Any,
    *,
    shown: int = 3,
    **kw: Any,
) -> CheckResult:
    """A check that failed when it found problems; its reason names the first ``shown`` of them."""
    return CheckResult(
        id=check_id,
        kind=kind,
        description=description,
        status=CheckStatus.FAILED if problems else CheckStatus.PASSED,
        expected=expected,
        observed=observed,
        reason="; ".join(problems[:shown])
        + (f" (and {len(problems) - shown} more)" if len(problems) > shown else ""),
        **kw,
    )


def upstream_calls_check(
    check_id: str, description: str, spec: UpstreamCallsCheck, calls: list[UpstreamCall]
) -> CheckResult:
    problems: list[str] = []
    expected: list[str] = []
    models = [c.model or "" for c in calls]
    statuses = [c.status for c in calls]
    if spec.count is not None:
        expected.append(f"count {spec.count.describe()}")
        if (why := match(spec.count, len(calls))) is not None:
            problems.append(f"count: {why}")
    if spec.models is not None:
        wanted = (
            "["
            + ", ".join(
                repr(m) if isinstance(m, str) else m.describe().removeprefix("== ") for m in spec.models
            )
            + "]"
        )
        expected.append(f"models {wanted}")
        if len(models) != len(spec.models) or any(
            (model != m) if isinstance(m, str) else match(m, model) is not None
            for model, m in zip(models, spec.models, strict=False)
        ):
            problems.append(f"models: expected {wanted}, got {models}")
    if spec.statuses is not None:
        expected.append(f"statuses {spec.statuses}")
        if statuses != spec.statuses:
            problems.append(f"statuses: expected {spec.statuses}, got {statuses}")
    if spec.cut is not None:
        cuts = [c.cut for c in calls]
        expected.append(f"cut {spec.cut}")
        if cuts != spec.cut:
            problems.append(f"cut: expected {spec.cut}, got {cuts}")
    if spec.gateway_id is not None:
        expected.append(f"every call's gateway {spec.gateway_id.describe()}")
        problems.extend(
            f"call {c.id} gateway: {why}"
            for c in calls
            if (why := match(spec.gateway_id, c.gateway_id)) is not None
        )
    for key, condition in (spec.metadata or {}).items():
        expected.append(f"every call's metadata.{key} {condition.describe()}")
        problems.extend(
            f"call {c.id} metadata.{key}: {why}"
            for c in calls
            if (why := match(condition, get_path(dict(c.metadata), key))) is not None
        )
    if spec.metadata_entries is not None:
        entries = spec.metadata_entries
        expected.append(f"every call's metadata entries {entries.describe()}")
        problems.extend(
            f"call {c.id} metadata entries: {why}"
            for c in calls
            if (why := match(entries, len(c.metadata))) is not None
        )
    return check_result(
        check_id,
        "upstream_calls",
        description,
        problems,
        "; ".join(expected),
        {
            "count": len(calls),
            "models": models,
            "statuses": statuses,
            "gateways": sorted({c.gateway_id or "" for c in calls}),
            "metadata": dict(calls[0].metadata) if calls else None,
        },
        log_ids=[c.log_id for c in calls if c.log_id],
    )


def logs_check(
    check_id: str, description: str, spec: LogsCheck, records: list[GatewayLogRecord]
) -> CheckResult:
    problems: list[str] = []
    expected: list[str] = []
    if spec.count is not None:
        expected.append(f"count {spec.count.describe()}")
        if (why := match(spec.count, len(records))) is not None:
            problems.append(f"count: {why}")
    selected = [
        r
        for r in records
        if all(
            match(condition, getattr(r, key, _MISSING)) is None
            for key, condition in (spec.where or {}).items()
        )
    ]
    if spec.where:
        expected.append(
            "among records with " + ", ".join(f"{k} {c.describe()}" for k, c in spec.where.items())
        )
    conditions: list[tuple[str, Match]] = []
    if spec.gateway_id is not None:
        conditions.append(("gateway_id", spec.gateway_id))
    conditions.extend((f"metadata.{key}", condition) for key, condition in (spec.metadata or {}).items())
    conditions.extend((key, condition) for key, condition in (spec.fields or {}).items())
    for name, condition in conditions:
        expected.append(f"every record's {name} {condition.describe()}")
        for record in selected:
            if name.startswith("metadata."):
                value = get_path(dict(record.metadata), name.removeprefix("metadata."))
            else:
                value = getattr(record, name, _MISSING)
            if (why := match(condition, value)) is not None:
                problems.append(f"log {record.id} {name}: {why}")
    observed = [
        {"id": r.id, "gateway_id": r.gateway_id, "model": r.model, "status_code": r.status_code,
         "tokens_in": r.tokens_in, "tokens_out": r.tokens_out, "metadata": dict(r.metadata)}
        for r in records[:5]
    ]  # fmt: skip
    return check_result(
        check_id,
        "logs",
        description,
        problems,
        "; ".join(expected),
        {"count": len(records), "first": observed},
        log_ids=[r.id for r in records],
    )


def metrics_check(
    check_id: str, description: str, spec: MetricsCheck, records: list[UsageRecord]
) -> CheckResult:
    problems: list[str] = []
    expected: list[str] = []
    if spec.count is not None:
        expected.append(f"count {spec.count.describe()}")
        if (why := match(spec.count, len(records))) is not None:
            problems.append(f"count: {why}")
    if spec.statuses is not None:
        statuses = [r.status for r in records]
        expected.append(f"statuses {spec.statuses}")
        if statuses != spec.statuses:
            problems.append(f"statuses: expected {spec.statuses}, got {statuses}")
    for key, condition in (spec.fields or {}).items():
        expected.append(f"every record's {key} {condition.describe()}")
        for index, record in enumerate(records):
            if (why := match(condition, getattr(record, key, _MISSING))) is not None:
                problems.append(f"record {index} ({record.trace_id}) {key}: {why}")
    observed = [
        {"model_id": r.model_id, "status": r.status, "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
         "total_tokens": r.total_tokens, "trace_id": r.trace_id}
        for r in records[:6]
    ]  # fmt: skip
    return check_result(
        check_id,
        "metrics",
        description,
        problems,
        "; ".join(expected),
        {"count": len(records), "first": observed},
    )


def measurement_check(check_id: str, description: str, name: str, stat: str, condition: Match,
                      measurement: Measurement | None) -> CheckResult:  # fmt: skip
    value = getattr(measurement, stat) if measurement is not None else None
    if stat == "count" and measurement is not None:
        value = measurement.count
    why = match(condition, value if value is not None else _MISSING)
    return check_result(
        check_id,
        "measurement",
        description,
        [f"{name} {stat}: {why}"] if why else [],
        f"{name} {stat} {condition.describe()}",
        value,
    )


# --- agreement between sources ----------------------------------------------------------------------------


def _strip_provider(model: Any) -> Any:
    if isinstance(model, str) and model.startswith("workers-ai/"):
        return model[len("workers-ai/") :]
    return model


def _as_int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _source_values(source: str, exchange: Exchange, observations: Observations) -> dict[str, Any] | None:
    """What one source says about one successful exchange, or ``None`` when it has no record of it."""
    trace = exchange.trace_id or ""
    if source == "stream":
        done = next((ev for ev in exchange.events if ev.event == "done"), None)
        if done is None:
            return None
        usage = get_path(_parse(done.data), "usage")
        usage = usage if isinstance(usage, Mapping) else {}
        return {
            "model": usage.get("modelId"),
            "tokens_in": _as_int(usage.get("tokensIn")),
            "tokens_out": _as_int(usage.get("tokensOut")),
            "status": "error" if any(ev.event == "error" for ev in exchange.events) else "success",
            "cost": None,
        }
    if source == "response":
        return _source_values("stream" if exchange.stream else "headers", exchange, observations)
    if source == "headers":
        return {
            "model": exchange.headers.get("x-model-id"),
            "tokens_in": _as_int(exchange.headers.get("x-tokens-in")),
            "tokens_out": _as_int(exchange.headers.get("x-tokens-out")),
            "status": "success" if exchange.status == 200 else "error",
            "cost": None,
        }
    if source == "metrics":
        records = [r for r in observations.metrics or [] if r.trace_id == trace]
        if not records:
            return None
        r = records[-1]
        return {"model": r.model_id, "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
                "status": r.status, "cost": r.cost}  # fmt: skip
    if source == "logs":
        logs = [r for r in observations.logs or [] if str(r.metadata.get("traceId", "")) == trace]
        if not logs:
            return None
        # The log of the attempt that served the request: its successful attempt (a failed attempt and its
        # fallback can be logged in the same millisecond, where the Logs API's order between them is not
        # defined), else the last attempt.
        served = [r for r in logs if r.success or (r.status_code or 0) < 400]
        log = (served or logs)[-1]
        return {
            "model": _strip_provider(log.model),
            "tokens_in": log.tokens_in,
            "tokens_out": log.tokens_out,
            "status": "success" if log.success or (log.status_code or 0) < 400 else "error",
            "cost": log.cost,
        }
    calls = observations.by_trace.get(trace, [])
    if not calls:
        return None
    call = calls[-1]
    return {
        "model": _strip_provider(call.model),
        "tokens_in": call.tokens_in,
        "tokens_out": call.tokens_out,
        "status": "success" if call.status < 400 else "error",
        "cost": call.cost,
    }


def agreement_check(
    check_id: str, description: str, spec: AgreementCheck, observations: Observations
) -> CheckResult:
    successes = [
        e
        for e in observations.exchanges
        if e.status == 200 and not e.disconnected and not any(ev.event == "error" for ev in e.events)
    ]
    problems: list[str] = []
    failing: list[str] = []
    table: list[dict[str, Any]] = []
    for exchange in successes:
        per_source = {s: _source_values(s, exchange, observations) for s in spec.sources}
        row: dict[str, Any] = {"request": exchange.id}
        for fld in spec.fields:
            values = {s: (v or {}).get(fld) if v is not None else "no record" for s, v in per_source.items()}
            row[fld] = values
            comparable = [v for v in values.values()]
            if fld == "cost":
                comparable = [round(v, 9) if isinstance(v, float) else v for v in comparable]
            if len({json.dumps(v, sort_keys=True, default=str) for v in comparable}) > 1:
                problems.append(f"{exchange.id} {fld}: {values}")
                if exchange.id not in failing:
                    failing.append(exchange.id)
        table.append(row)
    if not successes:
        problems.append("no successful request to compare")
    log_ids = [lid for e in successes for lid in e.log_ids]
    return check_result(
        check_id,
        "agreement",
        description,
        problems,
        f"{', '.join(spec.sources)} agree on {', '.join(spec.fields)} for every successful request",
        table[:8],
        exchanges=failing + [e.id for e in successes if e.id not in failing],
        log_ids=log_ids,
    )
