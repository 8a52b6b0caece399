"""Preflight: before a live run spends anything, check the token, the gateway, its logging and the models.

Each check says what it found and, when it fails, exactly what to change: which permission the token
lacks, which variable to set, which gateway setting to turn on. Checks run in order and later ones are
skipped (with the reason) when an earlier one makes them meaningless, e.g. no gateway check with an
invalid token. Every model is looked up in the account's model list; a retired or unlisted model fails the
preflight, a planned retirement or a Workers Paid model is a warning (``aigw_harness.live.models``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from aigw_harness.live.client import ApiAnswer, CloudflareClient
from aigw_harness.live.credentials import GATEWAY_ID_ENV, GATEWAY_TOKEN_ENV
from aigw_harness.live.models import lifecycle_of

__all__ = ["CheckState", "PreflightCheck", "PreflightReport", "run_preflight"]

AUTH_ERROR_CODES = {9106, 9109, 10000, 10001, 1000}


class CheckState(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True)
class PreflightCheck:
    name: str
    state: CheckState
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class PreflightReport:
    checks: list[PreflightCheck]
    gateway_authenticated: bool | None = None

    @property
    def ok(self) -> bool:
        return all(c.state in (CheckState.PASS, CheckState.WARN) for c in self.checks)

    def render(self) -> str:
        lines = []
        for check in self.checks:
            lines.append(f"[{check.state.value:>4}] {check.name}: {check.detail}")
            if check.fix:
                lines.append(f"       fix: {check.fix}")
        return "\n".join(lines)


def _denied(answer: ApiAnswer) -> bool:
    return answer.status in (401, 403) or bool(AUTH_ERROR_CODES & set(answer.error_codes))


async def run_preflight(
    client: CloudflareClient,
    models: Sequence[str] | Mapping[str, Sequence[str]],
    today: date | None = None,
) -> PreflightReport:
    """``models``: the models to look up, or each with where it is named (``models_named``); ``today``
    decides whether a retirement date has passed (default: today, UTC)."""
    checks: list[PreflightCheck] = []
    creds = client.credentials
    gw = creds.gateway_id

    token = await client.api_get("user/tokens/verify")
    if token.status != 200:
        token = await client.account_get("tokens/verify")  # account-owned tokens verify here
    status = token.result.get("status") if isinstance(token.result, dict) else None
    if token.status == 200 and status == "active":
        checks.append(PreflightCheck("API token", CheckState.PASS, "valid and active"))
    else:
        seen = f"status {status}" if status else f"HTTP {token.status}, codes {token.error_codes or 'none'}"
        checks.append(
            PreflightCheck(
                "API token",
                CheckState.FAIL,
                f"Cloudflare does not accept the token ({seen})",
                "create a new API token (My Profile → API Tokens) and set CLOUDFLARE_API_TOKEN",
            )
        )
        skipped = "skipped: the token is not valid"
        for name in ("gateway", "gateway logging", "gateway authentication", "Logs API", "models"):
            checks.append(PreflightCheck(name, CheckState.SKIP, skipped))
        return PreflightReport(checks)

    gateway = await client.account_get(f"ai-gateway/gateways/{gw}")
    settings = gateway.result if gateway.status == 200 and isinstance(gateway.result, dict) else None
    if settings is not None:
        checks.append(PreflightCheck("gateway", CheckState.PASS, f"gateway {gw} exists"))
    elif _denied(gateway):
        checks.append(
            PreflightCheck(
                "gateway",
                CheckState.FAIL,
                f"the token may not read AI Gateway settings (HTTP {gateway.status})",
                "add the permission Account → AI Gateway → Read to the token",
            )
        )
    elif gateway.status == 404:
        checks.append(
            PreflightCheck(
                "gateway",
                CheckState.FAIL,
                f"no gateway {gw} in this account",
                f"create it (AI → AI Gateway → Create) or set {GATEWAY_ID_ENV} to an existing gateway",
            )
        )
    else:
        checks.append(
            PreflightCheck(
                "gateway", CheckState.FAIL, f"unexpected answer HTTP {gateway.status}", "retry later"
            )
        )

    authenticated: bool | None = None
    if settings is None:
        checks.append(PreflightCheck("gateway logging", CheckState.SKIP, "skipped: the gateway was not read"))
        checks.append(
            PreflightCheck("gateway authentication", CheckState.SKIP, "skipped: the gateway was not read")
        )
    else:
        if settings.get("collect_logs") is False:
            checks.append(
                PreflightCheck(
                    "gateway logging",
                    CheckState.FAIL,
                    f"gateway {gw} does not collect logs, so routing cannot be verified",
                    "turn on logging in the gateway's settings (collect_logs)",
                )
            )
        else:
            checks.append(PreflightCheck("gateway logging", CheckState.PASS, "logs are collected"))
        authenticated = bool(settings.get("authentication"))
        if authenticated and creds.gateway_token is None:
            checks.append(
                PreflightCheck(
                    "gateway authentication",
                    CheckState.FAIL,
                    f"gateway {gw} is authenticated and no gateway token is set",
                    f"set {GATEWAY_TOKEN_ENV} to a token with AI Gateway Run (sent as cf-aig-authorization)",
                )
            )
        else:
            detail = "authenticated; a gateway token is set" if authenticated else "not authenticated"
            checks.append(PreflightCheck("gateway authentication", CheckState.PASS, detail))

    logs = await client.account_get(f"ai-gateway/gateways/{gw}/logs", {"per_page": "1"})
    if logs.status == 200:
        checks.append(PreflightCheck("Logs API", CheckState.PASS, "logs can be listed"))
    elif _denied(logs):
        checks.append(
            PreflightCheck(
                "Logs API",
                CheckState.FAIL,
                f"the token may not read gateway logs (HTTP {logs.status})",
                "add the permission Account → AI Gateway → Read to the token",
            )
        )
    else:
        checks.append(PreflightCheck("Logs API", CheckState.FAIL, f"unexpected answer HTTP {logs.status}"))

    for model in sorted(set(models)):
        named_in = models.get(model) if isinstance(models, Mapping) else None
        checks.append(await _model_check(client, model, named_in, today))
    return PreflightReport(checks, authenticated)


async def _model_check(
    client: CloudflareClient, model: str, named_in: Sequence[str] | None, today: date | None
) -> PreflightCheck:
    name = f"model {model}"
    where = f" (named in {', '.join(named_in)})" if named_in else ""
    found = await client.account_get("ai/models/search", {"search": model})
    if _denied(found):
        return PreflightCheck(
            name,
            CheckState.FAIL,
            f"the token may not use Workers AI (HTTP {found.status})",
            "add the permission Account → Workers AI → Read to the token",
        )
    if found.status != 200 or not isinstance(found.result, list):
        return PreflightCheck(name, CheckState.WARN, f"could not list models (HTTP {found.status}){where}")
    entries = [e for e in found.result if isinstance(e, Mapping)]
    life = lifecycle_of(model, entries, today)
    problem = life.problem()
    if problem is not None:
        fix = "name a current model in the tenant file or variable (see the Workers AI models page)"
        if life.alias:
            fix = f"name {life.alias} (and check its price) or another current model"
        return PreflightCheck(name, CheckState.FAIL, f"{problem}{where}", fix)
    caution = life.caution()
    if caution is not None:
        return PreflightCheck(name, CheckState.WARN, f"available, but {caution}{where}")
    return PreflightCheck(name, CheckState.PASS, f"available to the account{where}")
