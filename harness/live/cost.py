"""The cost guard: a worst-case estimate before a live run, hard caps during it.

Workers AI bills neurons: each model has a rate per million input tokens and per million output tokens,
and 1,000 neurons cost $0.011 (10,000 neurons a day are free; the guard ignores the free allocation, so
its estimate is an upper bound). The worst case of one request assumes

- input tokens ≤ the UTF-8 bytes of the prompt, plus a chat-template allowance per message;
- output tokens = the request's ``max_tokens`` (the model can stop earlier, never later).

``CostGuard.check_plan`` refuses a plan whose worst case exceeds any cap (requests, tokens, dollars), and
says which cap and how to raise it; ``admit`` counts requests as they are sent and refuses the one that
would break a cap, so that a bug in a plan cannot run up a bill.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aigw_harness.errors import ConfigError, HarnessError

__all__ = [
    "NEURON_RATES",
    "USD_PER_NEURON",
    "CostCapExceeded",
    "CostCaps",
    "CostGuard",
    "Estimate",
    "NeuronRate",
    "PlannedRequest",
    "estimate",
]

USD_PER_NEURON = 0.011 / 1000
TEMPLATE_TOKENS_PER_MESSAGE = 16
TEMPLATE_TOKENS_PER_REQUEST = 32


@dataclass(frozen=True)
class NeuronRate:
    input_per_million: float
    output_per_million: float


NEURON_RATES: dict[str, NeuronRate] = {
    # Workers AI pricing page (neurons per million tokens).
    "@cf/meta/llama-3.2-3b-instruct": NeuronRate(4625, 30475),
    "@cf/meta/llama-3.1-8b-instruct": NeuronRate(25608, 75147),
    "@cf/meta/llama-3.1-8b-instruct-fp8-fast": NeuronRate(4119, 34868),
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": NeuronRate(26668, 204805),
}
"""Known rates. ``-fast`` variants without a published rate are priced as their base model (dearer)."""

_ALIASES = {"@cf/meta/llama-3.1-8b-instruct-fast": "@cf/meta/llama-3.1-8b-instruct"}


def rate_for(model: str, extra: Mapping[str, NeuronRate] | None = None) -> NeuronRate:
    if extra and model in extra:
        return extra[model]
    known = NEURON_RATES.get(model) or NEURON_RATES.get(_ALIASES.get(model, ""))
    if known is None:
        raise ConfigError(
            f"no neuron rate is known for model {model}; give one with --neuron-rate {model}=IN,OUT "
            f"(neurons per million input and output tokens, from the Workers AI pricing page)"
        )
    return known


@dataclass(frozen=True)
class PlannedRequest:
    """One request a live run intends to send."""

    name: str
    model: str
    messages: Sequence[Mapping[str, str]]
    max_tokens: int
    stream: bool = True
    path: str = "rest"
    """``rest`` (the gateway's provider-native endpoint) or ``binding`` (the spike Worker)."""

    def body(self) -> dict[str, Any]:
        return {
            "messages": [dict(m) for m in self.messages],
            "max_tokens": self.max_tokens,
            "stream": self.stream,
        }


@dataclass(frozen=True)
class Estimate:
    name: str
    model: str
    input_tokens: int
    output_tokens: int
    neurons: float
    usd: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def estimate(request: PlannedRequest, extra_rates: Mapping[str, NeuronRate] | None = None) -> Estimate:
    rate = rate_for(request.model, extra_rates)
    prompt_bytes = len(json.dumps([dict(m) for m in request.messages], ensure_ascii=False).encode())
    input_tokens = (
        prompt_bytes + TEMPLATE_TOKENS_PER_MESSAGE * len(request.messages) + TEMPLATE_TOKENS_PER_REQUEST
    )
    output_tokens = request.max_tokens
    neurons = (input_tokens * rate.input_per_million + output_tokens * rate.output_per_million) / 1_000_000
    return Estimate(
        request.name, request.model, input_tokens, output_tokens, neurons, neurons * USD_PER_NEURON
    )


@dataclass(frozen=True)
class CostCaps:
    max_requests: int = 20
    max_tokens: int = 20_000
    max_usd: float = 0.05

    def __post_init__(self) -> None:
        if self.max_requests < 0 or self.max_tokens < 0 or self.max_usd < 0:
            raise ConfigError("cost caps must not be negative (--max-requests, --max-tokens, --max-usd)")


class CostCapExceeded(HarnessError):
    """A plan or a request would go over a cap; the message names the cap and the flag that raises it."""


@dataclass
class CostGuard:
    caps: CostCaps
    extra_rates: Mapping[str, NeuronRate] = field(default_factory=dict)
    requests: int = 0
    tokens: int = 0
    usd: float = 0.0

    def plan(self, requests: Sequence[PlannedRequest]) -> list[Estimate]:
        return [estimate(r, self.extra_rates) for r in requests]

    def check_plan(self, requests: Sequence[PlannedRequest]) -> list[Estimate]:
        """The estimates, or ``CostCapExceeded`` naming every cap the worst case breaks."""
        estimates = self.plan(requests)
        total_tokens = sum(e.tokens for e in estimates)
        total_usd = sum(e.usd for e in estimates)
        problems = self._over(len(estimates), total_tokens, total_usd)
        if problems:
            raise CostCapExceeded(
                "the run's worst case is over its caps, so it did not start:\n"
                + "\n".join(f"  {p}" for p in problems)
                + "\nLower max_tokens or the number of probes, or raise the cap explicitly."
            )
        return estimates

    def admit(self, request: PlannedRequest) -> Estimate:
        """Count one request about to be sent; refuse it if the running totals would break a cap."""
        one = estimate(request, self.extra_rates)
        problems = self._over(self.requests + 1, self.tokens + one.tokens, self.usd + one.usd)
        if problems:
            raise CostCapExceeded(f"request {request.name} refused: " + "; ".join(problems))
        self.requests += 1
        self.tokens += one.tokens
        self.usd += one.usd
        return one

    def _over(self, requests: int, tokens: int, usd: float) -> list[str]:
        problems = []
        if requests > self.caps.max_requests:
            problems.append(f"{requests} requests > cap {self.caps.max_requests} (raise with --max-requests)")
        if tokens > self.caps.max_tokens:
            problems.append(f"{tokens} tokens > cap {self.caps.max_tokens} (raise with --max-tokens)")
        if usd > self.caps.max_usd:
            problems.append(f"${usd:.6f} > cap ${self.caps.max_usd:.6f} (raise with --max-usd)")
        return problems


def parse_rate(text: str) -> tuple[str, NeuronRate]:
    """``MODEL=IN,OUT`` from ``--neuron-rate``."""
    model, eq, numbers = text.rpartition("=")
    parts = numbers.split(",")
    try:
        if not eq or not model or len(parts) != 2:
            raise ValueError
        rate = NeuronRate(float(parts[0]), float(parts[1]))
    except ValueError:
        raise ConfigError(
            f"--neuron-rate {text!r}: expected MODEL=IN,OUT, e.g. @cf/meta/llama-3.2-3b-instruct=4625,30475"
        ) from None
    if rate.input_per_million < 0 or rate.output_per_million < 0:
        raise ConfigError(f"--neuron-rate {text!r}: rates must not be negative")
    return model, rate
