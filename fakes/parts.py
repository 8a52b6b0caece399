"""What a feature module extends: the fake's state, its router and its request pipeline.

``FakeParts.build(state)`` gives the router empty and the pipeline with its base stages
(``aigw_fakes.gateway.pipeline``) ending in the scripted model (``aigw_fakes.gateway.upstream``). Each feature
module listed in ``aigw_fakes.features`` then gets the parts in ``install(parts)``. The state does not hold
the router or the pipeline: stages and handlers reach the state through the call or the request they serve,
so that the state imports nothing of the layers above it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aigw_fakes.gateway.pipeline import (
    Pipeline,
    authenticate_stage,
    pass_through,
    record_stage,
    single_attempt,
)
from aigw_fakes.gateway.upstream import upstream_stage
from aigw_fakes.state.fake import FakeState
from aigw_fakes.wire.http import Router

__all__ = ["FakeParts"]


@dataclass(slots=True)
class FakeParts:
    state: FakeState
    router: Router
    pipeline: Pipeline

    @classmethod
    def build(cls, state: FakeState) -> FakeParts:
        pipeline = Pipeline(
            [
                ("record", record_stage),
                ("authenticate", authenticate_stage),
                ("limits", pass_through),
                ("cache", pass_through),
                ("attempts", single_attempt),
                ("upstream", upstream_stage),
            ]
        )
        return cls(state, Router(), pipeline)
