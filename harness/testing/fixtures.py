"""The fixtures the ``aigw`` pytest plugin registers.

Each does nothing unless a test requests it, imports its server or client only then, and stops everything
it started at teardown. Configuration, lowest precedence first: the ``aigw_config`` fixture (override it in
a ``conftest.py``), then ``@pytest.mark.aigw(...)`` on the test (the closest marker wins), then the
``--aigw-seed``/``--aigw-time-scale`` flags.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from harness.testing.options import CONFIG_KEYS, OPTIONS_KEY

if TYPE_CHECKING:
    from harness.testing.sse_client import SSEClient

__all__ = ["aigw_config", "aigw_sse_client", "resolve_config"]


@pytest.fixture
def aigw_config() -> dict[str, Any]:
    """Settings for the aigw fixtures (keys: see ``CONFIG_KEYS``); override it to change the defaults."""
    return {}


def resolve_config(request: pytest.FixtureRequest, base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (the ``aigw_config`` fixture) < ``@pytest.mark.aigw`` kwargs < ``--aigw-*`` flags."""
    unknown = sorted(set(base) - set(CONFIG_KEYS))
    if unknown:
        raise pytest.UsageError(
            f"AIGW: the aigw_config fixture returned unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(CONFIG_KEYS)}"
        )
    merged = dict(base)
    for marker in reversed(list(request.node.iter_markers("aigw"))):
        merged.update(marker.kwargs)
    options = request.config.stash[OPTIONS_KEY]
    if options.seed is not None:
        merged["seed"] = options.seed
    if options.time_scale is not None:
        merged["time_scale"] = options.time_scale
    return merged


@pytest_asyncio.fixture
async def aigw_sse_client() -> AsyncIterator[SSEClient]:
    """An ``SSEClient`` for streaming ``/chat`` responses and asserting on them; closed at teardown."""
    from harness.testing.sse_client import SSEClient

    async with SSEClient() as client:
        yield client
