"""What a scenario assumes of the system under test, whether the SUT meets it, and which models its
configuration picks.

A scenario assumes its ``environment`` (those variables have those values), its ``assumes.unset`` (those
variables are not set) and its ``tenants`` (they exist as written). A target arranges what it can (var
overrides and unsets, tenant injection) and reports the SUT's effective configuration (``SutConfig``);
this module tests each assumption against it, or, where the target cannot read the configuration, asks
the SUT itself (``GET /health`` with ``x-tenant-id``, the platform's contract). An assumption that does
not hold makes the scenario *not applicable*, with the assumption named: never a finding.

Expected models that depend on configuration are written as references (``primary:TENANT``,
``fallback:TENANT``; ``aigw_harness.scenarios.model.MODEL_REFERENCE``) and resolved here by the platform's
precedence over the SUT's effective configuration (``choose_models``), or over what ``/health`` reports when
the target cannot read it. A reference to a fallback the SUT does not have makes the scenario not
applicable.

No I/O beyond that one probe; nothing here changes the SUT.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel

from aigw_harness.scenarios.model import MODEL_REFERENCE, Match, Scenario
from aigw_harness.scenarios.targets import Capability, ScenarioSetup, SutConfig, SystemUnderTest

__all__ = [
    "Assumption",
    "ModelChoice",
    "assumptions_of",
    "choose_models",
    "model_references",
    "resolve_models",
    "unmet",
]

# Model variables /health reports (the platform's /health: modelId = MODEL_ID ?? the tenant's chat model).
_HEALTH_FIELDS = {"MODEL_ID": "modelId", "FALLBACK_MODEL_ID": "fallbackModelId"}


@dataclass(frozen=True, slots=True)
class Assumption:
    kind: str
    """``env`` (a variable has a value), ``unset`` (a variable is not set), ``tenant``, or ``reference``
    (a reference-gateway setting the scenario is about)."""
    name: str
    """The variable or the tenant id."""
    value: Any = None
    """The variable's value, or the tenant's document."""
    inline: bool = False
    """A tenant written in the scenario (or changed from a file), not one of the catalogue's files."""

    def describe(self) -> str:
        if self.kind == "env":
            return f"{self.name}={self.value}"
        if self.kind == "unset":
            return f"{self.name} unset"
        if self.kind == "reference":
            return f"{self.name}={self.value}"
        return f"tenant {self.name!r}" + (" as the scenario gives it" if self.inline else "")


# Reference-gateway settings that change what is tested (not only how long to wait): a SUT other than the
# reference gateway does not have them, and the scenario is about them.
_REFERENCE_ONLY = ("output_reservation", "kv_propagation_delay_s", "kv_write_interval_s")


def assumptions_of(scenario: Scenario, setup: ScenarioSetup) -> list[Assumption]:
    """The scenario's assumptions, with its tenants as resolved in ``setup``."""
    found = [Assumption("env", k, v) for k, v in scenario.environment.items()]
    found.extend(
        Assumption("reference", f"gateway.{name}", value)
        for name in _REFERENCE_ONLY
        if (value := getattr(scenario.gateway, name))
    )
    found.extend(Assumption("unset", name) for name in scenario.assumes.unset)
    for entry, document in zip(scenario.tenants, setup.tenants, strict=False):
        tenant_id = str(document.get("tenantId") or document.get("id") or "")
        found.append(Assumption("tenant", tenant_id, document, inline=isinstance(entry, dict)))
    return found


def _difference(wanted: Any, have: Any, path: str = "") -> str | None:
    """Where ``have`` departs from ``wanted`` (keys ``wanted`` gives only), or ``None``."""
    if isinstance(wanted, Mapping):
        if not isinstance(have, Mapping):
            return f"{path or 'the document'}: {json.dumps(have)}"
        for key, value in wanted.items():
            if key == "extends":
                continue
            where = f"{path}.{key}" if path else str(key)
            if key not in have:
                return f"{where} missing"
            if (why := _difference(value, have[key], where)) is not None:
                return why
        return None
    if wanted != have:
        return f"{path} is {json.dumps(have, default=str)}, not {json.dumps(wanted, default=str)}"
    return None


async def _health(client: httpx.AsyncClient, sut: SystemUnderTest, tenant: str) -> tuple[int, Any]:
    try:
        response = await client.get(f"{sut.chat_url}/health", headers={"x-tenant-id": tenant})
    except httpx.HTTPError as exc:
        return 0, str(exc)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


