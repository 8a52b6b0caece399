"""Log cost: neuron rates priced at $0.011 per 1,000 neurons, or cf-aig-custom-cost."""

from __future__ import annotations

import pytest

from aigw_fakes.models.cost import CustomCost, log_cost, neurons, parse_custom_cost


def test_the_observed_llama_3_2_3b_call_costs_what_the_live_log_showed() -> None:
    # 42 in, 2 out at 4,625 / 30,475 neurons per million tokens: 0.2552 neurons (live usage said 0.25518,
    # the published rates being rounded) and a log cost of about 0.0000028070.
    assert neurons(42, 2, 4625, 30475) == pytest.approx(0.2552)
    cost = log_cost(tokens_in=42, tokens_out=2, neurons_per_m_in=4625, neurons_per_m_out=30475)
    assert cost.cost == pytest.approx(0.0000028070016503334043, rel=1e-3)
    assert not cost.custom


def test_custom_cost_replaces_the_estimate_only_when_tokens_are_known() -> None:
    custom = parse_custom_cost('{"per_token_in": 0.000001, "per_token_out": 0.000002}')
    assert custom == CustomCost(0.000001, 0.000002)
    priced = log_cost(tokens_in=100, tokens_out=50, neurons_per_m_in=1, neurons_per_m_out=1, custom=custom)
    assert priced.cost == pytest.approx(0.0002)
    assert priced.custom
    assert (
        log_cost(tokens_in=None, tokens_out=None, neurons_per_m_in=1, neurons_per_m_out=1, custom=custom).cost
        is None
    )
    total = parse_custom_cost('{"total_cost": 0.5}')
    assert (
        log_cost(tokens_in=1, tokens_out=1, neurons_per_m_in=None, neurons_per_m_out=None, custom=total).cost
        == 0.5
    )


@pytest.mark.parametrize(
    "raw", [None, "", "not json", "[1]", '{"per_token_in": "a lot"}', '{"total_cost": -1}']
)
def test_unusable_custom_cost_headers_are_ignored(raw: str | None) -> None:
    assert parse_custom_cost(raw) is None


def test_cache_hits_and_refusals_cost_nothing() -> None:
    free = log_cost(tokens_in=10, tokens_out=10, neurons_per_m_in=5, neurons_per_m_out=5, charged=False)
    assert (free.cost, free.custom) == (0.0, False)
