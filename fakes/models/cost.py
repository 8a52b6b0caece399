"""The cost a gateway log carries: Workers AI neurons priced at $0.011 per 1,000, or ``cf-aig-custom-cost``.

Cloudflare estimates cost from the tokens sent and received, only when the response reports tokens and a
model. For Workers AI the cost is neurons x $0.011/1000, with neurons from the model's per-million-token
rates (for example llama-3.2-3b-instruct: 4,625 in, 30,475 out; 42 in + 2 out = 0.2552 neurons).
``cf-aig-custom-cost: {"per_token_in": a, "per_token_out": b}`` (or ``{"total_cost": n}``) replaces the
estimate and marks the log ``custom_cost: true``; it too applies only to responses that carry tokens.
Cache hits and refused requests cost 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aigw_fakes.hardened_http import loads_strict

__all__ = ["USD_PER_NEURON", "CustomCost", "LogCost", "log_cost", "neurons", "parse_custom_cost"]

USD_PER_NEURON = 0.011 / 1000


@dataclass(frozen=True, slots=True)
class CustomCost:
    per_token_in: float = 0.0
    per_token_out: float = 0.0
    total_cost: float | None = None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def parse_custom_cost(raw: str | None) -> CustomCost | None:
    """The ``cf-aig-custom-cost`` header, or ``None`` when absent or not a usable JSON object."""
    if not raw:
        return None
    try:
        data = loads_strict(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    total = _number(data.get("total_cost"))
    if total is not None:
        return CustomCost(total_cost=total)
    per_in = _number(data.get("per_token_in"))
    per_out = _number(data.get("per_token_out"))
    if per_in is None and per_out is None:
        return None
    return CustomCost(per_token_in=per_in or 0.0, per_token_out=per_out or 0.0)


def neurons(tokens_in: int, tokens_out: int, neurons_per_m_in: float, neurons_per_m_out: float) -> float:
    return (tokens_in * neurons_per_m_in + tokens_out * neurons_per_m_out) / 1_000_000


@dataclass(frozen=True, slots=True)
class LogCost:
    cost: float | None
    custom: bool


def log_cost(
    *,
    tokens_in: int | None,
    tokens_out: int | None,
    neurons_per_m_in: float | None,
    neurons_per_m_out: float | None,
    custom: CustomCost | None = None,
    charged: bool = True,
) -> LogCost:
    """The ``cost``/``custom_cost`` pair of one log; ``charged`` is false for cache hits and refusals."""
    if not charged:
        return LogCost(0.0, False)
    if tokens_in is None and tokens_out is None:
        return LogCost(None, False)
    tin, tout = tokens_in or 0, tokens_out or 0
    if custom is not None:
        if custom.total_cost is not None:
            return LogCost(custom.total_cost, True)
        return LogCost(tin * custom.per_token_in + tout * custom.per_token_out, True)
    if neurons_per_m_in is None and neurons_per_m_out is None:
        return LogCost(None, False)
    used = neurons(tin, tout, neurons_per_m_in or 0.0, neurons_per_m_out or 0.0)
    return LogCost(used * USD_PER_NEURON, False)
