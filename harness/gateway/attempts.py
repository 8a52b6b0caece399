"""The attempt loop: one turn's calls to its candidate models, shared by streamed and JSON answers.

Each attempt sends the turn's ``UpstreamRequest`` for one model within ``AttemptLimits`` and hands the
tokens it reads to a ``Responder`` (SSE to the client, or collected for one JSON answer). A failed attempt
leads, by its error class and the ``FallbackPolicy``, to a retry of the same model after its
``Retry-After``, to the next candidate, or to the end; once the responder has *committed* (a streamed
token reached the client) nothing is retried, because the client cannot be told to forget it.

The loop fills in the ``Turn`` (served model, usage, answer, error) and the attempts of its record; it
writes to the client only through the responder and settles nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from aigw_harness.gateway.admission import Turn
from aigw_harness.gateway.metrics import AttemptRecord
from aigw_harness.gateway.settings import FallbackPolicy, PlatformQuirks, Timeouts
from aigw_harness.gateway.tokens import UsageTracker
from aigw_harness.gateway.upstream import AttemptLimits, ErrorClass, UpstreamClient, UpstreamError

__all__ = ["AttemptLoop", "Responder"]

_RETRY_AFTER_CLASSES = frozenset({ErrorClass.RATE_LIMITED, ErrorClass.SERVER})


class Responder(Protocol):
    @property
    def committed(self) -> bool:
        """Whether the client has been sent part of an answer (then no other attempt may follow)."""
        ...

    async def tokens(self, turn: Turn, model: str, attempt_started: float, tokens: list[str]) -> None:
        """Tokens that arrived together from the attempt of ``model``."""
        ...

    async def served(self, turn: Turn, model: str, attempt_started: float) -> None:
        """The attempt of ``model`` ended complete (possibly without any token)."""
        ...


@dataclass(frozen=True, slots=True)
class _Retry:
    wait: float


_FALL_BACK = "fall back"
_STOP = "stop"


class AttemptLoop:
    def __init__(
        self,
        upstream: UpstreamClient,
        timeouts: Timeouts,
        policy: FallbackPolicy,
        quirks: PlatformQuirks,
    ) -> None:
        self.upstream = upstream
        self.timeouts = timeouts
        self.policy = policy
        self.quirks = quirks

    def _limits(self, deadline: float | None) -> AttemptLimits:
        t = self.timeouts
        return AttemptLimits(t.first_byte, t.first_token, t.between_events, t.attempt, deadline)

    async def run(self, turn: Turn, responder: Responder) -> None:
        total = self.timeouts.total
        deadline = turn.started + total if total is not None else None
        limits = self._limits(deadline)
        candidates = turn.selection.candidates
        index = 0
        retries = 0
        while index < len(candidates):
            model = candidates[index]
            error = await self._attempt(turn, model, limits, responder)
            if error is None:
                turn.error = None
                return
            turn.error = error
            if error.error_class is ErrorClass.MODEL and model == turn.request.model_id:
                turn.requested_model_failed = True
            if responder.committed:
                return
            decision = self._decide(
                error, has_next=index + 1 < len(candidates), retries=retries, deadline=deadline
            )
            if isinstance(decision, _Retry):
                retries += 1
                turn.record.attempts[-1].retried_after_s = decision.wait
                await asyncio.sleep(decision.wait)
                continue
            if decision == _FALL_BACK:
                turn.record.attempts[-1].fell_back = True
                index, retries = index + 1, 0
                continue
            return

    def _decide(
        self, error: UpstreamError, *, has_next: bool, retries: int, deadline: float | None
    ) -> _Retry | str:
        now = asyncio.get_running_loop().time()
        in_time = deadline is None or now < deadline
        fall_back = has_next and in_time and self.policy.allows(error.error_class)
        wait = error.retry_after
        if (
            wait is None
            or self.policy.retry_after == "ignore"
            or error.error_class not in _RETRY_AFTER_CLASSES
        ):
            return _FALL_BACK if fall_back else _STOP
        fits = (
            retries < self.policy.max_retries
            and wait <= self.policy.max_retry_wait
            and (deadline is None or now + wait < deadline)
        )
        if fits and (self.policy.retry_after == "wait" or not fall_back):
            return _Retry(wait)
        return _FALL_BACK if fall_back else _STOP

    async def _attempt(
        self, turn: Turn, model: str, limits: AttemptLimits, responder: Responder
    ) -> UpstreamError | None:
        """One attempt; ``None`` when it served, else its error (recorded on the attempt)."""
        loop = asyncio.get_running_loop()
        record = turn.record
        attempt = AttemptRecord(model, "pending")
        record.attempts.append(attempt)
        record.models_tried.append(model)
        started = loop.time()
        # The platform ignores usage frames only in streams; a JSON answer's usage is always read.
        tracker = UsageTracker(
            ignore_reported=self.quirks.stream_usage_estimates_only and turn.request.stream
        )
        answer: list[str] = []
        turn.tracker, turn.answer = tracker, answer  # a failed attempt's tokens are not part of the answer
        try:
            async with self.upstream.open(turn.upstream.for_model(model), limits) as reply:
                attempt.log_id = reply.log_id
                try:
                    async for batch in reply.batches():
                        tokens: list[str] = []
                        for frame in batch:
                            tracker.add_frame(frame)
                            if frame.token:
                                tokens.append(frame.token)
                        if tokens:
                            answer.extend(tokens)
                            await responder.tokens(turn, model, started, tokens)
                finally:
                    attempt.skipped_frames = reply.skipped_frames
            await responder.served(turn, model, started)
            attempt.outcome = "served"
            return None
        except UpstreamError as error:
            if error.truncated and self.quirks.truncation_is_success:
                await responder.served(turn, model, started)
                attempt.outcome = "served"
                return None
            attempt.outcome = "failed_mid_stream" if responder.committed else "failed"
            attempt.error_class = error.error_class.value
            attempt.status = error.status
            attempt.cf_code = error.code
            attempt.message = error.message
            attempt.log_id = error.log_id or attempt.log_id
            return error
        finally:
            attempt.duration_ms = (loop.time() - started) * 1000
