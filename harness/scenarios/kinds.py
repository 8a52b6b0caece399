"""Step, check and measurement kinds: what each needs from a target, and how it runs or evaluates itself.

A kind is a small class with a ``key`` (the scenario file's key for it: ``request``, ``ledger``,
``upstream_calls``, ``overshoot_tokens``...) that registers itself when defined, declares the facts it needs
(``Capability`` values) and carries its own behaviour. The runner asks the registries; it never lists kinds.
Adding a check kind is one class (plus its spec in ``aigw_harness.scenarios.model``).

From the kinds, ``plan`` computes what can run on a target: a scenario whose *steps or setup* need a fact
the target lacks cannot be played and is skipped with the missing facts named; a *check* that needs one is
skipped alone, with the missing fact named, and the rest of the scenario runs.

Each kind also declares the *symptoms* its failure shows (``Symptom``: how the answer streamed, which models
were called, usage and charges, attribution, the envelope), and so does each expectation key: a root cause
(``aigw_harness.scenarios.conformance``) masks a finding only when every failing check it rests on shows a
symptom that cause can produce.

The concrete kinds live in ``step_kinds``, ``check_kinds`` and ``measure``; this module holds the bases,
the registries and the planning, and imports them only when a registry is first read.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from aigw_harness.scenarios.model import Check, Scenario, Step
from aigw_harness.scenarios.targets import CAPABILITY_WORDS, Capability

if TYPE_CHECKING:
    from aigw_harness.report.results import CheckResult, Exchange, Measurement
    from aigw_harness.scenarios.check_kinds import CheckContext
    from aigw_harness.scenarios.step_kinds import Player

__all__ = [
    "CheckKind",
    "MeasurementKind",
    "Plan",
    "StepKind",
    "Symptom",
    "capability",
    "check_kind",
    "check_needs",
    "check_symptoms",
    "describe_missing",
    "expectation_symptoms",
    "measurement_kind",
    "plan",
    "scenario_needs",
    "setup_needs",
    "step_kind",
]

_CONCRETE = (
    "aigw_harness.scenarios.step_kinds",
    "aigw_harness.scenarios.check_kinds",
    "aigw_harness.scenarios.measure",
)

# Capability names scenario files used before needs were derived; ``requires:`` entries keep working.
_LEGACY_NAMES = {"upstream": Capability.UPSTREAM_CONTROL}


def capability(name: str) -> Capability:
    """A capability from its name in a file (``requires:``); an unknown name is a ``ValueError``."""
    if name in _LEGACY_NAMES:
        return _LEGACY_NAMES[name]
    try:
        return Capability(name)
    except ValueError:
        known = ", ".join(c.value for c in Capability)
        raise ValueError(f"unknown capability {name!r}: choose from {known}") from None


class Symptom(StrEnum):
    """What a failed check shows about the SUT's behaviour; root causes declare which they can produce."""

    STREAM = "stream"
    """How the answer was streamed: its events, their timing and shape, the content type."""
    ROUTING = "routing"
    """Which models were called, how often and in which order, and which one served."""
    USAGE = "usage"
    """Token counts and charges: usage fields, usage records, ledgers."""
    ATTRIBUTION = "attribution"
    """What AI Gateway stored: the gateway, metadata, log records."""
    ENVELOPE = "envelope"
    """Status codes, error bodies and the other headers."""


def _load_concrete() -> None:
    for module in _CONCRETE:
        importlib.import_module(module)


