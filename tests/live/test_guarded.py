"""The live target's upstream transport: caps and run-id tagging, with httpx.MockTransport as the gateway."""

from __future__ import annotations

import json

import httpx
import pytest

from aigw_harness.live.cost import CostCaps, CostGuard, PlannedRequest, estimate
from aigw_harness.live.guarded import DEFAULT_MAX_TOKENS, GuardedTransport

URL = "https://gateway.test/v1/acct/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct-fp8-fast"


async def _send(
    transport: GuardedTransport, metadata: dict[str, str], body: dict[str, object]
) -> httpx.Request:
    seen: list[httpx.Request] = []
    transport.inner = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.post(
            URL, json=body, headers={"cf-aig-metadata": json.dumps(metadata), "cf-aig-event-id": "e1"}
        )
    return seen[0]


async def test_run_id_goes_into_metadata_only_when_there_is_room() -> None:
    transport = GuardedTransport(
        httpx.MockTransport(lambda r: httpx.Response(200)), CostGuard(CostCaps()), "run-9"
    )
    roomy = await _send(transport, {"tenantId": "t"}, {"messages": [], "max_tokens": 8})
    assert json.loads(roomy.headers["cf-aig-metadata"]) == {"tenantId": "t", "runId": "run-9"}
    assert roomy.headers["cf-aig-event-id"] == "run-9:e1"
    full = {f"k{i}": "v" for i in range(5)}
    crowded = await _send(transport, full, {"messages": [], "max_tokens": 8})
    assert json.loads(crowded.headers["cf-aig-metadata"]) == full
    assert crowded.headers["cf-aig-event-id"] == "run-9:e1"
    assert transport.sent == 2


async def test_a_request_without_max_tokens_is_priced_at_the_default() -> None:
    guard = CostGuard(CostCaps())
    transport = GuardedTransport(httpx.MockTransport(lambda r: httpx.Response(200)), guard, "run-9")
    messages = [{"role": "user", "content": "hi"}]
    await _send(transport, {}, {"messages": messages})
    expected = estimate(
        PlannedRequest("x", "@cf/meta/llama-3.1-8b-instruct-fp8-fast", messages, DEFAULT_MAX_TOKENS)
    )
    assert guard.tokens == expected.tokens
    assert guard.usd == pytest.approx(expected.usd)


async def test_over_the_cap_nothing_leaves() -> None:
    guard = CostGuard(CostCaps(max_usd=0.0))
    transport = GuardedTransport(httpx.MockTransport(lambda r: httpx.Response(200)), guard, "run-9")
    with pytest.raises(httpx.ConnectError, match=r"aigw cost guard: request request-1 refused: \$"):
        await _send(transport, {}, {"messages": [], "max_tokens": 8})
    assert transport.sent == 0
    assert len(transport.refused) == 1


async def test_answers_are_bounded_and_the_cache_skipped() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"cf-aig-log-id": f"log-{len(seen)}"})

    guard = CostGuard(CostCaps())
    transport = GuardedTransport(
        httpx.MockTransport(handler), guard, "run-7", output_tokens=64, skip_cache=True
    )
    async with httpx.AsyncClient(transport=transport) as http:
        url = "http://gw/v1/a/g/workers-ai/@cf/meta/llama-3.1-8b-instruct-fast"
        await http.post(url, json={"messages": [{"role": "user", "content": "hi"}]})
        await http.post(url, json={"messages": [], "max_tokens": 500}, headers={"cf-aig-skip-cache": "false"})
        await http.post(url, json={"messages": [], "max_tokens": 16})
    assert [json.loads(r.content)["max_tokens"] for r in seen] == [64, 64, 16]
    assert [r.headers["cf-aig-skip-cache"] for r in seen] == ["true", "false", "true"]
    assert [c.log_id for c in transport.calls] == ["log-1", "log-2", "log-3"]
