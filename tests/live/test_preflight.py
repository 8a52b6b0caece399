from __future__ import annotations

from datetime import date

import httpx

from aigw_harness.live.client import CloudflareClient
from aigw_harness.live.credentials import LiveCredentials
from aigw_harness.live.preflight import CheckState, run_preflight
from aigw_harness.proxy.serve import serve_asgi
from tests.live.cloudflare_stub import StubAccount, build_app
from tests.live.conftest import environment

MODELS = ["@cf/meta/llama-3.1-8b-instruct-fp8-fast"]


async def _preflight(account: StubAccount) -> dict[str, tuple[CheckState, str, str]]:
    async with serve_asgi(build_app(account)) as url, httpx.AsyncClient() as http:
        env = environment(account, url)
        client = CloudflareClient(LiveCredentials.from_environment(env), http)
        report = await run_preflight(client, MODELS)
        for value in (account.api_token, account.account_id, account.gateway_token or "never"):
            assert value not in report.render()
    return {c.name: (c.state, c.detail, c.fix) for c in report.checks}


async def test_all_good(account: StubAccount) -> None:
    checks = await _preflight(account)
    assert {name: state for name, (state, _, _) in checks.items()} == {
        "API token": CheckState.PASS,
        "gateway": CheckState.PASS,
        "gateway logging": CheckState.PASS,
        "gateway authentication": CheckState.PASS,
        "Logs API": CheckState.PASS,
        "model @cf/meta/llama-3.1-8b-instruct-fp8-fast": CheckState.PASS,
    }


async def test_names_the_missing_permissions(account: StubAccount) -> None:
    account.token_permissions = {"workers-ai"}
    checks = await _preflight(account)
    assert checks["gateway"] == (
        CheckState.FAIL,
        "the token may not read AI Gateway settings (HTTP 403)",
        "add the permission Account → AI Gateway → Read to the token",
    )
    assert checks["Logs API"][2] == "add the permission Account → AI Gateway → Read to the token"
    account.token_permissions = {"gateway", "logs"}
    checks = await _preflight(account)
    assert checks["model @cf/meta/llama-3.1-8b-instruct-fp8-fast"][2] == (
        "add the permission Account → Workers AI → Read to the token"
    )


async def test_gateway_problems(account: StubAccount) -> None:
    account.collect_logs = False
    real_token = account.gateway_token
    checks = await _preflight(account)
    assert checks["gateway logging"][0] is CheckState.FAIL
    assert checks["gateway logging"][2] == "turn on logging in the gateway's settings (collect_logs)"

    account.gateway_id = "other"  # the stub knows another gateway than the one configured
    env_gateway = StubAccount(
        account_id=account.account_id,
        api_token=account.api_token,
        gateway_id="spike-gw",
        gateway_token=real_token,
    )
    async with serve_asgi(build_app(account)) as url, httpx.AsyncClient() as http:
        client = CloudflareClient(LiveCredentials.from_environment(environment(env_gateway, url)), http)
        report = await run_preflight(client, MODELS)
    gateway = next(c for c in report.checks if c.name == "gateway")
    assert gateway.detail == "no gateway spike-gw in this account"
    assert "set AIGW_GATEWAY_ID to an existing gateway" in gateway.fix
    assert not report.ok


async def test_authenticated_gateway_without_gateway_token(account: StubAccount, stub_url: str) -> None:
    env = environment(account, stub_url)
    del env["AIGW_GATEWAY_TOKEN"]
    async with httpx.AsyncClient() as http:
        report = await run_preflight(CloudflareClient(LiveCredentials.from_environment(env), http), MODELS)
    check = next(c for c in report.checks if c.name == "gateway authentication")
    assert check.state is CheckState.FAIL
    assert check.fix == "set AIGW_GATEWAY_TOKEN to a token with AI Gateway Run (sent as cf-aig-authorization)"


async def test_invalid_token_skips_the_rest(account: StubAccount, stub_url: str) -> None:
    env = environment(account, stub_url) | {"CLOUDFLARE_API_TOKEN": "not-the-token-at-all"}
    async with httpx.AsyncClient() as http:
        report = await run_preflight(CloudflareClient(LiveCredentials.from_environment(env), http), MODELS)
    assert report.checks[0].state is CheckState.FAIL
    assert report.checks[0].detail == "Cloudflare does not accept the token (HTTP 401, codes [1000])"
    assert [c.state for c in report.checks[1:]] == [CheckState.SKIP] * 5


async def test_models_are_checked_against_the_accounts_list_and_the_changelog(
    account: StubAccount, stub_url: str
) -> None:
    def entry(name: str, **properties: str) -> dict[str, object]:
        return {"name": name, "properties": [{"property_id": k, "value": v} for k, v in properties.items()]}

    account.models = [
        entry("@cf/meta/llama-3.1-8b-instruct", planned_deprecation_date="2026-05-30"),
        entry("@cf/meta/llama-3.2-3b-instruct", planned_deprecation_date="2027-01-31"),
        entry("@cf/moonshotai/kimi-k2.6"),
        entry("@cf/meta/llama-3.1-8b-instruct-fast"),
    ]
    named = {
        "@cf/meta/llama-3.1-8b-instruct": ["example.json"],
        "@cf/meta/llama-3.2-3b-instruct": ["FALLBACK_MODEL_ID"],
        "@cf/moonshotai/kimi-k2.5": ["MODEL_ID"],
        "@cf/moonshotai/kimi-k2.6": ["--model"],
        "@cf/meta/llama-3.1-8b-instruct-fast": ["alpha.json"],
        "@cf/meta/llama-9-unknown": ["alpha.json"],
    }
    async with httpx.AsyncClient() as http:
        client = CloudflareClient(LiveCredentials.from_environment(environment(account, stub_url)), http)
        report = await run_preflight(client, named, today=date(2026, 12, 7))
    checks = {c.name.removeprefix("model "): (c.state, c.detail, c.fix) for c in report.checks}
    assert checks["@cf/meta/llama-3.1-8b-instruct"] == (
        CheckState.FAIL,
        "retired on 2026-05-30 (named in example.json)",
        "name a current model in the tenant file or variable (see the Workers AI models page)",
    )
    # Not in the list any more: the changelog says where its requests go.
    assert checks["@cf/moonshotai/kimi-k2.5"][:2] == (
        CheckState.FAIL,
        "retired on 2026-05-30; requests go to @cf/moonshotai/kimi-k2.6 (named in MODEL_ID)",
    )
    assert checks["@cf/meta/llama-3.2-3b-instruct"][:2] == (
        CheckState.WARN,
        "available, but to be retired on 2027-01-31 (named in FALLBACK_MODEL_ID)",
    )
    assert checks["@cf/moonshotai/kimi-k2.6"][:2] == (
        CheckState.WARN,
        "available, but needs the Workers Paid plan (on Free: HTTP 403, code 5035) (named in --model)",
    )
    assert checks["@cf/meta/llama-9-unknown"][0] is CheckState.FAIL
    assert "not in the account's model list" in checks["@cf/meta/llama-9-unknown"][1]
    assert checks["@cf/meta/llama-3.1-8b-instruct-fast"][0] is CheckState.PASS
    assert not report.ok
