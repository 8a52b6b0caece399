"""The worst case of a scenario run against the real gateway, before it runs.

For each ``/chat`` request a scenario sends (``repeat × concurrency`` copies), the worst case is two
upstream calls (the primary model and the fallback), each with

- input: the session's history the gateway may send (the last ``MAX_HISTORY`` messages: every earlier
  message of the scenario, each assistant answer counted at the output bound) plus the message;
- output: the live target's bound on each answer (``max_output_tokens``, default ``LIVE_OUTPUT_TOKENS``;
  without it Workers AI's default of ``DEFAULT_MAX_TOKENS`` would apply).

Sessions are not told apart: every request is assumed to share one history, which can only overestimate.
The model is the request's, else the tenant's chat model (environment ``MODEL_ID``/``FALLBACK_MODEL_ID``
when the scenario sets them). Scenarios the live target would skip (they script the upstream, or check
its record of calls) are listed as skipped and cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigw_harness.live.cost import CostGuard, Estimate, PlannedRequest
from aigw_harness.live.guarded import LIVE_OUTPUT_TOKENS
from aigw_harness.scenarios.kinds import plan as plan_on
from aigw_harness.scenarios.loader import LoadedScenario, resolve_tenants
from aigw_harness.scenarios.model import Scenario
from aigw_harness.scenarios.targets import Capability

__all__ = ["MAX_HISTORY", "ScenarioPlan", "plan_scenarios"]

MAX_HISTORY = 50  # the platform's MAX_MESSAGE_COUNT


@dataclass
class ScenarioPlan:
    scenario_id: str
    path: Path
    requests: list[PlannedRequest] = field(default_factory=list)
    skipped: str | None = None
    estimates: list[Estimate] = field(default_factory=list)

    @property
    def usd(self) -> float:
        return sum(e.usd for e in self.estimates)

    @property
    def tokens(self) -> int:
        return sum(e.tokens for e in self.estimates)


def _models(scenario: Scenario, tenants: Sequence[Mapping[str, Any]], tenant: str | None) -> list[str]:
    chosen = next((t for t in tenants if t.get("tenantId") == tenant), tenants[0] if tenants else {})
    chat = str((chosen.get("aiModels") or {}).get("chat", "@cf/meta/llama-3.1-8b-instruct-fp8-fast"))
    environment = {**scenario.environment_defaults, **scenario.environment}
    primary = environment.get("MODEL_ID", chat)
    fallback = environment.get("FALLBACK_MODEL_ID", chat)
    return [primary, fallback]


def _scenario_requests(
    scenario: Scenario, tenants: Sequence[Mapping[str, Any]], output_tokens: int
) -> list[PlannedRequest]:
    history: list[dict[str, str]] = []
    planned: list[PlannedRequest] = []
    for index, step in enumerate(scenario.steps):
        spec = step.request
        if spec is None or spec.method != "POST" or spec.path != "/chat":
            continue
        message = "x" * spec.message_chars if spec.message_chars else spec.message
        if isinstance(spec.body, dict) and isinstance(spec.body.get("message"), str):
            message = spec.body["message"]
        for copy in range(step.repeat * step.concurrency):
            history.append({"role": "user", "content": message})
            models = [spec.model] if spec.model else _models(scenario, tenants, spec.tenant)
            for attempt, model in enumerate(models):
                planned.append(
                    PlannedRequest(
                        name=f"{step.name or f'step-{index}'}#{copy + 1}.{attempt + 1}",
                        model=model,
                        messages=list(history[-MAX_HISTORY:]),
                        max_tokens=output_tokens,
                    )
                )
            # The answer joins the history; its tokens count as input later (bytes ≥ tokens, so pad).
            history.append({"role": "assistant", "content": "x" * output_tokens})
    return planned


def plan_scenarios(
    loaded: Sequence[LoadedScenario],
    tenants_dir: Path,
    guard: CostGuard,
    capabilities: frozenset[Capability],
    output_tokens: int = LIVE_OUTPUT_TOKENS,
) -> list[ScenarioPlan]:
    """Per scenario: its worst-case requests and estimates, or why the live target would skip it."""
    plans: list[ScenarioPlan] = []
    for item in loaded:
        scenario = item.scenario
        plan = ScenarioPlan(scenario.id, item.path)
        missing = plan_on(scenario, capabilities).missing  # checks it cannot give are skipped alone
        if missing:
            plan.skipped = f"skipped on live: needs {', '.join(sorted(missing))}"
        else:
            plan.requests = _scenario_requests(
                scenario, resolve_tenants(scenario, tenants_dir), output_tokens
            )
            plan.estimates = guard.plan(plan.requests)
        plans.append(plan)
    return plans