class StepKind(ABC):
    """One action a step can take (exactly one per step)."""

    key: ClassVar[str]
    """The ``Step`` field that holds this action."""
    registry: ClassVar[dict[str, StepKind]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "key" in cls.__dict__:
            StepKind.registry[cls.key] = cls()

    def needs(self, step: Step) -> frozenset[Capability]:
        """The facts or arrangements the target must give for this step to be played."""
        return frozenset()

    @abstractmethod
    async def perform(self, player: Player, name: str, step: Step) -> None: ...


class CheckKind(ABC):
    """One kind of check across the run (``ledger``, ``upstream_calls``, ``logs``...)."""

    key: ClassVar[str]
    """The ``Check`` field that holds this kind's spec."""
    registry: ClassVar[dict[str, CheckKind]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "key" in cls.__dict__:
            CheckKind.registry[cls.key] = cls()

    @abstractmethod
    def needs(self, spec: Any) -> frozenset[Capability]:
        """The facts this check reads."""

    def symptoms(self, spec: Any) -> frozenset[Symptom]:
        """What this check's failure shows. None declared: no root cause masks a finding resting on it."""
        return frozenset()

    @abstractmethod
    async def evaluate(self, check: Check, spec: Any, context: CheckContext) -> CheckResult: ...


class MeasurementKind(ABC):
    """One measurement (``ttft_ms``, ``overshoot_tokens``...): the facts it needs and its samples (units:
    ``aigw_harness.scenarios.measure.UNITS``)."""

    key: ClassVar[str]
    registry: ClassVar[dict[str, MeasurementKind]] = {}
    symptoms: ClassVar[frozenset[Symptom]] = frozenset()
    """What a finding resting on this measurement shows."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "key" in cls.__dict__:
            MeasurementKind.registry[cls.key] = cls()

    def needs(self) -> frozenset[Capability]:
        return frozenset()

    @abstractmethod
    def samples(self, exchanges: Iterable[Exchange], extra: Mapping[str, list[float]]) -> list[float]:
        """The raw samples over these exchanges; ``extra`` holds samples the runner collected itself
        (``overshoot_tokens`` from the ledger)."""

    def over(self, exchanges: Iterable[Exchange], extra: Mapping[str, list[float]],
             step: str | None = None) -> Measurement:  # fmt: skip
        from aigw_harness.scenarios.measure import measurement

        return measurement(self.key, self.samples(exchanges, extra), step)


def step_kind(step: Step) -> StepKind:
    _load_concrete()
    for key, kind in StepKind.registry.items():
        if getattr(step, key, None) is not None:
            return kind
    raise RuntimeError("a step with no registered action")  # the model guarantees one


def check_kind(check: Check) -> CheckKind:
    _load_concrete()
    return CheckKind.registry[check.kind]


def measurement_kind(name: str) -> MeasurementKind:
    _load_concrete()
    return MeasurementKind.registry[name]


# Expectation keys (``STEP.KEY`` checks) by prefix: the longest prefix that matches decides.
_EXPECTATION_SYMPTOMS: dict[str, frozenset[Symptom]] = {}


def expectation_symptoms(key: str) -> frozenset[Symptom]:
    """What a failed expectation (``status``, ``headers.x-model-id``, ``sse.data_events``...) shows."""
    found = [p for p in _EXPECTATION_SYMPTOMS if key == p or key.startswith(p)]
    return _EXPECTATION_SYMPTOMS[max(found, key=len)] if found else frozenset()


def _expectations(*prefixes: str, shows: Iterable[Symptom]) -> None:
    for prefix in prefixes:
        _EXPECTATION_SYMPTOMS[prefix] = frozenset(shows)


_expectations("status", "json.", "headers.", shows=[Symptom.ENVELOPE])
_expectations("content_type", "sse.", "ttft_ms", "duration_ms", shows=[Symptom.STREAM])
_expectations("headers.x-model-id", "sse.done.usage.modelId", "sse.data.model", shows=[Symptom.ROUTING])
_expectations("headers.x-tokens-", "sse.done.usage.", shows=[Symptom.USAGE])
_expectations("sse.error.", "sse.error_event", shows=[Symptom.STREAM, Symptom.ENVELOPE])


def check_symptoms(scenario: Scenario) -> dict[str, frozenset[Symptom]]:
    """Check id → what its failure shows, for the scenario's checks across the run (its kinds declare it)."""
    return {check.id: check_kind(check).symptoms(getattr(check, check.kind)) for check in scenario.checks}


def check_needs(check: Check) -> frozenset[Capability]:
    """What one check reads: its kind's declared needs plus any it lists in ``requires``."""
    kind = check_kind(check)
    return kind.needs(getattr(check, check.kind)) | {capability(n) for n in check.requires}


def setup_needs(scenario: Scenario) -> frozenset[Capability]:
    """What the scenario's setup and steps need before anything can be played."""
    needed = {capability(name) for name in scenario.requires}
    if scenario.upstream is not None or scenario.absent_gateways:
        needed.add(Capability.UPSTREAM_CONTROL)
    if scenario.clock is not None:
        needed.add(Capability.CLOCK)
    # Tenants and environment are assumptions, not needs: a target arranges them where it can, otherwise
    # the SUT may meet them already (``aigw_harness.scenarios.assumptions``) or the scenario is not
    # applicable. Reference-gateway settings (``gateway``, ``budget_store``) apply where the reference gateway
    # runs and
    # are ignored elsewhere.
    for step in scenario.steps:
        needed |= step_kind(step).needs(step)
    return frozenset(needed)


def scenario_needs(scenario: Scenario) -> frozenset[Capability]:
    """Everything the scenario can use: its setup's and steps' needs and every check's."""
    needed = set(setup_needs(scenario))
    for check in scenario.checks:
        needed |= check_needs(check)
    return frozenset(needed)


def describe_missing(missing: Iterable[Capability]) -> str:
    """``ledger (reading what the system charged...), clock (moving the system's clock)``."""
    return ", ".join(f"{c.value} ({CAPABILITY_WORDS[c]})" for c in sorted(missing))


@dataclass(frozen=True, slots=True)
class Plan:
    """What of a scenario can run on a target with the given capabilities."""

    missing: frozenset[Capability]
    """Facts the setup or steps need that the target lacks: the scenario cannot be played."""
    skipped_checks: Mapping[str, frozenset[Capability]] = field(default_factory=dict)
    """Check id → the facts it needs that the target lacks: skipped alone."""

    @property
    def runnable(self) -> bool:
        return not self.missing

    def reason(self, target: str | None = None) -> str:
        who = f"target {target!r}" if target else "the target"
        return f"{who} cannot give {describe_missing(self.missing)}"


def plan(scenario: Scenario, capabilities: Iterable[Capability]) -> Plan:
    have = frozenset(capabilities)
    skipped = {check.id: missing for check in scenario.checks if (missing := check_needs(check) - have)}
    return Plan(missing=setup_needs(scenario) - have, skipped_checks=skipped)
