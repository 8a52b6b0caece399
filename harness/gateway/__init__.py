"""The reference gateway: the platform's gateway layer and ``/chat`` contract as an executable specification.

Parts: ``tenants`` (configs, environment, resolution), ``selection`` (model precedence and allow-list),
``upstream`` (the AI Gateway call, errors, timeouts), ``tokens`` (frames, usage, estimates), ``ledger``
(budgets in an atomic or KV store), ``ratelimit`` and ``sessions`` (as the platform's Durable Objects),
``metrics`` (usage records), ``chat`` (the ASGI app) with a turn's three units ``admission``, ``attempts``
(answered through ``responders``) and ``settlement``, ``envelope`` (envelopes and error codes),
``server`` (``ReferenceGateway.running``).

It reaches the upstream (the fake or Cloudflare) only over HTTP and never imports the scenario runner,
the report or the command line.
"""

from aigw_harness.gateway.clock import Clock, ManualClock, SystemClock
from aigw_harness.gateway.ledger import BudgetLedger, LedgerView
from aigw_harness.gateway.metrics import AttemptRecord, UsageRecord
from aigw_harness.gateway.server import ReferenceGateway, create_app
from aigw_harness.gateway.settings import (
    FallbackPolicy,
    GatewaySettings,
    KVOptions,
    PlatformQuirks,
    Timeouts,
    UpstreamSettings,
)
from aigw_harness.gateway.upstream import ErrorClass

__all__ = [
    "AttemptRecord",
    "BudgetLedger",
    "Clock",
    "ErrorClass",
    "FallbackPolicy",
    "GatewaySettings",
    "KVOptions",
    "LedgerView",
    "ManualClock",
    "PlatformQuirks",
    "ReferenceGateway",
    "SystemClock",
    "Timeouts",
    "UpstreamSettings",
    "UsageRecord",
    "create_app",
]
