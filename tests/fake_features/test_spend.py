"""Spend limits: scoping, clock-aligned and weighted sliding windows, and the enforcement lag."""

from __future__ import annotations

import pydantic
import pytest

from aigw_fakes.state.spend import SpendLedger, SpendLimits, spend_limit_message

MODEL = "@cf/meta/llama-3.2-3b-instruct"


def limits(**rule: object) -> SpendLimits:
    return SpendLimits.model_validate(
        {
            "enabled": True,
            "rules": [{"id": "per-user", "limit": 0.002, "limitType": "cost", "window": 60, **rule}],
        }
    )


def test_a_rule_refuses_once_recorded_spend_reaches_the_limit_after_the_lag() -> None:
    rules = limits()
    ledger = SpendLedger(visibility_lag=2.0)
    call = {"provider": "workers-ai", "model": MODEL, "metadata": None}
    assert ledger.check(rules, **call, now=0.0).admitted
    ledger.record(rules, **call, cost=0.003, now=1.0)  # the overspending call completes
    assert ledger.check(rules, **call, now=1.5).admitted  # the next call still passes (eventual consistency)
    refused = ledger.check(rules, **call, now=3.5)
    assert not refused.admitted
    assert refused.rule is not None
    assert refused.rule.id == "per-user"
    assert refused.spent == pytest.approx(0.003)
    assert ledger.check(rules, **call, now=60.0).admitted  # fixed windows clear at the minute boundary


def test_sliding_weights_the_previous_window_by_its_overlap() -> None:
    rules = limits(technique="sliding", limit=0.01)
    ledger = SpendLedger(visibility_lag=0.0)
    call = {"provider": "workers-ai", "model": MODEL, "metadata": None}
    ledger.record(rules, **call, cost=0.012, now=30.0)
    assert ledger.spent(rules, "per-user", now=75.0) == pytest.approx(0.012 * 45 / 60)
    assert not ledger.check(rules, **call, now=61.0).admitted  # 0.012 x 59/60 >= 0.01
    assert ledger.check(rules, **call, now=75.0).admitted  # 0.009 < 0.01


def test_partitioned_metadata_gives_each_value_its_own_budget() -> None:
    rules = limits(metadata={"user": {"mode": "partition"}})
    ledger = SpendLedger(visibility_lag=0.0)
    bob = {"provider": "workers-ai", "model": MODEL, "metadata": {"user": "bob"}}
    amy = {"provider": "workers-ai", "model": MODEL, "metadata": {"user": "amy"}}
    ledger.record(rules, **bob, cost=0.01, now=1.0)
    assert not ledger.check(rules, **bob, now=2.0).admitted
    assert ledger.check(rules, **amy, now=2.0).admitted
    assert ledger.check(rules, provider="workers-ai", model=MODEL, metadata=None, now=2.0).admitted


def test_filters_scope_a_rule_to_providers_models_and_metadata_values() -> None:
    rules = limits(
        provider={"mode": "filter", "values": ["workers-ai"]},
        model={"mode": "filter", "values": [MODEL]},
        metadata={"team": {"mode": "filter", "values": ["search"]}},
    )
    ledger = SpendLedger(visibility_lag=0.0)
    inside = {"provider": "workers-ai", "model": MODEL, "metadata": {"team": "search"}}
    ledger.record(rules, **inside, cost=1.0, now=1.0)
    assert not ledger.check(rules, **inside, now=2.0).admitted
    assert ledger.check(rules, provider="openai", model=MODEL, metadata={"team": "search"}, now=2.0).admitted
    assert ledger.check(
        rules, provider="workers-ai", model="other", metadata={"team": "search"}, now=2.0
    ).admitted
    assert ledger.check(rules, provider="workers-ai", model=MODEL, metadata={"team": "ads"}, now=2.0).admitted


def test_disabled_rules_and_disabled_limits_admit_everything() -> None:
    ledger = SpendLedger(visibility_lag=0.0)
    call = {"provider": "workers-ai", "model": MODEL, "metadata": None}
    for rules in (limits(enabled=False), limits().model_copy(update={"enabled": False})):
        ledger.record(rules, **call, cost=5.0, now=0.0)
        assert ledger.check(rules, **call, now=1.0).admitted


def test_the_refusal_message_matches_the_live_one() -> None:
    rule = limits(window=3600).rules[0]
    assert spend_limit_message(rule, "internal-workers-ai", MODEL) == (
        "Spend limit exceeded: rule 'per-user' (cost limit 0.002 per 3600s, fixed) "
        "for internal-workers-ai @cf/meta/llama-3.2-3b-instruct"
    )


def test_rules_are_validated_and_named() -> None:
    named = SpendLimits.model_validate({"rules": [{"limit": 1, "limitType": "cost", "window": 60}]})
    assert named.rules[0].id == "rule-1"
    with pytest.raises(pydantic.ValidationError, match="window"):
        SpendLimits.model_validate({"rules": [{"limit": 1, "limitType": "cost", "window": 0}]})
    with pytest.raises(pydantic.ValidationError, match="values"):
        SpendLimits.model_validate(
            {
                "rules": [
                    {"limit": 1, "limitType": "cost", "window": 60, "metadata": {"u": {"mode": "filter"}}}
                ]
            }
        )
    with pytest.raises(pydantic.ValidationError, match="at most 20"):
        SpendLimits.model_validate({"rules": [{"limit": 1, "limitType": "cost", "window": 60}] * 21})
