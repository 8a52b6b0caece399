"""Switches for the gateway features whose live behaviour Cloudflare does not document.

Each default is the documented behaviour where there is one, else the most often observed. A running fake
takes new values from ``PUT /__aigw/features`` (``aigw_fakes.state.features``), so that a test can, for
example, make logs appear only a moment after the call; ``reset()`` restores the defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FeatureOptions"]


class FeatureOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    log_visibility_delay: float = Field(default=0.0, ge=0)
    """Seconds (of the fake's clock) before a log can be read: reads sooner answer "not found"."""
    log_head_delay: float = Field(default=0.0, ge=0)
    """Seconds before a readable log's ``request_head``/``response_head`` are filled in (null until then)."""
    log_metadata: Literal["object", "text"] = "object"
    """How logs serve ``metadata``: a JSON object as the live REST API does, or JSON text as the official
    SDKs' types declare it (their ``to_dict()`` warns about an object)."""
    spend_visibility_lag: float = Field(default=1.0, ge=0)
    """Seconds after a request completes before its cost counts against spend limits (eventual consistency:
    the request right after an overspend usually passes live)."""
    rate_limit_cache_hits: bool = True
    """Cache hits count against the gateway's rate limit (Cloudflare does not say)."""
    spend_limit_code: Literal[2041, 2045] = 2045
    """The code of the spend-limit refusal (both were observed; 2045 the more recent)."""
    cache_streaming: bool = False
    """Cache streamed responses too (Cloudflare: "not cached by default")."""
    binding_unkeyed_cache_ttl: int = Field(default=0, ge=0)
    """Cache binding requests this long even when the gateway's caching is off (observed live: ~300 s)."""
    cache_max_entries: int = Field(default=10_000, ge=1)
    universal_failure: Literal["non-2xx", "retryable"] = "non-2xx"
    """What makes a Universal step fall back: any non-2xx answer, or only 408/409/429/5xx (and timeouts)."""
    universal_all_failed: Literal["last", "first"] = "last"
    """Which step's answer is returned when every Universal step fails."""
    last_attempt_waits: bool = True
    """With retries, the last attempt ignores ``cf-aig-request-timeout`` (documented: it "waits")."""
