"""Contract snapshots: what a system under test's responses look like, recorded, and drift from it found.

Snapshot testing libraries compare values; this compares the contract's shape. From a run's exchanges, per
scenario step (``streaming.contract/stream``), a snapshot keeps:

- ``status``: the HTTP statuses seen;
- ``headers``: each header's format, not its value (``uuid``, ``integer``, ``epoch milliseconds``,
  ``workers-ai model id``, ``text``...), except the contract's fixed values (content type, cache control);
- for streams, ``events``: the order of event names, token runs folded (``message+ done``), ``terminal``:
  the last event, ``line_ending``, and ``payloads``: per event name, each JSON key (dotted paths, ``[]``
  for array items) and its value type, ``?`` after a key that only some events carry;
- for JSON bodies (errors above all), ``body``: the same keys and types.

Values that vary between runs (ids, text, token counts, timings) never appear, so a snapshot of the same
system is the same file run after run. ``diff`` lists every drift with its before and after; ``drift_result``
turns them into findings of a result, so that they reach the report, JUnit and the baseline gate like any
other finding. The file is YAML, sorted, for review in a diff.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from aigw_fakes.datafiles import load_model
from aigw_harness.report.results import (
    CheckResult,
    CheckStatus,
    Evidence,
    Exchange,
    FindingResult,
    Results,
    ScenarioResult,
    ScenarioStatus,
)
from aigw_harness.stream_contract import event_sequence

__all__ = [
    "Drift",
    "ExchangeShape",
    "Snapshot",
    "diff",
    "drift_result",
    "header_format",
    "load_snapshot",
    "snapshot_of",
    "with_drift",
    "write_snapshot",
]

EXACT_HEADERS = frozenset({"content-type", "cache-control"})
"""Headers whose value is part of the contract, recorded as they are."""

_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("uuid", re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    ("ulid", re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")),
    ("epoch milliseconds", re.compile(r"^1\d{12}$")),
    ("epoch seconds", re.compile(r"^1\d{9}$")),
    ("integer", re.compile(r"^-?\d+$")),
    ("decimal", re.compile(r"^-?\d+\.\d+$")),
    ("workers-ai model id", re.compile(r"^@cf/[^/\s]+/\S+$")),
    ("ISO 8601 time", re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")),
)


def header_format(name: str, value: str) -> str:
    if name in EXACT_HEADERS:
        return value
    for label, pattern in _FORMATS:
        if pattern.match(value):
            return label
    return "text"


class ExchangeShape(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: list[int] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    """Header → its format; ``a | b`` when responses differ."""
    events: list[str] = Field(default_factory=list)
    """Event-name sequences seen, runs folded (``message+ done``)."""
    terminal: list[str] = Field(default_factory=list)
    line_ending: list[str] = Field(default_factory=list)
    payloads: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Event name → JSON key path → type."""
    body: dict[str, str] = Field(default_factory=dict)
    """JSON body key path → type (non-stream responses)."""


class Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aigw_snapshot: Literal[1] = 1
    target: str = ""
    """What the snapshot was taken of, for the reader; not compared."""
    exchanges: dict[str, ExchangeShape]
    """``scenario/step`` → the shape of its responses."""

    def to_yaml(self) -> str:
        document = self.model_dump(exclude_defaults=False)
        return yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=110)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _paths(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every key path of a JSON document and its type (array items under ``[]``)."""
    if prefix:
        yield prefix, _json_type(value)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _paths(item, f"{prefix}[]")


def _merge_documents(documents: list[Any]) -> dict[str, str]:
    """Key path → type (``a | b`` when they differ), ``?`` after keys that only some documents carry."""
    if not documents:
        return {}
    seen: list[dict[str, set[str]]] = []
    for document in documents:
        found: dict[str, set[str]] = {}
        for path, kind in _paths(document, "" if isinstance(document, (dict, list)) else "$"):
            found.setdefault(path, set()).add(kind)
        seen.append(found)
    keys = sorted({key for found in seen for key in found})
    merged: dict[str, str] = {}
    for key in keys:
        kinds = sorted({kind for found in seen for kind in found.get(key, set())})
        everywhere = all(key in found for found in seen)
        merged[key + ("" if everywhere else "?")] = " | ".join(kinds)
    return merged


def _line_ending(raw: str) -> str:
    kinds = {"crlf" if "\r\n" in raw else "", "lf" if re.search(r"(?<!\r)\n", raw) else ""}
    kinds |= {"cr" if re.search(r"\r(?!\n)", raw) else ""}
    kinds.discard("")
    return " + ".join(sorted(kinds)) or "none"


def _parse(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return "(not JSON)"


def _shape(exchanges: list[Exchange]) -> ExchangeShape:
    answered = [e for e in exchanges if e.status is not None]
    headers: dict[str, set[str]] = {}
    for exchange in answered:
        for name, value in exchange.headers.items():
            headers.setdefault(name.lower(), set()).add(header_format(name.lower(), value))
    header_names = sorted(headers)
    streams = [e for e in answered if e.stream and not e.disconnected]
    by_event: dict[str, list[Any]] = {}
    for exchange in streams:
        for event in exchange.events:
            by_event.setdefault(event.event, []).append(_parse(event.data))
    bodies = [e.body_json for e in answered if not e.stream and e.body_json is not None]
    present = {name: sum(name in e.headers for e in answered) for name in header_names}
    return ExchangeShape(
        status=sorted({e.status for e in answered if e.status is not None}),
        headers={
            name + ("" if present[name] == len(answered) else "?"): " | ".join(sorted(headers[name]))
            for name in header_names
        },
        events=sorted({event_sequence(ev.event for ev in e.events) for e in streams}),
        terminal=sorted({e.events[-1].event if e.events else "(none)" for e in streams}),
        line_ending=sorted({_line_ending(e.raw_stream or "") for e in streams}),
        payloads={name: _merge_documents(docs) for name, docs in sorted(by_event.items())},
        body=_merge_documents(bodies),
    )


def snapshot_of(results: Results) -> Snapshot:
    shapes: dict[str, ExchangeShape] = {}
    for scenario in results.scenarios:
        by_step: dict[str, list[Exchange]] = {}
        for exchange in scenario.exchanges:
            by_step.setdefault(exchange.step, []).append(exchange)
        for step, exchanges in by_step.items():
            shapes[f"{scenario.id}/{step}"] = _shape(exchanges)
    return Snapshot(target=results.run.sut or results.run.target, exchanges=dict(sorted(shapes.items())))


def write_snapshot(results: Results, path: Path) -> Snapshot:
    snapshot = snapshot_of(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(snapshot.to_yaml(), encoding="utf-8")
    return snapshot


def load_snapshot(path: str | Path) -> Snapshot:
    return load_model(path, Snapshot)


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference of shape: where (``scenario/step``), which aspect, and the value before and after."""

    where: str
    aspect: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.where} {self.aspect}: {_show(self.before)} -> {_show(self.after)}"


def _show(value: Any) -> str:
    if value is None:
        return "absent"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _flat(shape: ExchangeShape) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for field, value in shape.model_dump().items():
        if isinstance(value, Mapping):
            for key, inner in value.items():
                if isinstance(inner, Mapping):
                    for path, kind in inner.items():
                        flat[f"{field}.{key}.{path}"] = kind
                else:
                    flat[f"{field}.{key}"] = inner
        else:
            flat[field] = value
    return flat


def _strip_optional(aspect: str) -> str:
    return aspect[:-1] if aspect.endswith("?") else aspect