async def unmet(
    assumptions: Sequence[Assumption], sut: SystemUnderTest, client: httpx.AsyncClient
) -> list[str]:
    """The assumptions the SUT does not meet, each as ``ASSUMPTION (why)``; empty when all hold."""
    arranged = Capability.TENANT_CONFIG in sut.capabilities
    config = sut.config
    tenants = [a for a in assumptions if a.kind == "tenant"]
    problems: list[str] = []
    for assumption in assumptions:
        why: str | None = None
        if assumption.kind in ("env", "unset"):
            if config is not None:
                have = config.vars.get(assumption.name)
                if assumption.kind == "env" and (have is None or str(have) != str(assumption.value)):
                    why = (
                        f"the SUT has {assumption.name}={have}"
                        if have is not None
                        else "the SUT does not set it"
                    )
                elif assumption.kind == "unset" and have is not None:
                    why = f"the SUT sets {assumption.name}={have}"
            elif not arranged:
                why = await _variable_by_health(assumption, tenants, sut, client)
        elif assumption.kind == "tenant":
            why = await _tenant_problem(assumption, sut, client, arranged)
        elif assumption.kind == "reference" and config is not None and not config.reference_gateway:
            why = "a setting of the reference gateway, which is not the system under test"
        if why is not None:
            problems.append(f"{assumption.describe()} ({why})")
    return problems


async def _variable_by_health(
    assumption: Assumption, tenants: Sequence[Assumption], sut: SystemUnderTest, client: httpx.AsyncClient
) -> str | None:
    """Read a model variable's effect another way: the platform's /health names the model it resolves."""
    field = _HEALTH_FIELDS.get(assumption.name)
    tenant = next((t for t in tenants if isinstance(t.value, Mapping)), None)
    if field is None or tenant is None:
        return "the target does not report the SUT's configuration"
    status, body = await _health(client, sut, tenant.name)
    reported = body.get("data", {}).get(field) if isinstance(body, Mapping) else None
    if status != 200 or not isinstance(reported, str):
        return f"the target does not report the SUT's configuration and /health answered {status}"
    default = (tenant.value.get("aiModels") or {}).get("chat")
    wanted = assumption.value if assumption.kind == "env" else default
    if reported != wanted:
        return f"/health reports {field} {reported}"
    return None


async def _tenant_problem(
    assumption: Assumption, sut: SystemUnderTest, client: httpx.AsyncClient, arranged: bool
) -> str | None:
    config = sut.config
    if config is not None and config.tenants is not None:
        have = config.tenants.get(assumption.name)
        if have is None:
            known = ", ".join(sorted(config.tenants)) or "none"
            return f"the SUT has no such tenant; it has {known}"
        difference = _difference(assumption.value, have)
        return f"the SUT's differs: {difference}" if difference else None
    if arranged:
        return None
    status, _ = await _health(client, sut, assumption.name)
    if status == 404:
        return "the SUT does not know it: GET /health with its x-tenant-id answered 404"
    if status != 200:
        return f"cannot tell: GET /health with its x-tenant-id answered {status or 'nothing'}"
    if assumption.inline:
        return "the SUT knows the tenant but its configuration cannot be read"
    return None


# --- expected models from the SUT's configuration ---------------------------------------------------------

