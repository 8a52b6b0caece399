"""A ``module:factory`` target for mutation analysis: the embedded fake target with one of the reference
gateway's departures from the contract switched on, so that each switch is a mutant of the reference gateway.

    python -m aigw_harness run --target benchmarks.mutation.quirk_target:quirk_target \\
        --target-option quirk=truncation_is_success scenarios/taxonomy-stream-faults.yaml

``quirk`` names a ``PlatformQuirks`` field, or ``fallback_on_every_class`` (the platform falls back on any
exception, input and credential errors included). This module only configures the reference gateway; it
does not change how scenarios run.
"""

from __future__ import annotations

from aigw_harness.errors import ConfigError
from aigw_harness.gateway.settings import FallbackPolicy, GatewaySettings, PlatformQuirks
from aigw_harness.gateway.upstream import ErrorClass
from aigw_harness.scenarios.fake_target import FakeTarget
from aigw_harness.scenarios.targets import TargetOptions

__all__ = ["QUIRKS", "quirk_target"]

FALLBACK_ON_EVERY_CLASS = "fallback_on_every_class"
QUIRKS = (*PlatformQuirks.model_fields, FALLBACK_ON_EVERY_CLASS)


def _with_quirk(settings: GatewaySettings, quirk: str) -> GatewaySettings:
    if quirk == FALLBACK_ON_EVERY_CLASS:
        return settings.model_copy(update={"fallback": FallbackPolicy(on=frozenset(ErrorClass))})
    return settings.model_copy(update={"quirks": PlatformQuirks(**{quirk: True})})


class QuirkTarget(FakeTarget):
    def __init__(self, options: TargetOptions) -> None:
        super().__init__(options)
        quirk = options.extra.get("quirk", "")
        if quirk not in QUIRKS:
            raise ConfigError(f"quirk={quirk!r}: expected one of {', '.join(QUIRKS)}")
        self.quirk = quirk
        self.description = f"the reference gateway with {quirk} on, on the embedded fake AI Gateway"

    def adjust(self, settings: GatewaySettings) -> GatewaySettings:
        return _with_quirk(settings, self.quirk)


def quirk_target(options: TargetOptions) -> QuirkTarget:
    return QuirkTarget(options)
