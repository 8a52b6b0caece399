"""Model selection: which model serves a request and which one stands by, with the reason for each.

Precedence, as the platform documents it: the request's ``modelId``, then the ``MODEL_ID`` environment
override, then the tenant's chat model. The fallback is ``FALLBACK_MODEL_ID``, then the tenant's chat model,
and is dropped when it equals the primary. With the tenant's ``modelAllowList`` flag on, a primary outside
``allowedModels`` is refused and a fallback outside it is dropped. Every decision records the layer that
chose the model and why, so that reports can explain a request's routing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aigw_harness.gateway.tenants import EnvOverrides, TenantConfig

__all__ = ["Layer", "ModelDecision", "ModelNotAllowed", "Selection", "select_models"]


class Layer(StrEnum):
    REQUEST = "request"
    ENVIRONMENT = "environment"
    TENANT = "tenant"


@dataclass(frozen=True, slots=True)
class ModelDecision:
    role: str  # "primary" or "fallback"
    model: str | None  # None when the role has no model (a dropped fallback)
    layer: Layer | None
    reason: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "role": self.role,
            "model": self.model,
            "layer": self.layer.value if self.layer else None,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Selection:
    primary: ModelDecision
    fallback: ModelDecision

    @property
    def candidates(self) -> list[str]:
        models = [self.primary.model] if self.primary.model else []
        if self.fallback.model:
            models.append(self.fallback.model)
        return models

    def as_dicts(self) -> list[dict[str, str | None]]:
        return [self.primary.as_dict(), self.fallback.as_dict()]


class ModelNotAllowed(Exception):
    """The selected primary model is outside the tenant's allow-list (the platform answers 403)."""

    def __init__(self, decision: ModelDecision) -> None:
        self.decision = decision
        super().__init__(decision.reason)


def _primary(request_model: str | None, env: EnvOverrides, tenant: TenantConfig) -> ModelDecision:
    if request_model is not None:
        return ModelDecision("primary", request_model, Layer.REQUEST, "the request named modelId")
    env_model = env.model_id()
    if env_model is not None:
        return ModelDecision(
            "primary", env_model, Layer.ENVIRONMENT, "MODEL_ID is set and the request named none"
        )
    return ModelDecision(
        "primary",
        tenant.ai_models.chat,
        Layer.TENANT,
        "neither the request nor MODEL_ID named a model: the tenant's aiModels.chat",
    )


def _fallback(env: EnvOverrides, tenant: TenantConfig) -> ModelDecision:
    env_model = env.fallback_model_id()
    if env_model is not None:
        return ModelDecision("fallback", env_model, Layer.ENVIRONMENT, "FALLBACK_MODEL_ID is set")
    return ModelDecision(
        "fallback",
        tenant.ai_models.chat,
        Layer.TENANT,
        "FALLBACK_MODEL_ID is unset: the tenant's aiModels.chat",
    )


def select_models(request_model: str | None, env: EnvOverrides, tenant: TenantConfig) -> Selection:
    """Choose primary and fallback; raise ``ModelNotAllowed`` when the allow-list refuses the primary."""
    primary = _primary(request_model, env, tenant)
    fallback = _fallback(env, tenant)
    if tenant.allow_list_enabled:
        allowed = set(tenant.allowed_models)
        if primary.model not in allowed:
            raise ModelNotAllowed(
                ModelDecision(
                    "primary",
                    primary.model,
                    primary.layer,
                    f"{primary.model} (from the {primary.layer}) is not in the tenant's allowedModels",
                )
            )
        if fallback.model not in allowed:
            fallback = ModelDecision(
                "fallback",
                None,
                fallback.layer,
                f"{fallback.model} (from the {fallback.layer}) is not in the tenant's allowedModels, "
                "so there is no fallback",
            )
    if fallback.model is not None and fallback.model == primary.model:
        fallback = ModelDecision(
            "fallback",
            None,
            fallback.layer,
            f"{fallback.model} (from the {fallback.layer}) is the primary: no fallback",
        )
    return Selection(primary, fallback)