_REFERENCE = re.compile(MODEL_REFERENCE)
type _Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The models the platform's precedence picks for a tenant's request that names no model."""

    primary: str
    fallback: str | None
    """``None``: no fallback call (it is the primary, or outside the tenant's allow-list)."""
    why: str
    """Where the two came from, for reasons (``MODEL_ID=..., FALLBACK_MODEL_ID unset: aiModels.chat``)."""

    def of(self, role: str) -> str | None:
        return self.primary if role == "primary" else self.fallback


def _setting(value: Any) -> str | None:
    # An empty variable names no model (the platform's documented intent; EMPTY-MODEL-ID checks it).
    return value if isinstance(value, str) and value else None


def _allow_listed(
    primary: str, fallback: str | None, tenant: Mapping[str, Any], why: list[str]
) -> str | None:
    flags = tenant.get("featureFlags")
    if isinstance(flags, Mapping) and flags.get("modelAllowList") is True and fallback is not None:
        allowed = tenant.get("allowedModels") or []
        if fallback not in allowed:
            why.append(f"{fallback} is outside the tenant's allowedModels, so there is no fallback")
            return None
    if fallback == primary:
        why.append("the fallback is the primary, so there is no fallback call")
        return None
    return fallback


def choose_models(variables: Mapping[str, Any], tenant: Mapping[str, Any]) -> ModelChoice:
    """The platform's rule (platform.md 2.4): primary ``MODEL_ID`` else the tenant's ``aiModels.chat``;
    fallback ``FALLBACK_MODEL_ID`` else the chat model, dropped when it equals the primary or, with the
    tenant's ``modelAllowList`` on, when it is not in ``allowedModels``."""
    models = tenant.get("aiModels")
    chat = models.get("chat") if isinstance(models, Mapping) else None
    chat = chat if isinstance(chat, str) else ""
    env_primary, env_fallback = (
        _setting(variables.get("MODEL_ID")),
        _setting(variables.get("FALLBACK_MODEL_ID")),
    )
    primary = env_primary or chat
    why = [
        f"MODEL_ID={env_primary}" if env_primary else f"MODEL_ID unset: aiModels.chat {chat}",
        f"FALLBACK_MODEL_ID={env_fallback}"
        if env_fallback
        else f"FALLBACK_MODEL_ID unset: aiModels.chat {chat}",
    ]
    fallback = _allow_listed(primary, env_fallback or chat, tenant, why)
    return ModelChoice(primary, fallback, ", ".join(why))


def _walk(value: Any, loc: _Loc) -> Iterator[tuple[_Loc, str]]:
    """Every model reference under ``value`` with where it is written (field aliases, as in the file)."""
    if isinstance(value, Match):
        if value.model is not None:
            yield (*loc, "model"), value.model
        return
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from _walk(getattr(value, name), (*loc, info.alias or name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*loc, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*loc, key))


def _rule_model(rule: Any) -> str | None:
    """A behaviour rule's ``match.model`` when it is a reference (a glob never looks like one)."""
    match = rule.get("match") if isinstance(rule, Mapping) else None
    model = match.get("model") if isinstance(match, Mapping) else None
    return model if isinstance(model, str) and _REFERENCE.match(model) else None


def _behaviour_references(document: Any, loc: _Loc) -> Iterator[tuple[_Loc, str]]:
    """References in a behaviour document: the keys of its ``models`` and its rules' ``match.model``."""
    if not isinstance(document, Mapping):
        return
    models = document.get("models")
    if isinstance(models, Mapping):
        for key in models:
            if isinstance(key, str) and _REFERENCE.match(key):
                yield (*loc, "models", key), key
    rules = document.get("rules")
    if isinstance(rules, list):
        for index, rule in enumerate(rules):
            reference = _rule_model(rule)
            if reference is not None:
                yield (*loc, "rules", index, "match", "model"), reference


def model_references(scenario: Scenario) -> list[tuple[_Loc, str, str]]:
    """Every model reference of a scenario: (where, the reference, the tenant it names). References are
    written in conditions (``{model: fallback:example}``, also as ``upstream_calls.models`` entries) and as
    the keys of a behaviour document's ``models``."""
    found = list(_walk(scenario, ()))
    found.extend(_behaviour_references(scenario.upstream, ("upstream",)))
    for index, step in enumerate(scenario.steps):
        found.extend(_behaviour_references(step.upstream, ("steps", index, "upstream")))
    out: list[tuple[_Loc, str, str]] = []
    for loc, reference in found:
        matched = _REFERENCE.match(reference)
        if matched:
            out.append((loc, reference, matched.group(2)))
    return out


def _resolve_behaviour(document: Any, resolve: Callable[[str], str]) -> Any:
    """A behaviour document with the references ``_behaviour_references`` finds (its ``models`` keys, its
    rules' ``match.model``) replaced by ``resolve``; the document itself when it holds none."""
    if not isinstance(document, Mapping):
        return document
    changed: dict[str, Any] = {}
    models = document.get("models")
    if isinstance(models, Mapping) and any(isinstance(k, str) and _REFERENCE.match(k) for k in models):
        changed["models"] = {
            (resolve(k) if isinstance(k, str) and _REFERENCE.match(k) else k): v for k, v in models.items()
        }
    rules = document.get("rules")
    if isinstance(rules, list) and any(_rule_model(rule) for rule in rules):
        changed["rules"] = [
            {**rule, "match": {**rule["match"], "model": resolve(reference)}}
            if (reference := _rule_model(rule)) is not None
            else rule
            for rule in rules
        ]
    return {**document, **changed} if changed else document


def _substitute(value: Any, resolve: Callable[[str], str]) -> Any:
    """``value`` with every condition's model reference (the ones ``_walk`` finds) resolved."""
    if isinstance(value, Match):
        if value.model is None:
            return value
        return value.model_copy(update={"equals": resolve(value.model)})  # model kept for reports
    if isinstance(value, BaseModel):
        updates = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _substitute(old, resolve)
            if new is not old:
                updates[name] = new
        return value.model_copy(update=updates) if updates else value
    if isinstance(value, list):
        listed = [_substitute(item, resolve) for item in value]
        return listed if any(a is not b for a, b in zip(listed, value, strict=True)) else value
    if isinstance(value, dict):
        items = {key: _substitute(item, resolve) for key, item in value.items()}
        changed = any(a is not b for a, b in zip(items.values(), value.values(), strict=True))
        return items if changed else value
    return value


def _resolved(scenario: Scenario, resolve: Callable[[str], str]) -> Scenario:
    """The scenario with every reference ``model_references`` finds resolved, each where it was found."""
    scenario = _substitute(scenario, resolve)
    steps = []
    for step in scenario.steps:
        upstream = _resolve_behaviour(step.upstream, resolve)
        steps.append(step if upstream is step.upstream else step.model_copy(update={"upstream": upstream}))
    upstream = _resolve_behaviour(scenario.upstream, resolve)
    return scenario.model_copy(update={"upstream": upstream, "steps": steps})


def _tenant_document(tenant_id: str, setup: ScenarioSetup, config: SutConfig | None) -> Mapping[str, Any]:
    if config is not None and config.tenants is not None and tenant_id in config.tenants:
        return config.tenants[tenant_id]
    for document in setup.tenants:
        if str(document.get("tenantId") or document.get("id") or "") == tenant_id:
            return document
    return {}


async def _choice_by_health(
    tenant_id: str, tenant: Mapping[str, Any], sut: SystemUnderTest, client: httpx.AsyncClient
) -> ModelChoice | str:
    status, body = await _health(client, sut, tenant_id)
    data = body.get("data") if isinstance(body, Mapping) else None
    primary = data.get("modelId") if isinstance(data, Mapping) else None
    fallback = data.get("fallbackModelId") if isinstance(data, Mapping) else None
    if status != 200 or not isinstance(primary, str) or not isinstance(fallback, str):
        return (
            "the target does not report the SUT's configuration and GET /health with its x-tenant-id "
            f"answered {status or 'nothing'} without modelId and fallbackModelId"
        )
    why = [f"/health reports modelId {primary}, fallbackModelId {fallback}"]
    return ModelChoice(primary, _allow_listed(primary, fallback, tenant, why), ", ".join(why))


async def resolve_models(
    scenario: Scenario, setup: ScenarioSetup, sut: SystemUnderTest, client: httpx.AsyncClient
) -> tuple[Scenario, list[str]]:
    """The scenario with every model reference replaced by the model the SUT's configuration picks, and
    the references that cannot be resolved (each ``REFERENCE (why)``: the scenario is then not
    applicable). The SUT's effective configuration decides (``sut.config``); without it, ``/health``."""
    references = model_references(scenario)
    if not references:
        return scenario, []
    choices: dict[str, ModelChoice | str] = {}
    for _, _, tenant_id in references:
        if tenant_id in choices:
            continue
        tenant = _tenant_document(tenant_id, setup, sut.config)
        if sut.config is not None:
            choices[tenant_id] = (
                choose_models(sut.config.vars, tenant)
                if tenant
                else "the scenario has no such tenant and the SUT reports none"
            )
        else:
            choices[tenant_id] = await _choice_by_health(tenant_id, tenant, sut, client)
    problems: dict[str, str] = {}
    resolved: dict[str, str] = {}
    for _, reference, tenant_id in references:
        role = reference.partition(":")[0]
        choice = choices[tenant_id]
        if isinstance(choice, str):
            problems[reference] = f"{reference} ({choice})"
        elif (model := choice.of(role)) is None:
            problems[reference] = f"{reference} (the SUT has no fallback for {tenant_id}: {choice.why})"
        else:
            resolved[reference] = model
    if problems:
        return scenario, list(problems.values())
    return _resolved(scenario, resolved.__getitem__), []
