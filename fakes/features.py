"""Feature modules installed into every fake, in order.

Each named module exposes ``install(parts: fakes.parts.FakeParts) -> None`` and adds its routes
(``parts.router.add``), pipeline stages (``parts.pipeline.replace/insert_after``) and reset hooks
(``parts.state.on_reset``). Adding a feature is adding its module name here.
"""

from __future__ import annotations

FEATURES: tuple[str, ...] = (
    "fakes.control.routes",
    "fakes.gateway.workers_ai",
    # gateway features: settings at work in the pipeline, then their APIs and the other entry points
    "fakes.control.features",
    "fakes.gateway.stages",
    "fakes.api.gateways",
    "fakes.api.logs",
    "fakes.gateway.universal_endpoint",
    "fakes.api.binding",
)
