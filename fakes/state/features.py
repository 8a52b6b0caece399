"""What the gateway features keep per running fake: options, rate windows, spend ledger, response cache.

A ``FeatureState`` lives in its fake's ``FakeState.features`` and is reset with it; nothing here is global
across fakes. The options are changed through the control API (``aigw_fakes.control.features``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aigw_fakes.state.cache import ResponseCache
from aigw_fakes.state.limits import RateLimiter
from aigw_fakes.state.options import FeatureOptions
from aigw_fakes.state.spend import SpendLedger

__all__ = ["FeatureState"]


@dataclass(slots=True)
class FeatureState:
    options: FeatureOptions = field(default_factory=FeatureOptions)
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    ledger: SpendLedger = field(default_factory=SpendLedger)
    cache: ResponseCache = field(default_factory=ResponseCache)

    def __post_init__(self) -> None:
        self.reset()

    def apply(self, options: FeatureOptions) -> None:
        """Use new options from now on; counters and cached responses are kept (unless the size changes)."""
        if options.cache_max_entries != self.options.cache_max_entries:
            self.cache = ResponseCache(options.cache_max_entries)
        self.options = options
        self.ledger.visibility_lag = options.spend_visibility_lag

    def reset(self) -> None:
        self.options = FeatureOptions()
        self.rate_limiter.reset()
        self.ledger = SpendLedger(visibility_lag=self.options.spend_visibility_lag)
        self.cache = ResponseCache(self.options.cache_max_entries)
