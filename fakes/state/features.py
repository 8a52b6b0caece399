"""What the gateway features keep per running fake: options, rate windows, spend ledger, response cache.

``features_of(state)`` returns the one ``FeatureState`` of a fake, creating it (and registering its reset
hook) on first use; feature modules share it through this function, so nothing here is global across fakes.

``install`` adds the control routes for the options (``fakes.state.options``):
``GET /__aigw/features`` and ``PUT /__aigw/features`` (a JSON object of the options to change; unknown or
invalid fields are refused with 400 naming them). ``POST /__aigw/reset`` restores the defaults.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pydantic

from fakes.state.cache import ResponseCache
from fakes.state.limits import RateLimiter
from fakes.state.options import FeatureOptions
from fakes.state.spend import SpendLedger
from fakes.wire.http import IncomingRequest, Reply, json_reply

if TYPE_CHECKING:
    from fakes.state.fake import FakeState

__all__ = ["FeatureState", "features_of", "install"]


@dataclass(slots=True)
class FeatureState:
    options: FeatureOptions = field(default_factory=FeatureOptions)
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    ledger: SpendLedger = field(default_factory=SpendLedger)
    cache: ResponseCache = field(default_factory=ResponseCache)

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


_STATES: weakref.WeakKeyDictionary[FakeState, FeatureState] = weakref.WeakKeyDictionary()


def features_of(state: FakeState) -> FeatureState:
    found = _STATES.get(state)
    if found is None:
        found = FeatureState()
        found.reset()
        _STATES[state] = found
        state.on_reset(found.reset)
    return found


def install(state: FakeState) -> None:
    features = features_of(state)

    async def get_options(request: IncomingRequest) -> Reply:
        return json_reply(200, {"success": True, "result": features.options.model_dump(), "errors": []})

    async def put_options(request: IncomingRequest) -> Reply:
        try:
            changes = request.json()
        except ValueError:
            changes = None
        if not isinstance(changes, dict):
            problem = {"code": 400, "message": "body: expected a JSON object of feature options"}
            return json_reply(400, {"success": False, "result": None, "errors": [problem]})
        try:
            options = FeatureOptions.model_validate({**features.options.model_dump(), **changes})
        except pydantic.ValidationError as exc:
            errors = [
                {"code": 400, "message": f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"}
                for e in exc.errors()
            ]
            return json_reply(400, {"success": False, "result": None, "errors": errors})
        features.apply(options)
        return json_reply(200, {"success": True, "result": options.model_dump(), "errors": []})

    state.router.add(["GET"], "/__aigw/features", get_options, "control features get")
    state.router.add(["PUT"], "/__aigw/features", put_options, "control features put")
