"""The Universal endpoint's logic: a list of provider steps tried in order until one succeeds.

``POST /v1/{account_id}/{gateway_id}`` takes a JSON array (or a single object) of steps
``{provider, endpoint, headers, query, config: {requestTimeout, maxAttempts, retryDelay, backoff}}``.
Each step is attempted up to its ``maxAttempts`` with its ``retryDelay``/``backoff`` (its config becomes the
equivalent ``cf-aig-*`` headers, which the caller's attempt applies); a failed or timed-out step falls back
to the next. The response names the step that answered in ``cf-aig-step`` (0-based).

Headers apply with the precedence step > request > gateway: a step's ``headers`` (and its ``config``, the
same settings in another form) override the outer request's ``cf-aig-*`` headers, which override the
gateway's settings. ``cf-aig-request-timeout`` bounds the wait for the start of a response.

What counts as a failure and what is answered when every step fails are not documented. Both are
configurable: by default any non-2xx answer or a timeout is a failure, and the last step's answer is
returned when all fail (``FailurePolicy``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pydantic

__all__ = [
    "AllFailed",
    "FailureClass",
    "FailurePolicy",
    "StepAnswer",
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
    NON_2XX = "non-2xx"  # any answer outside 200-299 (a timeout answers 408)
    RETRYABLE = "retryable"  # 408, 409, 429 or 5xx (other 4xx answers are returned as they are)


class AllFailed(StrEnum):
    LAST = "last"  # the last step's answer
    FIRST = "first"  # the first step's answer


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    failure: FailureClass = FailureClass.NON_2XX
    all_failed: AllFailed = AllFailed.LAST

    def is_failure(self, status: int) -> bool:
        if self.failure is FailureClass.RETRYABLE:
            return status in (408, 409, 429) or status >= 500
        return not 200 <= status < 300


@dataclass(frozen=True, slots=True)
class StepAnswer[T]:
    step: int
    outcome: T
    status: int


@dataclass(slots=True)
class UniversalResult[T]:
    step: int  # the step whose answer is returned
    outcome: T
    succeeded: bool
    answers: list[StepAnswer[T]] = field(default_factory=list)  # every step tried, in order


async def run_steps[T](
    steps: list[UniversalStep],
    request_headers: Mapping[str, str],
    attempt: Callable[[int, UniversalStep, dict[str, str]], Awaitable[T]],
    *,
    status_of: Callable[[T], int],
    policy: FailurePolicy | None = None,
) -> UniversalResult[T]:
    """Run ``steps`` in order until one answers without failing.

    ``attempt(index, step, headers)`` runs one step with its merged headers and applies what they say
    (retries, ``cf-aig-request-timeout``, cache); the fake's request pipeline does exactly that. A timed-out
    step answers with its timeout error, which is a failure.
    """
    if not steps:
        raise UniversalError("body: expected at least one step")
    policy = policy or FailurePolicy()
    answers: list[StepAnswer[T]] = []
    for index, step in enumerate(steps):
        outcome = await attempt(index, step, merge_step_headers(request_headers, step))
        answer = StepAnswer(index, outcome, status_of(outcome))
        answers.append(answer)
        if not policy.is_failure(answer.status):
            return UniversalResult(index, outcome, True, answers)
    chosen = answers[0] if policy.all_failed is AllFailed.FIRST else answers[-1]
    return UniversalResult(chosen.step, chosen.outcome, False, answers)
