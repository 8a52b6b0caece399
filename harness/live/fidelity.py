"""Fake fidelity: send the same probes to the fake and to a second target, and say where they differ.

The second target is the real gateway (live) or a cassette set recorded from it. Each probe is observed
the same way on both sides (``aigw_harness.live.observe``) and compared aspect by aspect:

- ``status``: the HTTP status;
- ``headers``: the ``content-type`` value and which ``cf-aig-*``/``cf-ai-*`` headers are present;
- ``frames``: the sequence of SSE frame shapes (top-level keys), repeats collapsed, ``p`` padding ignored
  (Cloudflare sends it on some frames and not others);
- ``usage``: whether usage arrived in the stream and which usage fields it had;
- ``body``: the JSON shape of a non-streamed body, and the error codes of an error body;
- ``log``: the Logs API record's fields and their types, when both sides have one.

Values that differ by nature (ids, text, timings, token counts) are not compared. An aspect that cannot be
compared (no log on one side) is listed as such, never silently skipped. The result is data
(``FidelityReport.to_dict``, kind ``aigw-fidelity/1``) for the findings report's "fake fidelity" section.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic

from aigw_fakes.datafiles import load_model
from aigw_harness.live.client import CloudflareClient, gateway_metadata
from aigw_harness.live.cost import PlannedRequest
from aigw_harness.live.logcheck import DEFAULT_SCHEDULE, LogSighting, LogWatcher, PollSchedule
from aigw_harness.live.observe import Observation

__all__ = [
    "Difference",
    "FidelityData",
    "FidelityProbe",
    "FidelityReport",
    "ProbeOutcome",
    "compare",
    "default_probes",
    "json_shape",
    "load_fidelity",
    "run_probes",
]

DEFAULT_MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
MISSING_MODEL = "@cf/aigw/no-such-model"


@dataclass(frozen=True)
class FidelityProbe:
    name: str
    path: str
    """Under the gateway: ``workers-ai/{model}``, ``compat/chat/completions``, ..."""
    body: Mapping[str, Any] | None
    raw_body: bytes | None = None
    """Sent instead of ``body`` (for malformed-JSON probes)."""
    bad_token: bool = False
    """Send a wrong provider token (``Authorization``)."""
    planned: PlannedRequest | None = None
    """For the cost guard: what a generating probe may cost. ``None`` for probes that cannot generate."""


def default_probes(model: str = DEFAULT_MODEL, max_tokens: int = 12) -> list[FidelityProbe]:
    messages = [{"role": "user", "content": "Name three colours."}]

    def planned(name: str, stream: bool) -> PlannedRequest:
        return PlannedRequest(name, model, messages, max_tokens, stream)

    native = {"messages": messages, "max_tokens": max_tokens}
    chat = {"model": model, "messages": messages, "max_tokens": max_tokens}
    return [
        FidelityProbe(
            "native-stream",
            f"workers-ai/{model}",
            native | {"stream": True},
            planned=planned("native-stream", True),
        ),
        FidelityProbe(
            "native-json",
            f"workers-ai/{model}",
            native | {"stream": False},
            planned=planned("native-json", False),
        ),
        FidelityProbe(
            "openai-stream",
            "workers-ai/v1/chat/completions",
            chat | {"stream": True, "stream_options": {"include_usage": True}},
            planned=planned("openai-stream", True),
        ),
        FidelityProbe(
            "openai-json", "workers-ai/v1/chat/completions", chat, planned=planned("openai-json", False)
        ),
        FidelityProbe("error-unknown-model", f"workers-ai/{MISSING_MODEL}", native),
        FidelityProbe("error-bad-token", f"workers-ai/{model}", native, bad_token=True),
        FidelityProbe("error-bad-json", f"workers-ai/{model}", None, raw_body=b'{"messages": ['),
    ]


def json_shape(value: Any, depth: int = 0) -> Any:
    """Keys and value types, recursively; list shapes from their first item."""
    if depth > 6:
        return "…"
    if isinstance(value, dict):
        return {k: json_shape(v, depth + 1) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [json_shape(value[0], depth + 1)] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def _collapsed_frames(shapes: Sequence[str]) -> list[str]:
    out: list[str] = []
    for shape in shapes:
        keys = (
            "|".join(k for k in shape.split("|") if k != "p") if not shape.startswith(("<", "[")) else shape
        )
        if not out or out[-1] != keys:
            out.append(keys)
    return out


def _error_codes(body: Any) -> list[int]:
    if not isinstance(body, dict):
        return []
    items = body.get("errors") or body.get("error") or []
    return sorted(int(i["code"]) for i in items if isinstance(i, dict) and isinstance(i.get("code"), int))


def _gateway_header_names(obs: Observation) -> list[str]:
    return sorted(h for h in obs.header_names if h.startswith(("cf-aig-", "cf-ai-")))


@dataclass
class ProbeOutcome:
    probe: str
    observation: Observation
    log: LogSighting | None = None


@dataclass(frozen=True)
class Difference:
    probe: str
    aspect: str
    fake: Any
    other: Any

    def to_dict(self) -> dict[str, Any]:
        return {"probe": self.probe, "aspect": self.aspect, "fake": self.fake, "other": self.other}


def _aspects(outcome: ProbeOutcome) -> dict[str, Any]:
    obs = outcome.observation
    aspects: dict[str, Any] = {
        "status": obs.status if obs.error is None else f"transport error: {obs.error}",
        "headers": {"content-type": obs.headers.get("content-type"), "gateway": _gateway_header_names(obs)},
    }
    if obs.stream:
        aspects["frames"] = _collapsed_frames(obs.frame_shapes)
        aspects["usage"] = {"in_stream": obs.usage_in_stream, "fields": sorted(obs.usage or {})}
    elif obs.ok:
        aspects["body"] = json_shape(obs.body)
    else:
        aspects["body"] = {"error_codes": _error_codes(obs.body), "shape": json_shape(obs.body)}
    if outcome.log is not None and outcome.log.record is not None:
        aspects["log"] = json_shape(outcome.log.record)
    return aspects


def compare(
    fake: Sequence[ProbeOutcome], other: Sequence[ProbeOutcome]
) -> tuple[list[Difference], list[dict[str, Any]]]:
    """Differences, and per probe which aspects were compared and which could not be."""
    differences: list[Difference] = []
    coverage: list[dict[str, Any]] = []
    others = {o.probe: o for o in other}
    for mine in fake:
        theirs = others.get(mine.probe)
        if theirs is None:
            coverage.append(
                {
                    "probe": mine.probe,
                    "compared": [],
                    "not_compared": {"all": "the second target has no answer"},
                }
            )
            continue
        a, b = _aspects(mine), _aspects(theirs)
        compared, not_compared = [], {}
        if mine.observation.ok and theirs.observation.ok and "log" not in a and "log" not in b:
            not_compared["log"] = "neither side has one" + _why(mine, "log")
        for aspect in sorted(set(a) | set(b)):
            if aspect in a and aspect in b:
                compared.append(aspect)
                if a[aspect] != b[aspect]:
                    differences.append(Difference(mine.probe, aspect, a[aspect], b[aspect]))
            else:
                side = "fake" if aspect not in a else "second target"
                not_compared[aspect] = f"the {side} has none" + _why(
                    mine if aspect not in a else theirs, aspect
                )
        coverage.append({"probe": mine.probe, "compared": compared, "not_compared": not_compared})
    return differences, coverage


def _why(outcome: ProbeOutcome, aspect: str) -> str:
    if aspect == "log" and outcome.log is not None and outcome.log.note:
        return f" ({outcome.log.note})"
    return ""


class _Data(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class FidelityDifferenceData(_Data):
    probe: str
    aspect: str
    fake: Any
    other: Any


class FidelityProbeData(_Data):
    probe: str
    compared: list[str]
    """Aspects compared on this probe (``status``, ``headers``, ``frames``, ``usage``, ``body``, ``log``)."""
    not_compared: dict[str, str]
    """Aspect -> why it could not be compared."""


class FidelitySummaryData(_Data):
    probes: int
    aspects_compared: int
    differences: int
    not_compared: int


class FidelityData(_Data):
    """The "fake fidelity" section's data (``fidelity.json``), as the findings report reads it."""

    kind: Literal["aigw-fidelity/1"] = "aigw-fidelity/1"
    fake: str
    other: str
    """``live``, or ``cassettes <directory name>``."""
    model: str
    summary: FidelitySummaryData
    probes: list[FidelityProbeData]
    differences: list[FidelityDifferenceData]


