"""Models in time: retirement, aliases and plan requirements, judged by the fake's clock (Workers AI
changelog: 18 models retired on 2026-05-30 with Kimi K2.5 aliased to K2.6; Kimi K2.6, K2.7 Code and GLM-5.2
need Workers Paid from 2026-07-28)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fake_helpers import ACCOUNT, GATEWAY, TOKEN, auth, gateway_path, make_config, serving

from aigw_fakes.clock import ManualClock
from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig

RETIRED = "@cf/meta/llama-3.1-8b-instruct"
KIMI_25, KIMI_26 = "@cf/moonshotai/kimi-k2.5", "@cf/moonshotai/kimi-k2.6"
MESSAGES = {"messages": [{"role": "user", "content": "hi"}]}


def day(text: str) -> ManualClock:
    return ManualClock(datetime.fromisoformat(f"{text}T12:00:00").replace(tzinfo=UTC))


async def run(http: httpx.AsyncClient, model: str, gateway: str = GATEWAY) -> httpx.Response:
    return await http.post(gateway_path(f"workers-ai/{model}", gateway), json=MESSAGES, headers=auth())


async def test_a_retired_model_answers_until_its_date_and_then_is_no_such_model() -> None:
    clock = day("2026-05-29")
    async with serving(make_config(clock=clock)) as (_, http):
        assert (await run(http, RETIRED)).status_code == 200
        clock.advance(86_400)
        refused = await run(http, RETIRED)
    assert refused.status_code == 400
    assert refused.json()["errors"] == [{"message": f"No such model {RETIRED} or task", "code": 5007}]


@pytest.mark.parametrize(
    ("answer", "status", "code"), [("invalid_model_id", 404, 3042), ("served", 200, None)]
)
async def test_what_a_retired_model_answers_is_a_setting(answer: str, status: int, code: int | None) -> None:
    config = make_config(clock=day("2026-06-01"))
    config.fidelity.retired_model = answer  # type: ignore[assignment]
    async with serving(config) as (_, http):
        response = await run(http, RETIRED)
    assert response.status_code == status
    if code is not None:
        assert response.json()["errors"][0]["code"] == code


async def test_kimi_k2_5_is_served_by_k2_6_from_the_retirement_date() -> None:
    clock = day("2026-05-01")
    async with serving(make_config(clock=clock)) as (fake, http):
        before = await run(http, KIMI_25)
        clock.set(day("2026-06-01").time())
        after = await run(http, KIMI_25)
    assert before.json()["result"]["model"] == KIMI_25
    assert after.status_code == 200
    assert after.json()["result"]["model"] == KIMI_26
    assert [r.model for r in fake.store.records()] == [KIMI_25, KIMI_25]  # logged as asked


async def test_a_model_does_not_exist_before_its_release() -> None:
    async with serving(make_config(clock=day("2026-04-19"))) as (_, http):
        response = await run(http, KIMI_26)
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, 5007)


def free_config(clock: ManualClock) -> FakeConfig:
    account = AccountConfig(
        id=ACCOUNT,
        api_tokens=[TOKEN],
        plan="free",
        gateways=[GatewayConfig(id=GATEWAY), GatewayConfig(id="credits", workers_ai_billing_mode="unified")],
    )
    return FakeConfig(accounts=[account], time_scale=0.001, clock=clock)


async def test_workers_paid_models_refuse_free_accounts_from_2026_07_28() -> None:
    clock = day("2026-07-27")
    async with serving(free_config(clock)) as (_, http):
        before = await run(http, KIMI_26)
        clock.advance(86_400)
        refused = await run(http, KIMI_26)
        free_model = await run(http, "@cf/zai-org/glm-4.7-flash")
        through_credits = await run(http, KIMI_26, gateway="credits")
    assert before.status_code == 200
    assert refused.status_code == 403
    assert refused.json()["errors"] == [
        {"message": "This model requires the Workers Paid plan.", "code": 5035}
    ]
    assert free_model.status_code == 200
    assert through_credits.status_code == 200  # prepaid credits give the frontier models (2026-08-06)


async def test_paid_accounts_keep_the_models() -> None:
    async with serving(make_config(clock=day("2026-09-01"))) as (_, http):
        assert (await run(http, KIMI_26)).status_code == 200


async def test_the_binding_path_sees_the_same_lifecycle() -> None:
    async with serving(make_config(clock=day("2026-06-01"))) as (_, http):
        response = await http.post(
            "/run?version=3",
            json={"inputs": {"prompt": "hi"}, "options": {}},
            headers={"cf-consn-model-id": RETIRED},
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 5007
