"""The model catalogue: which models exist, their response shape and their neuron rates.

Built in: ``fakes/catalogue.json``. A file with the same shape (``FakeConfig.catalogue_file``) adds models
or replaces built-in ones by id. Usage reports neurons from the per-million-token rates; cost is priced in
``fakes.models.cost``.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fakes.datafiles import load_model, parse_model
from fakes.models.cost import neurons

__all__ = ["Catalogue", "CatalogueFile", "ModelInfo"]


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^@[\w.-]+/[\w.-]+/[\w.:-]+$")
    shape: Literal["native", "chat"]
    """``native``: ``{"response": ...}`` output and frames; ``chat``: chat.completion output and chunks."""
    model_type: str = "text-generation"
    neurons_per_m_input: float = Field(ge=0)
    neurons_per_m_output: float = Field(ge=0)
    usage_in_output: bool = True
    """Non-streamed output carries ``usage`` (older model schemas have none)."""
    prompt_tokens_details: bool = False
    """Usage carries ``prompt_tokens_details.cached_tokens``."""
    response_model: str | None = None
    """The ``model`` field of chat-shaped output, when it differs from the id (``-external``)."""
    max_tokens_default: int = Field(default=256, ge=1)
    source: str = ""

    def neurons(self, tokens_in: int, tokens_out: int) -> float:
        return neurons(tokens_in, tokens_out, self.neurons_per_m_input, self.neurons_per_m_output)


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelInfo]


class Catalogue:
    def __init__(self, models: list[ModelInfo]) -> None:
        self._models = {m.id: m for m in models}

    @classmethod
    def builtin(cls) -> Catalogue:
        text = resources.files("fakes.models").joinpath("catalogue.json").read_text(encoding="utf-8")
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

    def add(self, model: ModelInfo) -> None:
        self._models[model.id] = model

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models