def load_fidelity(path: str | Path) -> FidelityData:
    """Read a ``fidelity.json``; a damaged file is reported with its file, line and field."""
    return load_model(path, FidelityData)


@dataclass
class FidelityReport:
    fake_label: str
    other_label: str
    model: str
    differences: list[Difference]
    coverage: list[dict[str, Any]]
    fake: list[ProbeOutcome] = field(repr=False, default_factory=list)
    other: list[ProbeOutcome] = field(repr=False, default_factory=list)

    def data(self) -> FidelityData:
        return FidelityData(
            fake=self.fake_label,
            other=self.other_label,
            model=self.model,
            summary=FidelitySummaryData(
                probes=len(self.coverage),
                aspects_compared=sum(len(c["compared"]) for c in self.coverage),
                differences=len(self.differences),
                not_compared=sum(len(c["not_compared"]) for c in self.coverage),
            ),
            probes=[FidelityProbeData.model_validate(c) for c in self.coverage],
            differences=[FidelityDifferenceData.model_validate(d.to_dict()) for d in self.differences],
        )

    def to_dict(self) -> dict[str, Any]:
        return self.data().model_dump(mode="json")


async def run_probes(
    client: CloudflareClient,
    probes: Sequence[FidelityProbe],
    *,
    run_id: str,
    schedule: PollSchedule = DEFAULT_SCHEDULE,
) -> list[ProbeOutcome]:
    """Send each probe (in order) to the client's gateway and read its log when there is one."""
    outcomes: list[ProbeOutcome] = []
    async with asyncio.TaskGroup() as group:
        watcher = LogWatcher(client, group, schedule, clock=client.clock)
        for probe in probes:
            headers = client.credentials.gateway_headers() | {
                "content-type": "application/json",
                "cf-aig-metadata": json.dumps(gateway_metadata("fidelity", run_id, probe.name)),
                "cf-aig-skip-cache": "true",
            }
            if probe.bad_token:
                headers["authorization"] = "Bearer aigw-fidelity-wrong-token"
            url = client.credentials.gateway_url(probe.path)
            if probe.raw_body is not None:
                obs = await client.observe_post(probe.name, url, None, headers, raw=probe.raw_body)
            else:
                obs = await client.observe_post(probe.name, url, probe.body or {}, headers)
            outcome = ProbeOutcome(probe.name, obs)
            if obs.ok:
                outcome.log = watcher.watch(obs, client.clock())
            outcomes.append(outcome)
    return outcomes
