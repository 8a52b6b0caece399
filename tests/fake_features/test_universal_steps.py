"""Universal steps: order, header precedence, failure classes and the all-failed answer (pure logic)."""

from __future__ import annotations

import pytest

from aigw_fakes.gateway.universal import (
    AllFailed,
    FailureClass,
    FailurePolicy,
    UniversalError,
    UniversalResult,
    UniversalStep,
    merge_step_headers,
    parse_steps,
    run_steps,
)


def step(provider: str = "workers-ai", **extra: object) -> dict[str, object]:
    model = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
    return {"provider": provider, "endpoint": model, "query": {"prompt": "hi"}, **extra}


async def run(
    steps: list[dict[str, object]],
    statuses: list[int],
    headers: dict[str, str] | None = None,
    policy: FailurePolicy | None = None,
) -> tuple[UniversalResult[int], list[tuple[int, dict[str, str]]]]:
    calls: list[tuple[int, dict[str, str]]] = []

    async def attempt(index: int, _: UniversalStep, merged: dict[str, str]) -> int:
        calls.append((index, merged))
        return statuses[index]

    result = await run_steps(parse_steps(steps), headers or {}, attempt, status_of=lambda s: s, policy=policy)
    return result, calls


async def test_the_first_step_that_succeeds_answers() -> None:
    result, calls = await run([step(), step("openai"), step("anthropic")], [500, 200, 200])
    assert (result.step, result.outcome, result.succeeded) == (1, 200, True)
    assert [index for index, _ in calls] == [0, 1]
    assert [(a.step, a.status) for a in result.answers] == [(0, 500), (1, 200)]


async def test_when_every_step_fails_the_last_answer_is_returned_by_default() -> None:
    result, _ = await run([step(), step("openai")], [500, 429])
    assert (result.step, result.outcome, result.succeeded) == (1, 429, False)
    result, _ = await run(
        [step(), step("openai")], [500, 429], policy=FailurePolicy(all_failed=AllFailed.FIRST)
    )
    assert (result.step, result.outcome) == (0, 500)


async def test_the_failure_class_is_configurable() -> None:
    result, _ = await run([step(), step("openai")], [400, 200])
    assert result.step == 1  # default: any non-2xx falls back
    retryable_only = FailurePolicy(failure=FailureClass.RETRYABLE)
    result, _ = await run([step(), step("openai")], [400, 200], policy=retryable_only)
    assert (result.step, result.outcome) == (0, 400)
    result, _ = await run([step(), step("openai")], [408, 200], policy=retryable_only)
    assert result.step == 1  # a timeout is retryable


async def test_step_headers_override_request_headers_and_cannot_authenticate() -> None:
    steps = [
        step(headers={"cf-aig-cache-ttl": "0", "Authorization": "Bearer step", "cf-aig-authorization": "x"})
    ]
    request = {"CF-AIG-Cache-TTL": "3600", "cf-aig-metadata": "{}", "cf-aig-authorization": "Bearer outer"}
    _, calls = await run(steps, [200], headers=request)
    headers = calls[0][1]
    assert headers["cf-aig-cache-ttl"] == "0"
    assert headers["authorization"] == "Bearer step"
    assert headers["cf-aig-metadata"] == "{}"
    assert headers["cf-aig-authorization"] == "Bearer outer"


def test_step_config_is_expressed_as_the_equivalent_headers() -> None:
    (parsed,) = parse_steps(
        step(
            headers={"cf-aig-max-attempts": 1, "x-flag": True, "x-obj": {"a": 1}},
            config={"maxAttempts": 4, "requestTimeout": 1500, "retryDelay": 200, "backoff": "linear"},
        )
    )
    merged = merge_step_headers({}, parsed)
    assert merged["cf-aig-max-attempts"] == "4"
    assert merged["cf-aig-request-timeout"] == "1500"
    assert merged["cf-aig-retry-delay"] == "200"
    assert merged["cf-aig-backoff"] == "linear"
    assert merged["x-flag"] == "true"
    assert merged["x-obj"] == '{"a": 1}'


def test_a_single_object_is_one_step() -> None:
    assert len(parse_steps(step())) == 1


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
