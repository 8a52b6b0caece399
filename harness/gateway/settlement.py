"""Settlement of one turn, once, however it ended: charge or release the budget reservation, persist the
answer when it succeeded, fill in and publish the usage record.

A turn whose attempts all failed costs nothing; a stream that failed after its first token, or whose
client left, is charged what was used (``quirks.no_charge_on_stream_failure`` charges nothing, as the
platform does). A ledger failure is recorded and never costs the client its answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aigw_harness.gateway.admission import Turn
from aigw_harness.gateway.envelope import ClientError
from aigw_harness.gateway.ledger import BudgetLedger
from aigw_harness.gateway.metrics import USD_PER_NEURON, MetricsObserver, UsageRecord, neurons_for
from aigw_harness.gateway.sessions import SessionStore
from aigw_harness.gateway.settings import PlatformQuirks
from aigw_harness.gateway.tokens import TokenCounts

__all__ = ["Settlement", "publish"]


def publish(observers: Sequence[MetricsObserver], record: UsageRecord) -> None:
    for observer in observers:
        observer.record(record)


class Settlement:
    def __init__(
        self,
        *,
        ledger: BudgetLedger,
        sessions: SessionStore,
        observers: Sequence[MetricsObserver],
        quirks: PlatformQuirks,
    ) -> None:
        self.ledger = ledger
        self.sessions = sessions
        self.observers = observers
        self.quirks = quirks

    async def settle(self, turn: Turn, failure: ClientError | None) -> None:
        """``failure`` is what the client is told when the answer failed."""
        record = turn.record
        record.latency_ms = (asyncio.get_running_loop().time() - turn.started) * 1000
        record.client_disconnected = turn.disconnected
        record.model_served = turn.served_model
        record.fallback_used = bool(turn.served_model) and turn.served_model != turn.selection.primary.model
        record.log_ids = [a.log_id for a in record.attempts if a.log_id]
        for attempt in record.attempts:
            if attempt.outcome == "pending":
                attempt.outcome = "cancelled"
        succeeded = turn.served_model is not None and turn.error is None and not turn.disconnected
        uncharged = (
            self.quirks.no_charge_on_stream_failure
            and turn.request.stream
            and (turn.error is not None or turn.disconnected)
        )
        counts: TokenCounts | None = None
        if turn.served_model is not None:
            counts = turn.tracker.counts(turn.estimated_in)
            _fill_counts(record, turn.served_model, counts)
        if counts is not None and not uncharged:
            record.ledger_charged = counts.tokens_total
            try:
                await self.ledger.settle(turn.reservation, counts.tokens_total)
            except Exception as exc:  # a ledger failure is recorded; it never costs the client the answer
                record.ledger_error = f"{type(exc).__name__}: {exc}"
        else:
            await self.ledger.release(turn.reservation)
            record.ledger_charged = 0
        if succeeded and counts is not None:
            self.sessions.append(
                self.sessions.key(turn.tenant.tenant_id, turn.request.session_id),
                "assistant",
                "".join(turn.answer),
                retention_days=turn.tenant.session_retention_days,
                max_messages=turn.tenant.max_messages_per_session,
                token_count=counts.tokens_out,
            )
        if turn.disconnected:
            record.status = "disconnected"
        elif turn.error is not None:
            record.status = "truncated" if turn.error.truncated else "error"
            record.error_code = failure.code if failure is not None else "ai_error"
            record.error_detail = str(turn.error)
        else:
            record.status = "success"
        if turn.request.stream or record.status == "success":
            record.http_status = 200
        else:
            record.http_status = failure.status if failure is not None else 502
        publish(self.observers, record)


def _fill_counts(record: UsageRecord, model: str, counts: TokenCounts) -> None:
    record.tokens_in = counts.tokens_in
    record.tokens_out = counts.tokens_out
    record.tokens_total = counts.tokens_total
    record.tokens_in_estimated = counts.in_estimated
    record.tokens_out_estimated = counts.out_estimated
    neurons = counts.neurons
    if neurons is None:
        neurons = neurons_for(model, counts.tokens_in, counts.tokens_out)
        record.neurons_estimated = neurons is not None
    record.neurons = neurons
    record.cost_usd = neurons * USD_PER_NEURON if neurons is not None else None
