"""The Universal endpoint's logic: a list of provider steps tried in order until one succeeds.

``POST /v1/{account_id}/{gateway_id}`` takes a JSON array (or a single object) of steps
``{provider, endpoint, headers, query, config: {requestTimeout, maxAttempts, retryDelay, backoff}}``.
Each step is attempted up to its ``maxAttempts`` with its ``retryDelay``/``backoff``; a failed or timed-out
step falls back to the next. The response names the step that answered in ``cf-aig-step`` (0-based).

Headers apply with the precedence step > request > gateway: a step's ``headers`` (and its ``config``, the
same settings in another form) override the outer request's ``cf-aig-*`` headers, which override the
gateway's settings. ``cf-aig-request-timeout`` bounds the wait for the start of a response.

What counts as a failure and what is answered when every step fails are not documented. Both are
configurable: by default any non-2xx answer or a timeout is a failure, and the last step's answer is
returned when all fail (``FailurePolicy``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pydantic

from fakes.retries import RetryPolicy, policy_from_headers, run_attempts

__all__ = [
    "AllFailed",
    "FailureClass",
    "FailurePolicy",
    "StepAttempt",
    "StepConfig",
    "UniversalError",
    "UniversalResult",
    "UniversalStep",
    "merge_step_headers",
    "parse_steps",
    "run_steps",
]


class StepConfig(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    requestTimeout: int | None = pydantic.Field(default=None, ge=0)
    maxAttempts: int | None = pydantic.Field(default=None, ge=1, le=5)
    retryDelay: int | None = pydantic.Field(default=None, ge=0, le=5000)
    backoff: Literal["constant", "linear", "exponential"] | None = None


class UniversalStep(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    provider: str = pydantic.Field(min_length=1)
    endpoint: str
    headers: dict[str, Any] = {}
    query: Any = None
    config: StepConfig | None = None


class UniversalError(ValueError):
    """A Universal body that cannot be run; the message names the step and field."""


def parse_steps(body: Any) -> list[UniversalStep]:
    items = body if isinstance(body, list) else [body]
    if not items:
        raise UniversalError("body: expected at least one step")
    steps: list[UniversalStep] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise UniversalError(f"[{index}]: expected an object with provider, endpoint, headers and query")
        try:
            steps.append(UniversalStep.model_validate(item))
        except pydantic.ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise UniversalError(f"[{index}].{where}: {problem['msg']}") from exc
    return steps


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def merge_step_headers(request_headers: Mapping[str, str], step: UniversalStep) -> dict[str, str]:
    """Lower-cased headers for one step: the request's, overridden by the step's, then by its config."""
    merged = {name.lower(): value for name, value in request_headers.items()}
    # The gateway token must come with the outer request; a step cannot authenticate itself.
    merged.update(
        {
            name.lower(): _header_text(value)
            for name, value in step.headers.items()
            if name.lower() != "cf-aig-authorization"
        }
    )
    config = step.config
    if config is not None:
        for name, value in (
            ("cf-aig-request-timeout", config.requestTimeout),
            ("cf-aig-max-attempts", config.maxAttempts),
            ("cf-aig-retry-delay", config.retryDelay),
            ("cf-aig-backoff", config.backoff),
        ):
            if value is not None:
                merged[name] = str(value)
    return merged


class FailureClass(StrEnum):
    NON_2XX = "non-2xx"  # any answer outside 200-299, or a timeout
    RETRYABLE = "retryable"  # 408, 409, 429, 5xx, or a timeout (4xx answers are returned as they are)


class AllFailed(StrEnum):
    LAST = "last"  # the last step's answer
    FIRST = "first"  # the first step's answer


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    failure: FailureClass = FailureClass.NON_2XX
    all_failed: AllFailed = AllFailed.LAST

    def is_failure(self, status: int | None) -> bool:
        if status is None:
            return True
        if self.failure is FailureClass.RETRYABLE:
            return status in (408, 409, 429) or status >= 500
        return not 200 <= status < 300


@dataclass(frozen=True, slots=True)
class StepAttempt[T]:
    step: int
    attempt: int
    outcome: T | None  # None when the attempt timed out
    status: int | None


@dataclass(slots=True)
class UniversalResult[T]:
    step: int  # the step whose answer is returned
    outcome: T | None  # None only when that step timed out
    succeeded: bool
    attempts: list[StepAttempt[T]] = field(default_factory=list)


def _timeout_seconds(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("cf-aig-request-timeout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value / 1000 if value > 0 else None


async def _attempt_once[T](
    attempt: Callable[[int, UniversalStep, dict[str, str]], Awaitable[T]],
    status_of: Callable[[T], int],
    index: int,
    step: UniversalStep,
    headers: dict[str, str],
    number: int,
    first_byte_within: float | None,
) -> StepAttempt[T]:
    try:
        async with asyncio.timeout(first_byte_within):
            outcome = await attempt(index, step, dict(headers))
    except TimeoutError:
        return StepAttempt(index, number, None, None)
    return StepAttempt(index, number, outcome, status_of(outcome))


async def run_steps[T](
    steps: list[UniversalStep],
    request_headers: Mapping[str, str],
    gateway_policy: RetryPolicy,
    attempt: Callable[[int, UniversalStep, dict[str, str]], Awaitable[T]],
    *,
    status_of: Callable[[T], int],
    sleep: Callable[[float], Awaitable[None]],
    policy: FailurePolicy | None = None,
    managed_attempts: bool = False,
) -> UniversalResult[T]:
    """Run ``steps`` in order; ``attempt(index, step, headers)`` returns once a response has started.

    A timed-out attempt is cancelled (its callable must clean up on cancellation) and counts as a failure.
    With ``managed_attempts=True`` each step is attempted once here, with no timeout: the ``attempt``
    callable applies the retry and timeout headers it is given itself (the fake's request pipeline does).
    """
    policy = policy or FailurePolicy()
    history: list[StepAttempt[T]] = []
    per_step: list[StepAttempt[T]] = []
    for index, step in enumerate(steps):
        headers = merge_step_headers(request_headers, step)
        retry = RetryPolicy() if managed_attempts else policy_from_headers(gateway_policy, headers)
        timeout = None if managed_attempts else _timeout_seconds(headers)

        def one(
            number: int,
            index: int = index,
            step: UniversalStep = step,
            headers: dict[str, str] = headers,
            timeout: float | None = timeout,
        ) -> Awaitable[StepAttempt[T]]:
            return _attempt_once(attempt, status_of, index, step, headers, number, timeout)

        log = await run_attempts(retry, one, is_failure=lambda a: policy.is_failure(a.status), sleep=sleep)
        history.extend(log.outcomes)
        final = log.last
        per_step.append(final)
        if not policy.is_failure(final.status):
            return UniversalResult(index, final.outcome, True, history)
    chosen = per_step[0] if policy.all_failed is AllFailed.FIRST else per_step[-1]
    return UniversalResult(chosen.step, chosen.outcome, False, history)
