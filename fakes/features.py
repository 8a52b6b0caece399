"""Feature modules installed into every fake, in order.

Each named module exposes ``install(parts: aigw_fakes.parts.FakeParts) -> None`` and adds its routes
(``parts.router.add``), pipeline stages (``parts.pipeline.replace/insert_after``) and reset hooks
(``parts.state.on_reset``). Adding a feature is adding its module name here.
"""

from __future__ import annotations

FEATURES: tuple[str, ...] = (
    "aigw_fakes.control.routes",
    "aigw_fakes.gateway.workers_ai",
    # gateway features: settings at work in the pipeline, then their APIs and the other entry points
    "aigw_fakes.control.features",
    "aigw_fakes.gateway.stages",
    "aigw_fakes.api.gateways",
    "aigw_fakes.api.logs",
    "aigw_fakes.gateway.universal_endpoint",
    "aigw_fakes.api.binding",
    "aigw_fakes.api.account",
)
