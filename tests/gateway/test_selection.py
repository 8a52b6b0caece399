"""Model precedence and the allow-list, over generated request/environment/tenant triples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.gateway.selection import Layer, ModelNotAllowed, select_models
from aigw_harness.gateway.tenants import EnvOverrides

from .conftest import tenant

MODELS = st.sampled_from(["@cf/a", "@cf/b", "@cf/c", "@cf/d"])


@given(
    request_model=st.none() | MODELS,
    env_model=st.none() | st.just("") | MODELS,
    env_fallback=st.none() | st.just("") | MODELS,
    chat=MODELS,
    allow_list=st.none() | st.lists(MODELS, unique=True),
)
def test_precedence_and_allow_list(
    request_model: str | None,
    env_model: str | None,
    env_fallback: str | None,
    chat: str,
    allow_list: list[str] | None,
) -> None:
    env_values = {
        k: v for k, v in (("MODEL_ID", env_model), ("FALLBACK_MODEL_ID", env_fallback)) if v is not None
    }
    flags = {"modelAllowList": allow_list is not None}
    config = tenant(
        aiModels={"chat": chat, "embeddings": "@cf/e"}, featureFlags=flags, allowedModels=allow_list or []
    )
    env = EnvOverrides(env_values)

    expected_primary = request_model or env_model or chat
    expected_layer = Layer.REQUEST if request_model else Layer.ENVIRONMENT if env_model else Layer.TENANT
    expected_fallback = env_fallback or chat
    if allow_list is not None and expected_primary not in allow_list:
        with pytest.raises(ModelNotAllowed) as refused:
            select_models(request_model, env, config)
        assert refused.value.decision.model == expected_primary
        assert refused.value.decision.layer == expected_layer
        return
    selection = select_models(request_model, env, config)
    assert selection.primary.model == expected_primary
    assert selection.primary.layer == expected_layer
    fallback_dropped = expected_fallback == expected_primary or (
        allow_list is not None and expected_fallback not in allow_list
    )
    assert selection.fallback.model == (None if fallback_dropped else expected_fallback)
    assert selection.fallback.layer == (Layer.ENVIRONMENT if env_fallback else Layer.TENANT)
    assert selection.candidates == [expected_primary] + ([] if fallback_dropped else [expected_fallback])
    assert all(d["reason"] for d in selection.as_dicts())


def test_decisions_explain_themselves() -> None:
    config = tenant(featureFlags={"modelAllowList": True}, allowedModels=["@cf/a"])
    selection = select_models("@cf/a", EnvOverrides({"FALLBACK_MODEL_ID": "@cf/z"}), config)
    assert selection.as_dicts() == [
        {"role": "primary", "model": "@cf/a", "layer": "request", "reason": "the request named modelId"},
        {
            "role": "fallback",
            "model": None,
            "layer": "environment",
            "reason": (
                "@cf/z (from the environment) is not in the tenant's allowedModels, so there is no fallback"
            ),
        },
    ]
