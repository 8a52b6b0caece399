"""Everything one running fake holds: configuration, catalogue, behaviour, store, gateways, the gateway
features' state, and the hooks that ``reset()`` calls.

Feature modules (``aigw_fakes.features``) reach it as ``parts.state`` in ``install(parts)`` and may add reset
hooks; the router and pipeline are in ``aigw_fakes.parts``. Nothing else is global.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from aigw_fakes.behaviour import BehaviourController, BehaviourDocument
from aigw_fakes.config import AccountConfig, FakeConfig
from aigw_fakes.datafiles import load_model
from aigw_fakes.models.catalogue import Catalogue
from aigw_fakes.state.features import FeatureState
from aigw_fakes.state.gateways import Gateway, GatewayRegistry, default_settings
from aigw_fakes.state.store import RequestStore

__all__ = ["FakeState"]


def _gateway_registry(config: FakeConfig, now: float) -> GatewayRegistry:
    # Configured gateways exist before the run, like gateways made before 2026-11-03: authentication
    # stays as configured. Gateways created through the API afterwards follow today's rule.
    registry = GatewayRegistry(require_authentication=config.fidelity.new_gateways_require_authentication)
    base = default_settings(authentication=False).model_dump()
    for account in config.accounts:
        for gateway in account.gateways:
            settings = {**base, **gateway.settings(), "id": gateway.id}
            registry.create(account.id, settings, now, by_api=False)
    return registry


class FakeState:
    def __init__(self, config: FakeConfig | None = None) -> None:
        self.config = config or FakeConfig()
        self.catalogue = Catalogue.load(self.config.catalogue_file)
        initial = (
            load_model(Path(self.config.behaviour_file), BehaviourDocument)
            if self.config.behaviour_file
            else None
        )
        self.behaviour = BehaviourController(initial, clock=self.config.clock.time)
        self.store = RequestStore(self.config.max_records)
        self.clock = self.config.clock
        self.gateways = _gateway_registry(self.config, self.clock.time())
        self.rng = random.Random(self.config.seed)
        self.features = FeatureState()
        self._reset_hooks: list[Callable[[], None]] = []

    @property
    def seed(self) -> int:
        doc_seed = self.behaviour.document.seed
        return self.config.seed if doc_seed is None else doc_seed

    def gateway(self, account_id: str, gateway_id: str) -> Gateway | None:
        """The gateway a request names: configured or created through the API, ``default`` on first use,
        any other on first use only with ``auto_create_gateways``."""
        now = self.clock.time()
        found = self.gateways.resolve(account_id, gateway_id, now)
        if found is None and self.config.fidelity.auto_create_gateways:
            base = default_settings(authentication=False).model_dump()
            found = self.gateways.create(account_id, {**base, "id": gateway_id}, now, by_api=False)
        return found

    def account(self, account_id: str) -> AccountConfig | None:
        for account in self.config.accounts:
            if account.id == account_id:
                return account
        return None

    def token_valid(self, account_id: str, token: str | None) -> bool:
        account = self.account(account_id)
        return account is not None and token is not None and token in account.api_tokens

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` on every ``reset()`` (caches, limit counters, ...)."""
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Behaviour, store, counters, gateways and every registered hook back to the start."""
        self.behaviour.reset()
        self.store.clear()
        self.gateways = _gateway_registry(self.config, self.clock.time())
        self.rng = random.Random(self.config.seed)
        self.features.reset()
        for hook in self._reset_hooks:
            hook()
