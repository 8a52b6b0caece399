"""Measurements from recorded exchanges: time to first token, inter-token gaps, tokens per second, duration.

All values are at the scenario's nominal time scale. Percentiles use the nearest-rank method, so every
reported figure is one that was actually observed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

from aigw_harness.report.results import Exchange, Measurement
from aigw_harness.report.stats import percentile
from aigw_harness.scenarios.kinds import MeasurementKind, Symptom
from aigw_harness.scenarios.targets import Capability

__all__ = ["UNITS", "measurement", "percentile", "samples", "scenario_measurements"]

UNITS = {
    "ttft_ms": "ms",
    "inter_token_gap_ms": "ms",
    "tokens_per_s": "events/s",
    "duration_ms": "ms",
    "data_events": "events",
    "overshoot_tokens": "tokens",
}
"""Each measurement's unit; the kinds below say what each needs and how its samples are taken."""
_MAX_SAMPLES = 500


def _data_times(exchange: Exchange) -> list[float]:
    return [e.t_ms for e in exchange.events if e.event == "message"]


def samples(name: str, exchanges: Iterable[Exchange]) -> list[float]:
    """The raw samples of one measurement over the given exchanges (streams only)."""
    out: list[float] = []
    for exchange in exchanges:
        if not exchange.stream:
            if name == "duration_ms" and exchange.duration_ms is not None:
                out.append(exchange.duration_ms)
            continue
        times = _data_times(exchange)
        if name == "ttft_ms" and exchange.ttft_ms is not None:
            out.append(exchange.ttft_ms)
        elif name == "inter_token_gap_ms":
            out.extend(round(b - a, 3) for a, b in itertools.pairwise(times))
        elif name == "tokens_per_s" and len(times) >= 2 and times[-1] > times[0]:
            out.append(round((len(times) - 1) / ((times[-1] - times[0]) / 1000.0), 3))
        elif name == "duration_ms" and exchange.duration_ms is not None:
            out.append(exchange.duration_ms)
        elif name == "data_events":
            out.append(float(len(times)))
    return out


def measurement(name: str, values: Sequence[float], step: str | None = None) -> Measurement:
    if not values:
        return Measurement(name=name, unit=UNITS[name], step=step, count=0)
    return Measurement(
        name=name,
        unit=UNITS[name],
        step=step,
        count=len(values),
        min=min(values),
        p50=percentile(values, 0.50),
        p90=percentile(values, 0.90),
        p95=percentile(values, 0.95),
        p99=percentile(values, 0.99),
        max=max(values),
        mean=round(sum(values) / len(values), 3),
        samples=list(values[:_MAX_SAMPLES]),
    )


def scenario_measurements(names: Sequence[str], exchanges: Sequence[Exchange]) -> list[Measurement]:
    """The named measurements over the whole scenario, then per step when there are several steps."""
    out: list[Measurement] = []
    steps = list(dict.fromkeys(e.step for e in exchanges))
    for name in names:
        if name == "overshoot_tokens":
            continue  # comes from the budget ledger, not from exchanges
        out.append(measurement(name, samples(name, exchanges)))
        if len(steps) > 1:
            for step in steps:
                values = samples(name, [e for e in exchanges if e.step == step])
                if values:
                    out.append(measurement(name, values, step))
    return out


class _FromExchanges(MeasurementKind):
    """A measurement read from the recorded exchanges alone: every target gives it."""

    def samples(self, exchanges: Iterable[Exchange], extra: Mapping[str, list[float]]) -> list[float]:
        return samples(self.key, exchanges)


class TtftMs(_FromExchanges):
    key = "ttft_ms"
    symptoms = frozenset({Symptom.STREAM})


class InterTokenGapMs(_FromExchanges):
    key = "inter_token_gap_ms"
    symptoms = frozenset({Symptom.STREAM})


class TokensPerS(_FromExchanges):
    key = "tokens_per_s"
    symptoms = frozenset({Symptom.STREAM})


class DurationMs(_FromExchanges):
    key = "duration_ms"
    symptoms = frozenset({Symptom.STREAM})


class DataEvents(_FromExchanges):
    key = "data_events"
    symptoms = frozenset({Symptom.STREAM})


class OvershootTokens(MeasurementKind):
    """How far a budget was overshot after a burst: read from the SUT's ledger by the runner."""

    key = "overshoot_tokens"
    symptoms = frozenset({Symptom.USAGE})

    def needs(self) -> frozenset[Capability]:
        return frozenset({Capability.LEDGER})

    def samples(self, exchanges: Iterable[Exchange], extra: Mapping[str, list[float]]) -> list[float]:
        return list(extra.get(self.key, []))
