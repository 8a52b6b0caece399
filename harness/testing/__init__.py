"""Helpers for users' own tests of software that speaks the platform's ``/chat`` contract.

- ``SSEClient`` / ``ChatStream``: stream a ``/chat`` response, record each event with its arrival time, and
  assert on the contract (``assert_contract``, ``assert_one_terminal_done``, ``assert_error_event``...).
- ``stream_contract``: the contract's rules as functions over a recorded stream.
- ``fixtures``: the pytest fixtures the ``aigw`` plugin registers (``aigw_sut``, ``aigw_chat_url``,
  ``aigw_sse_client``, ``aigw_fake``, ``aigw_gateway``, ``aigw_run_scenario``, ``aigw_config``).
- ``collect``: scenario files as pytest items; ``scenario_runner``: running scenarios from pytest;
  ``verdicts``: comparing pytest's verdicts with ``aigw run``'s.

Names are loaded on first use, so that the pytest plugin can register its fixtures without importing
HTTP clients or servers into test runs that never use them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigw_harness.testing.sse_client import ChatStream, SSEClient, StreamContractError, TimedEvent
    from aigw_harness.testing.stream_contract import Violation

__all__ = ["ChatStream", "SSEClient", "StreamContractError", "TimedEvent", "Violation"]

_HOMES = {
    "ChatStream": "aigw_harness.testing.sse_client",
    "SSEClient": "aigw_harness.testing.sse_client",
    "StreamContractError": "aigw_harness.testing.sse_client",
    "TimedEvent": "aigw_harness.testing.sse_client",
    "Violation": "aigw_harness.testing.stream_contract",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'aigw_harness.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
