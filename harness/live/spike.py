"""The gateway spike: a small, capped set of probes through the real gateway, then the checklist.

The checklist is the milestone's spike list, each item with its evidence:

1. connectivity — a request through the gateway succeeded;
2. routing verified in logs — every successful request is found in the Logs API by its log id, with the
   model and provider the client asked for;
3. ``metadata.tenantId`` present — the logs carry the tenant id the run sent;
4. time to first token and token delivery — from the streamed probes;
5. usage in streams — whether a streamed answer carried token usage;
6. log visibility delay — how long after the response the log could be read;
7. the binding path (when a spike Worker URL is given) — ``env.AI.run`` with the ``gateway`` option
   returned a log id that the Logs API knows.

Every request carries the run id (``cf-aig-metadata.runId`` and ``cf-aig-event-id``). The report becomes
every run's results (``aigw_harness.live.findings.spike_results``): results.json and the Jinja report, after
the credentials' redactor; a result that still holds a secret is refused.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from aigw_harness.live.client import CloudflareClient, gateway_metadata
from aigw_harness.live.cost import CostGuard, Estimate, PlannedRequest
from aigw_harness.live.credentials import Secret
from aigw_harness.live.logcheck import (
    DEFAULT_SCHEDULE,
    LogSighting,
    LogWatcher,
    Mismatch,
    PollSchedule,
    compare_with_log,
)
from aigw_harness.live.observe import Observation
from aigw_harness.proxy.redaction import Redactor

__all__ = [
    "ItemState",
    "SpikeItem",
    "SpikeReport",
    "WorkerClient",
    "default_plan",
    "new_run_id",
    "run_spike",
]

PRIMARY_MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"
FALLBACK_MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
SPIKE_KEY_HEADER = "x-spike-key"


def new_run_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return f"aigw-{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def default_plan(
    models: Sequence[str] = (PRIMARY_MODEL, FALLBACK_MODEL), *, binding: bool = False
) -> list[PlannedRequest]:
    """Per model: one non-streamed and one streamed probe; plus one streamed probe through the Worker."""
    plan: list[PlannedRequest] = []
    for index, model in enumerate(models):
        plan.append(
            PlannedRequest(
                name=f"json-{index}",
                model=model,
                messages=[{"role": "user", "content": "Reply with the single word: pong"}],
                max_tokens=16,
                stream=False,
            )
        )
        plan.append(
            PlannedRequest(
                name=f"stream-{index}",
                model=model,
                messages=[{"role": "user", "content": "Count from 1 to 20, separated by spaces."}],
                max_tokens=96,
                stream=True,
            )
        )
    if binding:
        plan.append(
            PlannedRequest(
                name="binding-0",
                model=models[0],
                messages=[{"role": "user", "content": "Count from 1 to 10, separated by spaces."}],
                max_tokens=64,
                stream=True,
                path="binding",
            )
        )
    return plan


class WorkerClient:
    """Drives the spike Worker (``harness/live/spike_worker``): the binding path."""

    def __init__(self, url: str, key: Secret, http: httpx.AsyncClient, cf: CloudflareClient) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.http = http
        self.cf = cf

    async def run_probe(self, request: PlannedRequest, *, tenant_id: str, run_id: str) -> Observation:
        body = request.body() | {"model": request.model} | gateway_metadata(tenant_id, run_id, request.name)
        obs = await self.cf.observe_post(
            request.name, f"{self.url}/run", body, {SPIKE_KEY_HEADER: self.key.reveal()}
        )
        return obs


class ItemState(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    OBSERVED = "observed"
    """A finding rather than a requirement (e.g. whether usage arrives in streams)."""


@dataclass
class SpikeItem:
    key: str
    title: str
    state: ItemState
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "state": self.state.value, "evidence": self.evidence}


@dataclass
class SpikeReport:
    run_id: str
    started_at: str
    gateway_id: str
    tenant_id: str
    estimates: list[Estimate]
    spent_requests: int
    observations: list[Observation]
    sightings: list[LogSighting]
    mismatches: list[Mismatch]
    listed_by_run_id: int | None
    items: list[SpikeItem]
    redactor: Redactor

    @property
    def ok(self) -> bool:
        return all(item.state is not ItemState.FAIL for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "kind": "aigw-spike-report/1",
            "run_id": self.run_id,
            "started_at": self.started_at,
            "gateway_id": self.gateway_id,
            "tenant_id": self.tenant_id,
            "ok": self.ok,
            "checklist": [i.to_dict() for i in self.items],
            "estimate": {
                "requests": len(self.estimates),
                "tokens": sum(e.tokens for e in self.estimates),
                "usd": sum(e.usd for e in self.estimates),
                "per_request": [e.__dict__ for e in self.estimates],
            },
            "requests_sent": self.spent_requests,
            "observations": [o.to_dict() for o in self.observations],
            "logs": [s.to_dict() for s in self.sightings],
            "mismatches": [m.to_dict() for m in self.mismatches],
            "listed_by_run_id": self.listed_by_run_id,
        }
        return self._clean(json.loads(self.redactor.text(json.dumps(data))))

    def _clean[T](self, value: T) -> T:
        if self.redactor.contains_secret(json.dumps(value) if not isinstance(value, str) else value):
            raise RuntimeError("the spike report still held a secret after redaction; it was not produced")
        return value


async def run_spike(
    client: CloudflareClient,
    plan: Sequence[PlannedRequest],
    guard: CostGuard,
    *,
    tenant_id: str,
    run_id: str,
    worker: WorkerClient | None = None,
    schedule: PollSchedule = DEFAULT_SCHEDULE,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SpikeReport:
    """Check the plan against the caps, send it (sequentially: timings stay clean), then read the logs."""
    estimates = guard.check_plan(plan)
    if worker is None and any(r.path == "binding" for r in plan):
        raise RuntimeError("a plan with binding probes needs a WorkerClient")
    started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    observations: list[Observation] = []
    async with asyncio.TaskGroup() as group:
        watcher = LogWatcher(client, group, schedule, clock=client.clock, sleep=sleep)
        for request in plan:
            guard.admit(request)
            if request.path == "binding" and worker is not None:
                obs = await worker.run_probe(request, tenant_id=tenant_id, run_id=run_id)
            else:
                obs = await client.run_probe(request, tenant_id=tenant_id, run_id=run_id)
            observations.append(obs)
            watcher.watch(obs, client.clock())
    sightings = watcher.sightings
    by_request = {r.name: r for r in plan}
    mismatches: list[Mismatch] = []
    for obs, sighting in zip(observations, sightings, strict=True):
        if sighting.record is not None:
            mismatches += compare_with_log(
                obs, sighting.record, model=by_request[obs.name].model, tenant_id=tenant_id, run_id=run_id
            )
    listed = await client.list_logs(run_id)
    listed_count = len(listed.result) if listed.status == 200 and isinstance(listed.result, list) else None
    items = checklist(plan, observations, sightings, mismatches, listed_count, tenant_id)
    return SpikeReport(
        run_id=run_id,
        started_at=started_at,
        gateway_id=client.credentials.gateway_id,
        tenant_id=tenant_id,
        estimates=estimates,
        spent_requests=guard.requests,
        observations=observations,
        sightings=sightings,
        mismatches=mismatches,
        listed_by_run_id=listed_count,
        items=items,
        redactor=client.redactor,
    )


def checklist(
    plan: Sequence[PlannedRequest],
    observations: Sequence[Observation],
    sightings: Sequence[LogSighting],
    mismatches: Sequence[Mismatch],
    listed_by_run_id: int | None,
    tenant_id: str,
) -> list[SpikeItem]:
    by_name = {r.name: r for r in plan}
    rest = [o for o in observations if by_name[o.name].path == "rest"]
    succeeded = [o for o in observations if o.ok]
    seen = {s.name: s for s in sightings}
    items: list[SpikeItem] = []

    statuses = ", ".join(f"{o.name}: {o.status or o.error}" for o in rest)
    items.append(
        SpikeItem(
            "connectivity",
            "Connectivity through AI Gateway",
            ItemState.PASS if any(o.ok for o in rest) else ItemState.FAIL,
            [statuses] if statuses else ["no request was sent through the gateway endpoint"],
        )
    )

    routed = [o for o in succeeded if seen.get(o.name) and seen[o.name].found]
    wrong = {m.name for m in mismatches if m.field in ("model", "provider", "status_code")}
    routing_evidence = [
        f"{len(routed)} of {len(succeeded)} successful requests found in the Logs API by log id"
    ]
    routing_evidence += [f"{s.name}: {s.note}" for s in sightings if not s.found and s.note]
    routing_evidence += [
        f"{m.name}: log {m.field} {m.log!r}, client {m.client!r}" for m in mismatches if m.name in wrong
    ]
    if listed_by_run_id is not None:
        routing_evidence.append(f"{listed_by_run_id} logs listed by filter metadata.value = run id")
    items.append(
        SpikeItem(
            "routing",
            "Routing through AI Gateway verified in the logs",
            ItemState.PASS if succeeded and len(routed) == len(succeeded) and not wrong else ItemState.FAIL,
            routing_evidence,
        )
    )

    tenants = [
        (s.name, (s.record or {}).get("metadata")) for s in sightings if s.found and s.record is not None
    ]
    with_tenant = [n for n, m in tenants if isinstance(m, dict) and m.get("tenantId") == tenant_id]
    items.append(
        SpikeItem(
            "tenant-metadata",
            "metadata.tenantId present in the logs",
            ItemState.PASS
            if tenants and len(with_tenant) == len(tenants)
            else (ItemState.UNKNOWN if not tenants else ItemState.FAIL),
            [f"{len(with_tenant)} of {len(tenants)} logs carry tenantId={tenant_id}"]
            + [f"{n}: metadata {m!r}" for n, m in tenants if n not in with_tenant],
        )
    )

    streams = [o for o in succeeded if o.stream]
    evidence = []
    for o in streams:
        gaps = o.token_gaps_ms
        gap_text = f", gap median {statistics.median(gaps):.0f} ms, max {max(gaps):.0f} ms" if gaps else ""
        ttft = f"{o.first_token_ms:.0f} ms" if o.first_token_ms is not None else "no token"
        evidence.append(
            f"{o.name}: TTFT {ttft}, {o.token_events} token events, {len(o.text)} characters{gap_text}, "
            f"{'[DONE] received' if o.done_marker else 'no [DONE]'}"
        )
    delivered = [o for o in streams if o.token_events > 1 and o.done_marker]
    items.append(
        SpikeItem(
            "streaming",
            "Time to first token and token delivery",
            ItemState.PASS
            if streams and len(delivered) == len(streams)
            else (ItemState.UNKNOWN if not streams else ItemState.FAIL),
            evidence or ["no streamed request succeeded"],
        )
    )

    with_usage = [o.name for o in streams if o.usage_in_stream]
    items.append(
        SpikeItem(
            "stream-usage",
            "Usage arrives in streams",
            ItemState.OBSERVED if streams else ItemState.UNKNOWN,
            [f"usage in {len(with_usage)} of {len(streams)} streams"]
            + [f"{o.name}: {json.dumps(o.usage, sort_keys=True)}" for o in streams if o.usage],
        )
    )

    delays = [s.delay_ms for s in sightings if s.delay_ms is not None]
    items.append(
        SpikeItem(
            "log-delay",
            "Log visibility delay",
            ItemState.OBSERVED if delays else ItemState.UNKNOWN,
            [
                f"max {max(delays):.0f} ms, median {statistics.median(delays):.0f} ms "
                f"over {len(delays)} logs "
                f"(resolution: the poll interval, up to "
                f"{max(s.resolution_ms or 0 for s in sightings):.0f} ms)"
            ]
            if delays
            else ["no log was seen"],
        )
    )

    binding = [o for o in observations if by_name[o.name].path == "binding"]
    if binding:
        found = [o for o in binding if o.ok and seen.get(o.name) and seen[o.name].found]
        items.append(
            SpikeItem(
                "binding",
                "env.AI.run with the gateway option (spike Worker)",
                ItemState.PASS if len(found) == len(binding) else ItemState.FAIL,
                [
                    f"{o.name}: status {o.status or o.error}, log id {o.log_id or 'none'}, "
                    f"{'found' if o in found else 'not found'} in the Logs API"
                    for o in binding
                ],
            )
        )
    return items
