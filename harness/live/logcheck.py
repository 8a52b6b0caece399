"""Find a run's own requests in the Logs API, measure how long they took to appear, and compare.

Each request's log is polled by its ``cf-aig-log-id`` with a bounded schedule (interval doubling from
``interval_s`` up to ``max_interval_s``, until ``timeout_s``); the visibility delay is the time from the
end of the response to the first poll that found it, so its resolution is the poll interval at that
moment (reported alongside). All requests are polled concurrently and nothing outlives the call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aigw_harness.live.client import CloudflareClient
from aigw_harness.live.observe import Observation

__all__ = [
    "DEFAULT_SCHEDULE",
    "LogSighting",
    "LogWatcher",
    "Mismatch",
    "PollSchedule",
    "await_logs",
    "compare_with_log",
    "find_logs",
]


@dataclass(frozen=True)
class PollSchedule:
    timeout_s: float = 60.0
    interval_s: float = 0.25
    max_interval_s: float = 4.0


DEFAULT_SCHEDULE = PollSchedule()


@dataclass
class LogSighting:
    name: str
    log_id: str | None
    found: bool = False
    delay_ms: float | None = None
    resolution_ms: float | None = None
    polls: int = 0
    record: dict[str, Any] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "log_id": self.log_id,
            "found": self.found,
            "delay_ms": self.delay_ms,
            "resolution_ms": self.resolution_ms,
            "polls": self.polls,
            "record": self.record,
            "note": self.note,
        }


@dataclass(frozen=True)
class Mismatch:
    name: str
    field: str
    client: Any
    log: Any

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "field": self.field, "client": self.client, "log": self.log}


class LogWatcher:
    """Starts polling for a request's log as soon as its response has ended, in the caller's task group.

    Polling while later requests are still being sent keeps each visibility delay about that request,
    not about the length of the run.
    """

    def __init__(
        self,
        client: CloudflareClient,
        group: asyncio.TaskGroup,
        schedule: PollSchedule = DEFAULT_SCHEDULE,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.group = group
        self.schedule = schedule
        self.clock = clock
        self.sleep = sleep
        self.sightings: list[LogSighting] = []

    def watch(self, obs: Observation, ended: float) -> LogSighting:
        """``ended``: the ``clock`` time the response ended. The sighting fills in as polling proceeds."""
        sighting = LogSighting(obs.name, obs.log_id)
        self.sightings.append(sighting)
        if sighting.log_id is None:
            sighting.note = "the response carried no cf-aig-log-id"
        else:
            self.group.create_task(
                _poll(self.client, sighting, sighting.log_id, ended, self.schedule, self.clock, self.sleep)
            )
        return sighting


async def await_logs(
    client: CloudflareClient,
    observed: Sequence[tuple[Observation, float]],
    schedule: PollSchedule = DEFAULT_SCHEDULE,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[LogSighting]:
    """One sighting per observation; ``observed`` pairs each with the ``clock`` time its response ended."""
    async with asyncio.TaskGroup() as group:
        watcher = LogWatcher(client, group, schedule, clock=clock, sleep=sleep)
        for obs, ended in observed:
            watcher.watch(obs, ended)
    return watcher.sightings


async def find_logs(
    client: CloudflareClient,
    log_ids: Sequence[str],
    schedule: PollSchedule = DEFAULT_SCHEDULE,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[LogSighting]:
    """Poll each log id (its response has already ended) until it is visible or the schedule runs out."""
    now = clock()
    sightings = [LogSighting(log_id, log_id) for log_id in dict.fromkeys(log_ids)]
    async with asyncio.TaskGroup() as group:
        for sighting in sightings:
            group.create_task(_poll(client, sighting, sighting.name, now, schedule, clock, sleep))
    return sightings


async def _poll(
    client: CloudflareClient,
    sighting: LogSighting,
    log_id: str,
    ended: float,
    schedule: PollSchedule,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    interval = schedule.interval_s
    deadline = ended + schedule.timeout_s
    previous = ended
    while True:
        answer = await client.get_log(log_id)
        sighting.polls += 1
        now = clock()
        if answer.status == 200 and isinstance(answer.result, dict):
            sighting.found = True
            sighting.record = answer.result
            sighting.delay_ms = max(0.0, (now - ended) * 1000.0)
            sighting.resolution_ms = max(0.0, (now - previous) * 1000.0)
            return
        if answer.status != 404:
            sighting.note = f"Logs API answered HTTP {answer.status} (codes {answer.error_codes or 'none'})"
            return
        if now + interval > deadline:
            sighting.note = f"not visible after {schedule.timeout_s:g} s ({sighting.polls} polls)"
            return
        previous = now
        await sleep(interval)
        interval = min(interval * 2, schedule.max_interval_s)


def compare_with_log(
    obs: Observation, log: Mapping[str, Any], *, model: str, tenant_id: str, run_id: str
) -> list[Mismatch]:
    """Where the log disagrees with what the client saw or sent."""
    out: list[Mismatch] = []

    def check(field_name: str, client_value: Any, log_value: Any) -> None:
        if client_value is not None and client_value != log_value:
            out.append(Mismatch(obs.name, field_name, client_value, log_value))

    check("model", model, log.get("model"))
    check("provider", "workers-ai", log.get("provider"))
    check("status_code", obs.status or None, log.get("status_code"))
    usage = obs.usage or {}
    check("tokens_in", usage.get("prompt_tokens"), log.get("tokens_in"))
    check("tokens_out", usage.get("completion_tokens"), log.get("tokens_out"))
    metadata = log.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    check("metadata.tenantId", tenant_id, metadata.get("tenantId"))
    check("metadata.runId", run_id, metadata.get("runId"))
    return out
