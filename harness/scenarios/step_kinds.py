"""The step kinds: ``request``, ``pause_s``, ``clock`` and ``upstream``, each declaring what it needs.

A step kind acts on a ``Player`` (the runner's state for one scenario being played); it never evaluates
anything. See ``aigw_harness.scenarios.kinds`` for how kinds register and how needs become a plan.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aigw_harness.scenarios.kinds import StepKind
from aigw_harness.scenarios.model import Step
from aigw_harness.scenarios.targets import Capability, SystemUnderTest

__all__ = ["ClockStepKind", "PauseStepKind", "Player", "RequestStepKind", "UpstreamStepKind"]


class Player(Protocol):
    """What a step kind may use of the scenario being played."""

    @property
    def sut(self) -> SystemUnderTest: ...

    @property
    def time_scale(self) -> float: ...

    async def send_requests(self, name: str, step: Step) -> None:
        """Play a request step: its repeats and concurrent copies, recorded as exchanges."""
        ...


class RequestStepKind(StepKind):
    key = "request"

    def needs(self, step: Step) -> frozenset[Capability]:
        # Measuring the overshoot of a burst reads the ledger; without it the burst still runs and the
        # measurement is left out, so it is not a need of the step.
        return frozenset()

    async def perform(self, player: Player, name: str, step: Step) -> None:
        await player.send_requests(name, step)


class PauseStepKind(StepKind):
    key = "pause_s"

    async def perform(self, player: Player, name: str, step: Step) -> None:
        await asyncio.sleep((step.pause_s or 0.0) * player.time_scale)


class ClockStepKind(StepKind):
    key = "clock"

    def needs(self, step: Step) -> frozenset[Capability]:
        return frozenset({Capability.CLOCK})

    async def perform(self, player: Player, name: str, step: Step) -> None:
        clock = player.sut.clock
        if clock is None or step.clock is None:
            raise RuntimeError("the scenario moves the clock but the target gave no clock control")
        if step.clock.set is not None:
            await clock.set(step.clock.set)
        elif step.clock.advance_s is not None:
            await clock.advance(step.clock.advance_s)


class UpstreamStepKind(StepKind):
    key = "upstream"

    def needs(self, step: Step) -> frozenset[Capability]:
        return frozenset({Capability.UPSTREAM_CONTROL})

    async def perform(self, player: Player, name: str, step: Step) -> None:
        upstream = player.sut.upstream
        if upstream is None or step.upstream is None:
            raise RuntimeError(
                "the scenario changes upstream behaviour but the target gave no upstream control"
            )
        await upstream.load_behaviour(step.upstream)
