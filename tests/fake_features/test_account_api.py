"""Token verification and model search, as Cloudflare's API answers them."""

from __future__ import annotations

import httpx

from aigw_fakes.server import FakeGateway


async def test_token_verify_answers_active_for_a_known_token_and_401_code_1000_otherwise(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    good = {"authorization": f"Bearer {fake.api_token}"}
    for path in ("/client/v4/user/tokens/verify", f"/client/v4/accounts/{fake.account_id}/tokens/verify"):
        answer = await client.get(path, headers=good)
        assert answer.status_code == 200
        body = answer.json()
        assert body["success"] is True
        assert body["result"]["status"] == "active"
        assert len(body["result"]["id"]) == 32
        assert fake.api_token not in answer.text
        refused = await client.get(path, headers={"authorization": "Bearer not-a-token"})
        assert refused.status_code == 401
        assert [e["code"] for e in refused.json()["errors"]] == [1000]
    other_account = await client.get("/client/v4/accounts/ffff/tokens/verify", headers=good)
    assert other_account.status_code == 401


async def test_model_search_lists_catalogue_models_by_name(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    headers = {"authorization": f"Bearer {fake.api_token}"}
    path = f"/client/v4/accounts/{fake.account_id}/ai/models/search"
    answer = await client.get(path, params={"search": "llama-3.1-8b-instruct-fp8"}, headers=headers)
    assert answer.status_code == 200
    names = [m["name"] for m in answer.json()["result"]]
    assert names == ["@cf/meta/llama-3.1-8b-instruct-fp8-fast"]
    assert answer.json()["result"][0]["task"] == {"name": "Text Generation"}
    nothing = await client.get(path, params={"search": "llama-9-unknown"}, headers=headers)
    assert nothing.json()["result"] == []
    denied = await client.get(path, headers={"authorization": "Bearer wrong"})
    assert denied.status_code in (401, 403)


async def test_model_search_states_each_models_lifecycle(
    fake: FakeGateway, client: httpx.AsyncClient
) -> None:
    headers = {"authorization": f"Bearer {fake.api_token}"}
    path = f"/client/v4/accounts/{fake.account_id}/ai/models/search"
    answer = await client.get(path, params={"search": "kimi-k2.5"}, headers=headers)
    [kimi] = answer.json()["result"]
    assert {"property_id": "planned_deprecation_date", "value": "2026-05-30"} in kimi["properties"]
