"""Gateway settings change behaviour: authentication, caching, rate limits, retries and spend limits."""

from __future__ import annotations

import json

import httpx

from aigw_fakes.clock import ManualClock
from aigw_fakes.server import FakeGateway

from .support import (
    ACCOUNT,
    GATEWAY,
    NATIVE,
    START,
    TOKEN,
    auth,
    behaviour,
    call,
    configure,
    gateway_api,
    make_config,
    set_options,
    settings,
)

SPEND_RULE = {"id": "per-user", "limit": 0.00001, "limitType": "cost", "window": 60}


async def test_an_authenticated_gateway_needs_cf_aig_authorization(client: httpx.AsyncClient) -> None:
    await configure(client, authentication=True)
    refused = await call(client)
    assert refused.status_code == 401
    body = refused.json()
    assert body["error"] == [{"code": 2009, "message": "Unauthorized"}]
    assert (body["name"], body["internalCode"]) == ("AiGatewayError", 2009)
    wrong = await call(client, headers={"cf-aig-authorization": "Bearer nope"})
    assert wrong.status_code == 401
    allowed = await call(client, headers={"cf-aig-authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200


async def test_the_default_gateway_is_created_on_first_use_and_others_are_unknown(
    client: httpx.AsyncClient,
) -> None:
    unknown = await call(client, gateway="never-made")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == [{"code": 2001, "message": "gateway does not exist"}]
    assert (await client.get(gateway_api("/default"), headers=auth())).status_code == 404
    first = await call(client, gateway="default")
    assert first.status_code == 401  # created with authentication on, as documented
    created = (await client.get(gateway_api("/default"), headers=auth())).json()["result"]
    assert (created["is_default"], created["authentication"], created["collect_logs"]) == (True, True, True)
    assert (created["cache_ttl"], created["rate_limiting_limit"]) == (0, None)


async def test_cache_hits_ignore_metadata_and_end_with_the_ttl(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await configure(client, cache_ttl=120)
    miss = await call(client, metadata={"user": "amy"})
    hit = await call(client, metadata={"user": "bob"})
    other = await call(client, prompt="something else")
    skipped = await call(client, headers={"cf-aig-skip-cache": "true"})
    assert [r.headers["cf-aig-cache-status"] for r in (miss, hit, other, skipped)] == [
        "MISS",
        "HIT",
        "MISS",
        "MISS",
    ]
    assert hit.content == miss.content
    assert hit.headers["cf-aig-log-id"] != miss.headers["cf-aig-log-id"]
    clock.advance(121)
    assert (await call(client)).headers["cf-aig-cache-status"] == "MISS"


async def test_a_request_ttl_overrides_the_gateway_and_a_cache_key_defaults_to_five_minutes(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    ttl = {"cf-aig-cache-ttl": "60"}
    await call(client, headers=ttl)
    assert (await call(client, headers=ttl)).headers["cf-aig-cache-status"] == "HIT"
    keyed = {"cf-aig-cache-key": "greeting"}
    await call(client, prompt="one", headers=keyed)
    same_key = await call(client, prompt="two", headers=keyed)  # the key replaces the body
    assert same_key.headers["cf-aig-cache-status"] == "HIT"
    clock.advance(299)
    assert (await call(client, prompt="three", headers=keyed)).headers["cf-aig-cache-status"] == "HIT"
    clock.advance(2)
    assert (await call(client, prompt="four", headers=keyed)).headers["cf-aig-cache-status"] == "MISS"


async def test_streams_are_not_cached_unless_asked(client: httpx.AsyncClient) -> None:
    await configure(client, cache_ttl=600)
    await call(client, stream=True)
    assert (await call(client, stream=True)).headers["cf-aig-cache-status"] == "MISS"
    await set_options(client, cache_streaming=True)
    first = await call(client, stream=True)
    again = await call(client, stream=True)
    assert again.headers["cf-aig-cache-status"] == "HIT"
    assert again.headers["content-type"].startswith("text/event-stream")
    assert again.content == first.content


async def test_fixed_rate_windows_are_aligned_to_the_clock(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await configure(client, rate_limiting_limit=2, rate_limiting_interval=60, rate_limiting_technique="fixed")
    clock.advance(50)  # 14:14:50
    statuses = [(await call(client)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    clock.advance(10)  # 14:15:00: a new window
    assert (await call(client)).status_code == 200


async def test_sliding_rate_windows_count_the_last_interval(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await configure(
        client, rate_limiting_limit=2, rate_limiting_interval=60, rate_limiting_technique="sliding"
    )
    clock.advance(50)
    assert [(await call(client)).status_code for _ in range(2)] == [200, 200]
    clock.advance(10)  # a fixed window would have reset here
    refused = await call(client)
    assert refused.status_code == 429
    assert refused.json()["internalCode"] == 2003
    clock.advance(50)
    assert (await call(client)).status_code == 200


async def test_retries_follow_the_gateway_and_the_headers_and_show_in_the_store(
    client: httpx.AsyncClient, fake: FakeGateway
) -> None:
    script = behaviour({"times": 2, "error": "out_of_capacity"}, {"tokens": 3})
    await configure(client, retry_max_attempts=3, retry_delay=100, retry_backoff="exponential")
    assert (await client.put("/__aigw/behaviour", json=script)).status_code == 200
    answered = await call(client)
    assert answered.status_code == 200
    record = fake.store.get(answered.headers["cf-aig-log-id"])
    assert record is not None
    assert record.attempt == 3
    assert (await client.put("/__aigw/behaviour", json=script)).status_code == 200
    once = await call(client, headers={"cf-aig-max-attempts": "1"})
    assert once.status_code == 429
    assert once.json()["errors"][0]["code"] == 3040


async def test_spend_limits_refuse_after_recorded_cost_with_the_observed_lag(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await configure(client, spend_limits={"enabled": True, "rules": [SPEND_RULE]})
    assert (await call(client, metadata={"user": "amy"})).status_code == 200  # spends more than the limit
    assert (await call(client, prompt="right after")).status_code == 200  # not yet visible
    clock.advance(2)
    refused = await call(client, prompt="two seconds later")
    assert refused.status_code == 429
    body = refused.json()
    assert body["internalCode"] == 2045
    assert body["message"] == (
        f"Spend limit exceeded: rule 'per-user' (cost limit 0.00001 per 60s, fixed) for workers-ai {NATIVE}"
    )
    assert "retry-after" not in refused.headers
    assert refused.headers["cf-aig-log-id"]
    clock.advance(60)  # the next fixed window
    assert (await call(client)).status_code == 200


async def test_spend_limits_partitioned_by_metadata(client: httpx.AsyncClient) -> None:
    await set_options(client, spend_visibility_lag=0, spend_limit_code=2041)
    rule = {**SPEND_RULE, "metadata": {"user": {"mode": "partition"}}}
    await configure(client, spend_limits={"rules": [rule]})
    assert (await call(client, metadata={"user": "amy"})).status_code == 200
    refused = await call(client, prompt="again", metadata={"user": "amy"})
    assert (refused.status_code, refused.json()["internalCode"]) == (429, 2041)
    assert (await call(client, prompt="again", metadata={"user": "bob"})).status_code == 200


async def test_a_stream_in_flight_is_never_cut_by_a_spend_limit(client: httpx.AsyncClient) -> None:
    await set_options(client, spend_visibility_lag=0)
    await configure(client, spend_limits={"rules": [SPEND_RULE]})
    headers = {**auth(), "x-aigw-behaviour": json.dumps({"tokens": 40, "token_delay_ms": 5})}
    path = f"/v1/{ACCOUNT}/{GATEWAY}/workers-ai/{NATIVE}"
    async with client.stream("POST", path, json={"prompt": "long", "stream": True}, headers=headers) as first:
        second = await call(client, prompt="concurrent")  # admitted: nothing recorded yet
        text = (await first.aread()).decode()
    assert second.status_code == 200
    assert text.rstrip().endswith("data: [DONE]")
    assert (await call(client, prompt="after")).status_code == 429


async def test_updating_with_cache_invalidate_on_update_drops_cached_answers(
    client: httpx.AsyncClient,
) -> None:
    await configure(client, cache_ttl=600, cache_invalidate_on_update=True)
    await call(client)
    assert (await call(client)).headers["cf-aig-cache-status"] == "HIT"
    await configure(client, cache_ttl=600, cache_invalidate_on_update=True)
    assert (await call(client)).headers["cf-aig-cache-status"] == "MISS"


async def test_feature_options_are_checked_and_reset(client: httpx.AsyncClient) -> None:
    bad = await client.put("/__aigw/features", json={"log_visibility_delay": -1, "nonsense": 1})
    assert bad.status_code == 400
    messages = [e["message"] for e in bad.json()["errors"]]
    assert messages[0].startswith("log_visibility_delay: Input should be greater than or equal to 0")
    assert messages[1].startswith("nonsense: Extra inputs are not permitted")
    await set_options(client, cache_streaming=True)
    assert (await client.post("/__aigw/reset")).status_code == 200
    assert (await client.get("/__aigw/features")).json()["result"]["cache_streaming"] is False


async def test_cache_hits_are_served_to_a_spend_blocked_caller(client: httpx.AsyncClient) -> None:
    await set_options(client, spend_visibility_lag=0)
    await configure(client, cache_ttl=600, spend_limits={"rules": [SPEND_RULE]})
    assert (await call(client)).status_code == 200
    assert (await call(client, prompt="new question")).status_code == 429
    hit = await call(client)
    assert (hit.status_code, hit.headers["cf-aig-cache-status"]) == (200, "HIT")


async def test_cache_hits_can_be_left_out_of_the_rate_limit(client: httpx.AsyncClient) -> None:
    await configure(client, cache_ttl=600, rate_limiting_limit=1, rate_limiting_interval=60)
    assert (await call(client)).status_code == 200
    assert (await call(client)).status_code == 429  # by default a hit counts
    await set_options(client, rate_limit_cache_hits=False)
    assert (await call(client)).headers["cf-aig-cache-status"] == "HIT"
    assert (await call(client, prompt="not cached")).status_code == 429


async def test_the_rest_api_through_a_gateway_meets_the_same_settings(client: httpx.AsyncClient) -> None:
    await configure(client, cache_ttl=600, rate_limiting_limit=2, rate_limiting_interval=60)
    path = f"/client/v4/accounts/{ACCOUNT}/ai/run/{NATIVE}"
    headers = {**auth(), "cf-aig-gateway-id": GATEWAY}
    first = await client.post(path, json={"prompt": "hi"}, headers=headers)
    hit = await client.post(path, json={"prompt": "hi"}, headers=headers)
    limited = await client.post(path, json={"prompt": "other"}, headers=headers)
    assert [first.headers["cf-aig-cache-status"], hit.headers["cf-aig-cache-status"]] == ["MISS", "HIT"]
    assert (limited.status_code, limited.json()["internalCode"]) == (429, 2003)
    direct = await client.post(path, json={"prompt": "other"}, headers=auth())  # no gateway: no limits
    assert direct.status_code == 200
    assert "cf-aig-cache-status" not in direct.headers


async def test_new_gateways_require_authentication(client: httpx.AsyncClient) -> None:
    """AI Gateway changelog 2026-11-03: authentication is on when omitted, cannot be off, cannot be turned
    off; a gateway that existed before keeps its setting until turned on."""
    created = await client.post(gateway_api(), json=settings(id="made-now"), headers=auth())
    assert created.status_code == 200, created.text
    assert created.json()["result"]["authentication"] is True
    assert (await call(client, gateway="made-now")).status_code == 401
    off = await client.post(gateway_api(), json=settings(id="open", authentication=False), headers=auth())
    assert off.status_code == 400
    assert off.json()["errors"][0]["message"].startswith(
        "authentication: new gateways require authentication"
    )
    turn_off = await client.put(gateway_api("/made-now"), json=settings(authentication=False), headers=auth())
    assert turn_off.status_code == 400
    # GATEWAY was configured before the run with authentication off: it stays off, and can be turned on.
    await configure(client, cache_ttl=60)
    assert (await call(client)).status_code == 200
    await configure(client, authentication=True)
    assert (await call(client)).status_code == 401


async def test_the_earlier_gateway_authentication_rule_as_an_option() -> None:
    config = make_config(ManualClock(START))
    config.fidelity.new_gateways_require_authentication = False
    async with FakeGateway.running(config) as fake, httpx.AsyncClient(base_url=fake.base_url) as client:
        created = await client.post(gateway_api(), json=settings(id="open"), headers=auth())
        assert created.json()["result"]["authentication"] is False
        assert (await call(client, gateway="open")).status_code == 200


async def test_byok_only_leaves_workers_ai_requests_allowed(client: httpx.AsyncClient) -> None:
    """AI Gateway changelog 2026-09-14: with byok_only, Workers AI requests remain allowed."""
    await configure(client, byok_only=True)
    shown = await client.get(gateway_api(f"/{GATEWAY}"), headers=auth())
    assert shown.json()["result"]["byok_only"] is True
    assert (await call(client)).status_code == 200


async def test_auto_created_gateways_are_made_by_the_fake_not_the_api() -> None:
    config = make_config(ManualClock(START))
    config.fidelity.auto_create_gateways = True
    async with FakeGateway.running(config) as fake, httpx.AsyncClient(base_url=fake.base_url) as client:
        answered = await call(client, gateway="made-on-first-use")
        binding = await client.post(
            "/ai-gateway/run?version=3",
            json={"inputs": {"prompt": "hi"}, "options": {"gateway": {"id": "another-new-one"}}},
            headers={"cf-consn-model-id": NATIVE},
        )
    assert answered.status_code == 200
    assert binding.status_code == 200