def diff(before: Snapshot, after: Snapshot, *, only_recorded: bool = True) -> list[Drift]:
    """Every drift, in a stable order. With ``only_recorded``, steps the later run did not make (a run of
    fewer scenarios) are not drift; steps new in the later run are."""
    drifts: list[Drift] = []
    for where in sorted(set(before.exchanges) | set(after.exchanges)):
        old, new = before.exchanges.get(where), after.exchanges.get(where)
        if old is None:
            drifts.append(Drift(where, "step", None, "recorded"))
            continue
        if new is None:
            if not only_recorded:
                drifts.append(Drift(where, "step", "recorded", None))
            continue
        old_flat, new_flat = _flat(old), _flat(new)
        # A key that became optional (or stopped being) is one drift, not an absent and a new key.
        old_keys = {_strip_optional(k): k for k in old_flat}
        new_keys = {_strip_optional(k): k for k in new_flat}
        for aspect in sorted(set(old_keys) | set(new_keys)):
            old_key, new_key = old_keys.get(aspect), new_keys.get(aspect)
            old_value = old_flat[old_key] if old_key is not None else None
            new_value = new_flat[new_key] if new_key is not None else None
            if old_key is not None and old_key != aspect:
                old_value = f"{old_value} (optional)"
            if new_key is not None and new_key != aspect:
                new_value = f"{new_value} (optional)"
            if old_value != new_value:
                drifts.append(Drift(where, aspect, old_value, new_value))
    return drifts


SNAPSHOT_SCENARIO = "contract.snapshot"


def with_drift(results: Results, snapshot: Snapshot, snapshot_file: str) -> tuple[Results, list[Drift]]:
    """``results`` with the drift from ``snapshot`` added as one more scenario result."""
    current = snapshot_of(results)
    drifts = diff(snapshot, current)
    steps = [where for where in current.exchanges if where in snapshot.exchanges]
    scenarios = [*results.scenarios, drift_result(drifts, snapshot_file, steps)]
    updated = results.model_copy(update={"scenarios": scenarios, "summary": Results.summarise(scenarios)})
    return updated, drifts


def drift_result(drifts: list[Drift], snapshot_file: str, steps: Iterable[str]) -> ScenarioResult:
    """The drifts as one result: a check per recorded step (failed when its shape drifted) and a finding
    per drift (medium: a client written against the recorded shape may break)."""
    by_step: dict[str, list[Drift]] = {}
    for drift in drifts:
        by_step.setdefault(drift.where, []).append(drift)
    checks = [
        CheckResult(
            id=f"snapshot:{where}",
            kind="snapshot",
            description=f"the responses of {where} keep the recorded shape",
            status=CheckStatus.FAILED if by_step.get(where) else CheckStatus.PASSED,
            expected=f"the shape recorded in {snapshot_file}",
            observed=[str(d) for d in by_step.get(where, [])] or "as recorded",
            reason="; ".join(str(d) for d in by_step.get(where, [])[:3]),
        )
        for where in sorted(set(steps) | set(by_step))
    ]
    findings = [
        FindingResult(
            id=f"SNAPSHOT-DRIFT {drift.where} {drift.aspect}",
            title=f"The contract's shape drifted: {drift.where} {drift.aspect}",
            severity="medium",
            raised=True,
            when="failed",
            detail=f"Recorded in {snapshot_file}: {_show(drift.before)}. This run: {_show(drift.after)}.",
            recommendation="If the change is intended, record the snapshot again (aigw snapshot record) and "
            "tell the clients; otherwise restore the recorded shape.",
            evidence=[
                Evidence(
                    ref=f"snapshot:{drift.where}",
                    kind="check",
                    status="failed",
                    summary=str(drift),
                    observed={"before": drift.before, "after": drift.after},
                )
            ],
        )
        for drift in drifts
    ]
    return ScenarioResult(
        id=SNAPSHOT_SCENARIO,
        title="The responses keep the shape of the recorded contract snapshot",
        area="contract",
        description=f"Compared with {snapshot_file}: event names and order, payload keys and types, "
        "header formats, terminal events, error shapes.",
        path=snapshot_file,
        status=ScenarioStatus.FAILED if drifts else ScenarioStatus.PASSED,
        budget_store="-",
        started_at="",
        duration_s=0.0,
        checks=checks,
        findings=findings,
    )
