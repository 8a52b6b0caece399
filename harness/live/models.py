"""Which models a live run will ask for, and what the account's model list says about each.

A live run names models in three places: the tenant files (``aiModels``, ``allowedModels``), the
environment (``MODEL_ID``, ``FALLBACK_MODEL_ID``: the process's own, and each scenario's ``environment``)
and ``--model``. Preflight looks every one up in the account's model list
(``GET /accounts/{account}/ai/models/search``) before a request is spent, and reads the lifecycle there:
a ``planned_deprecation_date`` property in the past means retired, in the future a planned retirement.
Cloudflare's changelog adds what the list may not say (checked against cloudflare-docs):

- 2026-05-30, "Planned model deprecations on Workers AI": eighteen models retired (``RETIRED``); the
  ``-fast`` and ``-lora`` variants stay.
- 2026-07-28, "Select models now require the Workers Paid plan" (``WORKERS_PAID``): on the Free plan these
  answer HTTP 403 with internal code 5035.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "RETIRED",
    "RETIRED_ON",
    "WORKERS_PAID",
    "ModelLifecycle",
    "lifecycle_of",
    "models_named",
]

RETIRED_ON = date(2026, 5, 30)
RETIRED: dict[str, str | None] = {
    # model -> the model requests are aliased to, if any
    "@cf/moonshotai/kimi-k2.5": "@cf/moonshotai/kimi-k2.6",
    "@hf/meta-llama/meta-llama-3-8b-instruct": None,
    "@cf/meta/llama-3-8b-instruct": None,
    "@cf/meta/llama-3-8b-instruct-awq": None,
    "@cf/meta/llama-3.1-8b-instruct": None,
    "@cf/meta/llama-3.1-8b-instruct-awq": None,
    "@cf/meta/llama-3.1-70b-instruct": None,
    "@cf/meta/llama-2-7b-chat-int8": None,
    "@cf/meta/llama-2-7b-chat-fp16": None,
    "@cf/mistral/mistral-7b-instruct-v0.1": None,
    "@hf/mistral/mistral-7b-instruct-v0.2": None,
    "@hf/google/gemma-7b-it": None,
    "@cf/google/gemma-3-12b-it": None,
    "@hf/nousresearch/hermes-2-pro-mistral-7b": None,
    "@cf/microsoft/phi-2": None,
    "@cf/defog/sqlcoder-7b-2": None,
    "@cf/unum/uform-gen2-qwen-500m": None,
    "@cf/facebook/bart-large-cnn": None,
}
"""Retired by Workers AI on ``RETIRED_ON``."""

WORKERS_PAID = frozenset({"@cf/moonshotai/kimi-k2.6", "@cf/moonshotai/kimi-k2.7-code", "@cf/zai-org/glm-5.2"})
"""Models that need the Workers Paid plan since 2026-07-28."""

_MODEL_VARS = ("MODEL_ID", "FALLBACK_MODEL_ID")


@dataclass(frozen=True)
class ModelLifecycle:
    """What is known about one model on the day of the check."""

    model: str
    listed: bool
    """The account's model list has it."""
    retired_on: str | None = None
    """ISO date it was (or will be) retired, from the list's ``planned_deprecation_date`` or the changelog."""
    retired: bool = False
    """Retired by the day of the check."""
    alias: str | None = None
    paid_only: bool = False

    def problem(self) -> str | None:
        """A sentence saying what is wrong, or None when the model can be used."""
        if self.retired:
            target = f"; requests go to {self.alias}" if self.alias else ""
            return f"retired on {self.retired_on}{target}"
        if not self.listed:
            return "not in the account's model list (removed, misspelt or not available to the account)"
        return None

    def caution(self) -> str | None:
        """Something to know that does not stop the run."""
        notes = []
        if self.retired_on and not self.retired:
            notes.append(f"to be retired on {self.retired_on}")
        if self.paid_only:
            notes.append("needs the Workers Paid plan (on Free: HTTP 403, code 5035)")
        return "; ".join(notes) or None


def _properties(entry: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in entry.get("properties") or []:
        if isinstance(item, Mapping) and isinstance(item.get("property_id"), str):
            found[item["property_id"]] = item.get("value")
    return found


def lifecycle_of(
    model: str, listed: Sequence[Mapping[str, Any]], today: date | None = None
) -> ModelLifecycle:
    """``listed``: the model list's entries for a search by this model's name."""
    day = today or datetime.now(UTC).date()
    entry = next((e for e in listed if e.get("name") == model), None)
    props = _properties(entry) if entry is not None else {}
    retired_on: str | None = None
    planned = props.get("planned_deprecation_date")
    if isinstance(planned, str) and planned[:10]:
        retired_on = planned[:10]
    elif model in RETIRED:
        retired_on = RETIRED_ON.isoformat()
    when = _date(retired_on) if retired_on else None
    retired = when is not None and when <= day
    paid = str(props.get("require_workers_paid", "")).lower() == "true" or model in WORKERS_PAID
    return ModelLifecycle(
        model=model,
        listed=entry is not None,
        retired_on=retired_on,
        retired=retired,
        alias=RETIRED.get(model),
        paid_only=paid,
    )


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _tenant_models(document: Mapping[str, Any]) -> list[str]:
    models: list[str] = []
    ai_models = document.get("aiModels")
    if isinstance(ai_models, Mapping):
        # Only generation models are asked for on the chat path; embeddings are another product.
        chat = ai_models.get("chat")
        if isinstance(chat, str):
            models.append(chat)
    flags = document.get("featureFlags")
    allowed = document.get("allowedModels")
    if isinstance(flags, Mapping) and flags.get("modelAllowList") and isinstance(allowed, list):
        models.extend(m for m in allowed if isinstance(m, str))
    return models


def models_named(
    tenant_files: Iterable[Path],
    environments: Iterable[Mapping[str, str]] = (),
    extra: Iterable[str] = (),
) -> dict[str, list[str]]:
    """Every model a live run would name, with where each is named (``file``, ``VAR``), sorted."""
    named: dict[str, list[str]] = {}

    def add(model: str, where: str) -> None:
        places = named.setdefault(model.strip(), [])
        if where not in places:
            places.append(where)

    for path in sorted(tenant_files):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # the tenants loader reports bad files with their line; preflight only reads names
        if isinstance(document, Mapping):
            for model in _tenant_models(document):
                add(model, path.name)
    for environment in environments:
        for var in _MODEL_VARS:
            value = environment.get(var, "").strip()
            if value:
                add(value, var)
    for model in extra:
        add(model, "--model")
    return dict(sorted((k, v) for k, v in named.items() if k))
