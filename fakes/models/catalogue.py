"""The model catalogue: which models exist when, their response shape, neuron rates and plan needs.

Built in: ``fakes/models/catalogue.json``. A file with the same shape (``FakeConfig.catalogue_file``) adds
models or replaces built-in ones by id. Usage reports neurons from the per-million-token rates (a model
whose rates are not known reports none, and its logs carry no cost); cost is priced in
``aigw_fakes.models.cost``.

Lifecycle, judged by the fake's clock (UTC days) so that a scenario set in the past sees the models of its
time: ``available_from`` (before it, the model does not exist), ``retired_on`` (from it, the model is
retired; with ``alias_of`` its requests are served by that model instead, as Kimi K2.5 -> K2.6 on
2026-05-30), ``paid_plan_from`` (from it, accounts on the Workers Free plan get 403 with code 5035, as
Kimi K2.6, Kimi K2.7 Code and GLM-5.2 since 2026-07-28). ``Catalogue.resolve`` applies them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aigw_fakes.datafiles import load_model, parse_model
from aigw_fakes.models.cost import neurons

__all__ = ["Availability", "Catalogue", "CatalogueFile", "ModelInfo", "Resolved"]


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^@[\w.-]+/[\w.-]+/[\w.:-]+$")
    shape: Literal["native", "chat"]
    """``native``: ``{"response": ...}`` output and frames; ``chat``: chat.completion output and chunks."""
    model_type: str = "text-generation"
    neurons_per_m_input: float | None = Field(default=None, ge=0)
    neurons_per_m_output: float | None = Field(default=None, ge=0)
    """Rates per million tokens; unset when Cloudflare's pricing for the model is not known here."""
    usage_in_output: bool = True
    """Non-streamed output carries ``usage`` (older model schemas have none)."""
    prompt_tokens_details: bool = False
    """Usage carries ``prompt_tokens_details.cached_tokens``."""
    response_model: str | None = None
    """The ``model`` field of chat-shaped output, when it differs from the id (``-external``)."""
    max_tokens_default: int = Field(default=256, ge=1)
    context_window: int | None = Field(default=None, ge=1)
    """Tokens of prompt plus ``max_tokens`` the model accepts; unset: not checked."""
    available_from: date | None = None
    retired_on: date | None = None
    alias_of: str | None = None
    """From ``retired_on``, requests for this model are served by that one."""
    paid_plan_from: date | None = None
    source: str = ""

    def neurons(self, tokens_in: int, tokens_out: int) -> float | None:
        if self.neurons_per_m_input is None and self.neurons_per_m_output is None:
            return None
        rate_in, rate_out = self.neurons_per_m_input or 0.0, self.neurons_per_m_output or 0.0
        return neurons(tokens_in, tokens_out, rate_in, rate_out)


class Availability(StrEnum):
    SERVED = "served"
    UNKNOWN = "unknown"  # not in the catalogue, or not available yet at that date
    RETIRED = "retired"
    PAID_PLAN = "paid_plan"  # needs the Workers Paid plan


@dataclass(frozen=True, slots=True)
class Resolved:
    availability: Availability
    model: ModelInfo | None  # the model that answers (the alias target for an aliased model)
    requested: ModelInfo | None = None


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelInfo]


class Catalogue:
    def __init__(self, models: list[ModelInfo]) -> None:
        self._models = {m.id: m for m in models}

    @classmethod
    def builtin(cls) -> Catalogue:
        text = resources.files("aigw_fakes.models").joinpath("catalogue.json").read_text(encoding="utf-8")
        return cls(parse_model(text, CatalogueFile, "fakes/models/catalogue.json").models)

    @classmethod
    def load(cls, extra_file: str | Path | None = None) -> Catalogue:
        catalogue = cls.builtin()
        if extra_file is not None:
            for model in load_model(extra_file, CatalogueFile).models:
                catalogue._models[model.id] = model
        return catalogue

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def resolve(self, model_id: str, when: float, *, free_plan: bool = False) -> Resolved:
        """What a request for ``model_id`` meets at epoch second ``when`` (the fake's clock)."""
        day = datetime.fromtimestamp(when, UTC).date()
        requested = self._models.get(model_id)
        model = requested
        for _ in range(len(self._models)):  # an alias chain, never a cycle
            if model is None or (model.available_from is not None and day < model.available_from):
                return Resolved(Availability.UNKNOWN, None, requested)
            if model.retired_on is None or day < model.retired_on:
                break
            if model.alias_of is None:
                return Resolved(Availability.RETIRED, model, requested)
            model = self._models.get(model.alias_of)
        if model is None:
            return Resolved(Availability.UNKNOWN, None, requested)
        if free_plan and model.paid_plan_from is not None and day >= model.paid_plan_from:
            return Resolved(Availability.PAID_PLAN, model, requested)
        return Resolved(Availability.SERVED, model, requested)

    def add(self, model: ModelInfo) -> None:
        self._models[model.id] = model

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models
