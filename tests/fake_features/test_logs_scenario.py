"""A scenario as the gateway spike ran it: N calls with metadata, each found in the Logs API with the right
tokens, cost, model, status and metadata, refused calls included."""

from __future__ import annotations

import json

import httpx
import pytest

from aigw_fakes.clock import ManualClock
from aigw_fakes.models.catalogue import Catalogue

from .support import GATEWAY, NATIVE, SMALL, USD_PER_NEURON, auth, behaviour, call, configure, logs_api


async def list_logs(client: httpx.AsyncClient, **params: str) -> list[dict[str, object]]:
    response = await client.get(logs_api(), params={"per_page": "50", **params}, headers=auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["result_info"]["total_count"] >= len(body["result"])
    return list(body["result"])


async def test_every_call_is_in_the_logs_with_its_tokens_cost_model_status_and_metadata(
    client: httpx.AsyncClient,
) -> None:
    catalogue = Catalogue.builtin()
    expected: dict[str, dict[str, object]] = {}
    for index in range(8):
        model = NATIVE if index % 2 else SMALL
        metadata = {"tenantId": f"tenant-{index % 3}", "sessionId": f"s-{index}", "route": "chat"}
        response = await call(client, model=model, prompt=f"question {index}", metadata=metadata)
        assert response.status_code == 200
        usage = response.json()["result"]["usage"]
        info = catalogue.get(model)
        assert info is not None
        cost = info.neurons(usage["prompt_tokens"], usage["completion_tokens"]) * USD_PER_NEURON
        expected[response.headers["cf-aig-log-id"]] = {
            "model": model,
            "tokens_in": usage["prompt_tokens"],
            "tokens_out": usage["completion_tokens"],
            "cost": cost,
            "metadata": metadata,
        }

    logs = {log["id"]: log for log in await list_logs(client)}
    assert set(logs) == set(expected)
    for log_id, want in expected.items():
        log = logs[log_id]
        assert log["model"] == want["model"]
        assert log["provider"] == "workers-ai"
        assert (log["status_code"], log["success"], log["cached"]) == (200, True, False)
        assert (log["tokens_in"], log["tokens_out"]) == (want["tokens_in"], want["tokens_out"])
        assert log["cost"] == pytest.approx(want["cost"])
        assert log["metadata"] == want["metadata"]

    tenant_1 = await list_logs(
        client, filters=json.dumps([{"key": "metadata.value", "operator": "eq", "value": ["tenant-1"]}])
    )
    assert sorted(log["id"] for log in tenant_1) == sorted(
        log_id
        for log_id, want in expected.items()
        if want["metadata"]["tenantId"] == "tenant-1"  # type: ignore[index]
    )


async def test_refused_and_cached_calls_are_logged_as_such(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await configure(client, cache_ttl=600, rate_limiting_limit=2, rate_limiting_interval=60)
    first = await call(client, metadata={"user": "amy"})
    hit = await call(client, metadata={"user": "bob"})  # same body, other metadata: served from cache
    refused = await call(client, prompt="another question", metadata={"user": "cid"})
    assert (first.status_code, hit.status_code, refused.status_code) == (200, 200, 429)
    assert hit.headers["cf-aig-cache-status"] == "HIT"
    assert refused.json()["error"] == [{"code": 2003, "message": "Rate limited"}]

    logs = {log["id"]: log for log in await list_logs(client)}
    hit_log = logs[hit.headers["cf-aig-log-id"]]
    assert (hit_log["cached"], hit_log["tokens_in"], hit_log["tokens_out"], hit_log["cost"]) == (
        True,
        0,
        0,
        0,
    )
    assert hit_log["metadata"] == {"user": "bob"}
    refused_log = logs[refused.headers["cf-aig-log-id"]]
    assert (refused_log["status_code"], refused_log["success"], refused_log["cost"]) == (429, False, 0)
    assert refused_log["metadata"] == {"user": "cid"}


async def test_custom_cost_replaces_the_neuron_price(client: httpx.AsyncClient) -> None:
    custom = json.dumps({"per_token_in": 0.001, "per_token_out": 0.002})
    response = await call(client, headers={"cf-aig-custom-cost": custom})
    usage = response.json()["result"]["usage"]
    (log,) = await list_logs(client)
    assert log["custom_cost"] is True
    assert log["cost"] == pytest.approx(usage["prompt_tokens"] * 0.001 + usage["completion_tokens"] * 0.002)


async def test_a_log_can_be_missing_at_first_and_present_a_moment_later(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    put = await client.put("/__aigw/features", json={"log_visibility_delay": 0.5, "log_head_delay": 2})
    assert put.status_code == 200
    response = await call(client)
    log_id = response.headers["cf-aig-log-id"]
    missing = await client.get(logs_api(rest=f"/{log_id}"), headers=auth())
    assert missing.status_code == 404
    assert missing.json()["errors"] == [{"code": 7002, "message": "Log not found"}]
    assert await list_logs(client) == []
    clock.advance(0.6)
    present = await client.get(logs_api(rest=f"/{log_id}"), headers=auth())
    assert present.status_code == 200
    assert present.json()["result"]["response_head"] is None  # heads are filled in later
    clock.advance(2)
    later = (await client.get(logs_api(rest=f"/{log_id}"), headers=auth())).json()["result"]
    assert json.loads(later["response_head"])["content-type"] == "application/json"


async def test_collect_logs_and_the_per_request_header(client: httpx.AsyncClient) -> None:
    await configure(client, collect_logs=False)
    unlogged = await call(client)
    logged = await call(client, prompt="keep this one", headers={"cf-aig-collect-log": "true"})
    await configure(client, collect_logs=True)
    skipped = await call(client, prompt="not this one", headers={"cf-aig-collect-log": "false"})
    ids = {log["id"] for log in await list_logs(client)}
    assert logged.headers["cf-aig-log-id"] in ids
    assert unlogged.headers["cf-aig-log-id"] not in ids
    assert skipped.headers["cf-aig-log-id"] not in ids


async def test_payloads_are_kept_out_with_collect_log_payload_false(client: httpx.AsyncClient) -> None:
    response = await call(client, headers={"cf-aig-collect-log-payload": "false"})
    log_id = response.headers["cf-aig-log-id"]
    payload = await client.get(logs_api(rest=f"/{log_id}/request"), headers=auth())
    assert payload.status_code == 404
    (log,) = await list_logs(client)
    assert log["tokens_in"] is not None  # the log itself keeps tokens, model, status and cost


async def test_list_parameters_are_checked_and_meta_info_adds_figures(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await call(client)
    bad = await client.get(logs_api(), params={"order_by": "tenant"}, headers=auth())
    assert bad.status_code == 400
    assert bad.json()["error"][0]["code"] == 7001
    assert "order_by: Invalid enum value." in bad.json()["error"][0]["message"]
    body = (await client.get(logs_api(), params={"meta_info": "true"}, headers=auth())).json()
    info = body["result_info"]
    assert info["max_tokens_in"] >= info["min_tokens_in"] > 0
    assert info["total_count"] == 3


async def test_behaviour_errors_are_logged_with_their_status(client: httpx.AsyncClient) -> None:
    put = await client.put("/__aigw/behaviour", json=behaviour({"error": "out_of_capacity"}))
    assert put.status_code == 200
    response = await call(client)
    assert response.status_code == 429
    (log,) = await list_logs(client)
    assert (log["status_code"], log["success"], log["cost"], log["tokens_in"]) == (429, False, 0, None)
    assert GATEWAY in log["path"]


async def test_log_management_caps_the_logs_a_gateway_keeps(client: httpx.AsyncClient) -> None:
    await configure(client, log_management=2)
    answered = [await call(client, prompt=f"q{i}") for i in range(3)]
    kept = [log["id"] for log in await list_logs(client, order_by_direction="asc")]
    assert kept == [r.headers["cf-aig-log-id"] for r in answered[:2]]  # STOP_INSERTING by default
    await configure(client, log_management=2, log_management_strategy="DELETE_OLDEST")
    newest = await call(client, prompt="q3")
    kept = [log["id"] for log in await list_logs(client, order_by_direction="asc")]
    assert kept == [answered[1].headers["cf-aig-log-id"], newest.headers["cf-aig-log-id"]]
