"""Universal steps: order, per-step retries and timeouts, header precedence, failure policies."""

from __future__ import annotations

import asyncio

import pytest

from fakes.retries import RetryPolicy
from fakes.universal import (
    AllFailed,
    FailureClass,
    FailurePolicy,
    UniversalError,
    UniversalStep,
    merge_step_headers,
    parse_steps,
    run_steps,
)


def step(provider: str = "workers-ai", **extra: object) -> dict[str, object]:
    return {
        "provider": provider,
        "endpoint": "@cf/meta/llama-3.1-8b-instruct",
        "query": {"prompt": "hi"},
        **extra,
    }


async def no_sleep(seconds: float) -> None:
    return None


async def run(steps: list[dict[str, object]], statuses: dict[int, list[int]], **kwargs: object) -> object:
    calls: list[tuple[int, dict[str, str]]] = []
    remaining = {index: list(values) for index, values in statuses.items()}

    async def attempt(index: int, _: UniversalStep, headers: dict[str, str]) -> int:
        calls.append((index, headers))
        status = remaining[index].pop(0)
        if status == 0:
            await asyncio.sleep(10)  # never answers: only a timeout ends it
        return status

    result = await run_steps(
        parse_steps(steps),
        kwargs.pop("headers", {}),
        RetryPolicy(),
        attempt,  # type: ignore[arg-type]
        status_of=lambda s: s,
        sleep=no_sleep,
        **kwargs,  # type: ignore[arg-type]
    )
    return result, calls


async def test_the_first_step_that_succeeds_answers() -> None:
    result, calls = await run([step(), step("openai"), step("anthropic")], {0: [500], 1: [200], 2: [200]})
    assert (result.step, result.outcome, result.succeeded) == (1, 200, True)
    assert [index for index, _ in calls] == [0, 1]


async def test_each_step_is_retried_by_its_own_config_before_falling_back() -> None:
    steps = [step(config={"maxAttempts": 3, "retryDelay": 100, "backoff": "linear"}), step("openai")]
    result, _ = await run(steps, {0: [503, 503, 200], 1: [200]})
    assert (result.step, result.outcome) == (0, 200)
    assert [(a.step, a.attempt, a.status) for a in result.attempts] == [(0, 1, 503), (0, 2, 503), (0, 3, 200)]


async def test_a_step_that_times_out_falls_back() -> None:
    result, _ = await run([step(config={"requestTimeout": 20}), step("openai")], {0: [0], 1: [200]})
    assert (result.step, result.outcome) == (1, 200)
    assert result.attempts[0].status is None


async def test_when_every_step_fails_the_last_answer_is_returned_by_default() -> None:
    result, _ = await run([step(), step("openai")], {0: [500], 1: [429]})
    assert (result.step, result.outcome, result.succeeded) == (1, 429, False)
    first = FailurePolicy(all_failed=AllFailed.FIRST)
    result, _ = await run([step(), step("openai")], {0: [500], 1: [429]}, policy=first)
    assert (result.step, result.outcome) == (0, 500)


async def test_the_failure_class_is_configurable() -> None:
    result, _ = await run([step(), step("openai")], {0: [400], 1: [200]})
    assert result.step == 1  # default: any non-2xx falls back
    retryable_only = FailurePolicy(failure=FailureClass.RETRYABLE)
    result, _ = await run([step(), step("openai")], {0: [400], 1: [200]}, policy=retryable_only)
    assert (result.step, result.outcome) == (0, 400)


async def test_step_headers_override_request_headers() -> None:
    steps = [step(headers={"cf-aig-cache-ttl": "0", "Authorization": "Bearer step"})]
    _, calls = await run(steps, {0: [200]}, headers={"CF-AIG-Cache-TTL": "3600", "cf-aig-metadata": "{}"})
    headers = calls[0][1]
    assert headers["cf-aig-cache-ttl"] == "0"
    assert headers["authorization"] == "Bearer step"
    assert headers["cf-aig-metadata"] == "{}"


def test_step_config_is_expressed_as_the_equivalent_headers() -> None:
    (parsed,) = parse_steps(
        step(
            headers={"cf-aig-max-attempts": 1, "x-flag": True, "x-obj": {"a": 1}},
            config={"maxAttempts": 4, "requestTimeout": 1500},
        )
    )
    merged = merge_step_headers({}, parsed)
    assert merged["cf-aig-max-attempts"] == "4"
    assert merged["cf-aig-request-timeout"] == "1500"
    assert merged["x-flag"] == "true"
    assert merged["x-obj"] == '{"a": 1}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body: expected at least one step"),
        ([42], "[0]: expected an object with provider, endpoint, headers and query"),
        ([step(), {"endpoint": "x"}], "[1].provider: Field required"),
        (
            [step(config={"maxAttempts": 9})],
            "[0].config.maxAttempts: Input should be less than or equal to 5",
        ),
    ],
)
def test_bad_bodies_name_the_step_and_field(body: object, message: str) -> None:
    with pytest.raises(UniversalError) as caught:
        parse_steps(body)
    assert str(caught.value) == message
