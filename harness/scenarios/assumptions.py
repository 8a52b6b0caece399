"""What a scenario assumes of the system under test, and whether the SUT meets it.

A scenario assumes its ``environment`` (those variables have those values), its ``assumes.unset`` (those
variables are not set) and its ``tenants`` (they exist as written). A target arranges what it can (var
overrides and unsets, tenant injection) and reports the SUT's effective configuration (``SutConfig``);
this module tests each assumption against it, or, where the target cannot read the configuration, asks
the SUT itself (``GET /health`` with ``x-tenant-id``, the platform's contract). An assumption that does
not hold makes the scenario *not applicable*, with the assumption named: never a finding.

No I/O beyond that one probe; nothing here changes the SUT.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from aigw_harness.scenarios.model import Scenario
from aigw_harness.scenarios.targets import Capability, ScenarioSetup, SystemUnderTest

__all__ = ["Assumption", "assumptions_of", "unmet"]

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
