"""Response headers, request ids, ``cf-aig-metadata``, ``cf-aig-event-id``, ``cf-aig-custom-cost``, cost and
log collection, through HTTP."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from fake_helpers import ACCOUNT, GATEWAY, NATIVE, SMALL, api_path, auth, gateway_path, make_config, serving

from aigw_fakes.clock import ManualClock
from aigw_fakes.server import FakeGateway

ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
UUID7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
RUN = gateway_path(f"workers-ai/{NATIVE}")


async def post(client: httpx.AsyncClient, headers: dict[str, str], path: str = RUN) -> httpx.Response:
    return await client.post(path, json={"prompt": "x"}, headers={**auth(), **headers})


async def test_gateway_response_headers(client: httpx.AsyncClient) -> None:
    response = await post(client, {"cf-aig-event-id": "trace-42"})
    headers = response.headers
    assert re.fullmatch(UUID7, headers["cf-aig-log-id"])
    assert headers["cf-aig-request-id"] == headers["cf-aig-log-id"]
    assert headers["cf-aig-step"] == "0"
    assert headers["cf-aig-cache-status"] == "MISS"
    assert headers["cf-aig-event-id"] == "trace-42"  # a client-set event id is still returned
    assert re.fullmatch(UUID, headers["cf-ai-req-id"])
    second = await post(client, {})
    assert second.headers["cf-aig-log-id"] != headers["cf-aig-log-id"]
    # 2026-10-08: a single-step request carries one id in all three headers.
    ids = {second.headers[name] for name in ("cf-aig-log-id", "cf-aig-request-id", "cf-aig-event-id")}
    assert ids == {second.headers["cf-aig-log-id"]}


async def test_log_ids_are_uuidv7_with_the_fake_clock_in_front() -> None:
    clock = ManualClock(1_791_000_000.5)
    async with serving(make_config(clock=clock)) as (_, client):
        first = (await post(client, {})).headers["cf-aig-log-id"]
        clock.advance(1)
        second = (await post(client, {})).headers["cf-aig-log-id"]
    assert int(first.replace("-", "")[:12], 16) == 1_791_000_000_500
    assert first < second  # time-ordered, so logs sort by id as by creation


async def test_earlier_ulid_ids_as_a_setting() -> None:
    config = make_config()
    config.fidelity.log_ids = "ulid"
    async with serving(config) as (_, client):
        response = await post(client, {})
        with_event = await post(client, {"cf-aig-event-id": "mine"})
    headers = response.headers
    assert re.fullmatch(ULID, headers["cf-aig-log-id"])
    assert re.fullmatch(UUID, headers["cf-aig-request-id"])
    assert "cf-aig-event-id" not in headers
    assert with_event.headers["cf-aig-event-id"] == "mine"


async def test_gateway_headers_on_refusals_too(client: httpx.AsyncClient) -> None:
    response = await post(client, {"cf-aig-event-id": "e", "x-aigw-behaviour": '{"error": "spend_limit"}'})
    assert response.status_code == 429
    assert response.headers["cf-aig-event-id"] == "e"
    assert re.fullmatch(UUID7, response.headers["cf-aig-log-id"])


async def test_direct_workers_ai_has_no_gateway_headers(client: httpx.AsyncClient) -> None:
    response = await post(client, {}, api_path(f"run/{NATIVE}"))
    assert re.fullmatch(UUID, response.headers["cf-ai-req-id"])
    assert not [name for name in response.headers if name.startswith("cf-aig-")]


@pytest.mark.parametrize(
    ("header", "stored"),
    [
        ('{"team":"AI","user":12345,"test":true}', {"team": "AI", "user": 12345, "test": True}),
        ('{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}', {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}),
        ('{"a":1,"b":null}', None),
        ('{"a":1,"b":{"nested":true}}', None),
        ('{"a":1,"b":[1]}', None),
        ('{"long":"' + "v" * 600 + '"}', {"long": "v" * 600}),
    ],
    ids=["scalars", "first-five", "null-drops-all", "object-drops-all", "array-drops-all", "long-value"],
)
async def test_metadata_rules(
    fake: FakeGateway, client: httpx.AsyncClient, header: str, stored: object
) -> None:
    response = await post(client, {"cf-aig-metadata": header})
    assert response.status_code == 200
    [record] = fake.store.records()
    assert record.metadata == stored


async def test_cost_is_neurons_at_the_workers_ai_price(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    # The observed log: llama-3.2-3b, 42 tokens in, 2 out: 0.2552 neurons, cost 2.807e-06 USD.
    headers = {"x-aigw-behaviour": json.dumps({"prompt_tokens": 42, "tokens": 2})}
    response = await post(client, headers, gateway_path(f"workers-ai/{SMALL}"))
    usage = response.json()["result"]["usage"]
    assert usage["neurons"] == pytest.approx(0.2552)
    [record] = fake.store.records()
    assert (record.tokens_in, record.tokens_out) == (42, 2)
    assert record.cost == pytest.approx(0.2552 * 0.011 / 1000)
    assert record.custom_cost is False


async def test_custom_cost(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    behaviour = json.dumps({"prompt_tokens": 100, "tokens": 10})
    custom = json.dumps({"per_token_in": 0.000001, "per_token_out": 0.000002})
    await post(client, {"x-aigw-behaviour": behaviour, "cf-aig-custom-cost": custom})
    await post(client, {"x-aigw-behaviour": behaviour, "cf-aig-custom-cost": '{"total_cost": 0.5}'})
    await post(client, {"x-aigw-behaviour": behaviour, "cf-aig-custom-cost": "nonsense"})
    first, total, ignored = fake.store.records()
    assert (first.cost, first.custom_cost) == (pytest.approx(0.00012), True)
    assert (total.cost, total.custom_cost) == (0.5, True)
    assert ignored.custom_cost is False


async def test_collect_log_header_and_payload(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    await post(client, {"cf-aig-collect-log": "false"})
    await post(client, {"cf-aig-collect-log-payload": "false"})
    await post(client, {}, api_path(f"run/{NATIVE}"))
    off, no_payload, direct = fake.store.records()
    assert off.logged is False
    assert (no_payload.logged, no_payload.log_payload) == (True, False)
    assert direct.gateway_id is None


async def test_store_record_fields(fake: FakeGateway, client: httpx.AsyncClient) -> None:
    body = {"prompt": "hello", "stream": True}
    headers = {
        **auth(),
        "cf-aig-metadata": '{"user":"u"}',
        "x-aigw-behaviour": '{"tokens": 3, "prompt_tokens": 7}',
    }
    async with client.stream("POST", RUN, json=body, headers=headers) as response:
        raw = await response.aread()
    [record] = fake.store.records()
    assert record.id == response.headers["cf-aig-log-id"]
    assert (record.account_id, record.gateway_id, record.provider, record.model) == (
        ACCOUNT,
        GATEWAY,
        "workers-ai",
        NATIVE,
    )
    assert (record.path, record.request_type, record.model_type) == (RUN, "workers-ai", "text-generation")
    assert (record.status_code, record.success, record.stream, record.cached) == (200, True, True, False)
    assert (record.tokens_in, record.tokens_out, record.step, record.attempt) == (7, 3, 0, 1)
    assert record.response_body == raw
    assert record.response_size == len(raw)
    assert record.response_content_type == "text/event-stream"
    assert record.request_content_type == "application/json"
    assert json.loads(record.request_body) == body
    assert record.complete
    assert record.duration_ms >= 0


async def test_store_drops_the_oldest_records_beyond_its_limit() -> None:
    async with serving(make_config(max_records=10)) as (fake, http):
        ids = []
        for _ in range(25):
            response = await http.post(RUN, json={"prompt": "x"}, headers=auth())
            ids.append(response.headers["cf-aig-log-id"])
        kept = [r.id for r in fake.store.records()]
        assert 10 <= len(kept) < 25
        assert kept == ids[-len(kept) :]
        assert fake.store.get(ids[0]) is None
        assert fake.store.get(ids[-1]) is not None
