from __future__ import annotations

import json

import httpx
import pytest

from aigw_harness.live.client import CloudflareClient, LiveError
from aigw_harness.live.cost import CostCapExceeded, CostCaps, CostGuard
from aigw_harness.live.credentials import LiveCredentials, Secret
from aigw_harness.live.findings import spike_results
from aigw_harness.live.logcheck import PollSchedule
from aigw_harness.live.spike import ItemState, WorkerClient, default_plan, new_run_id, run_spike
from aigw_harness.report.render import render_markdown
from tests.live.cloudflare_stub import StubAccount
from tests.live.conftest import environment

FAST = PollSchedule(timeout_s=2.0, interval_s=0.01, max_interval_s=0.05)


def _secrets_of(account: StubAccount) -> list[str]:
    return [account.account_id, account.api_token, account.gateway_token or "", account.spike_key]


async def test_spike_passes_every_item_and_leaks_nothing(
    client: CloudflareClient, account: StubAccount, stub_url: str
) -> None:
    account.log_delay_s = 0.4
    run_id = new_run_id()
    worker = WorkerClient(f"{stub_url}/worker", Secret("SPIKE_KEY", account.spike_key), client.http, client)
    client.redactor.add("SPIKE_KEY", account.spike_key)
    report = await run_spike(
        client,
        default_plan(binding=True),
        CostGuard(CostCaps()),
        tenant_id="tenant-a",
        run_id=run_id,
        worker=worker,
        schedule=FAST,
    )
    states = {item.key: item.state for item in report.items}
    assert states == {
        "connectivity": ItemState.PASS,
        "routing": ItemState.PASS,
        "tenant-metadata": ItemState.PASS,
        "streaming": ItemState.PASS,
        "stream-usage": ItemState.OBSERVED,
        "log-delay": ItemState.OBSERVED,
        "binding": ItemState.PASS,
    }
    assert report.ok
    assert report.mismatches == []
    assert report.listed_by_run_id == 5
    # The stub makes each log readable 400 ms after its response ended; polling starts as each response ends.
    # The lower bound allows for the client noticing the end later than the stub on a busy machine.
    delays = [s.delay_ms or 0 for s in report.sightings]
    assert all(250 <= d < 2000 for d in delays), delays
    usage = next(i for i in report.items if i.key == "stream-usage")
    assert usage.evidence[0] == "usage in 3 of 3 streams"
    # Every request carried the run id and the tenant id, and credentials only in their headers.
    for request in account.requests:
        assert json.loads(request["headers"]["cf-aig-metadata"])["runId"] == run_id
        assert request["headers"]["cf-aig-event-id"].startswith(run_id)
    results = spike_results(report)
    text = results.to_json() + render_markdown(results)
    for value in _secrets_of(account):
        assert value not in text
    statuses = {s.id: s.status for s in results.scenarios}
    assert statuses["spike.live.connectivity"] == "passed"
    assert statuses["spike.live.routing"] == "passed"
    usage_scenario = next(s for s in results.scenarios if s.id == "spike.live.stream-usage")
    assert usage_scenario.questions == ["Is usage present in streams?"]
    assert [f.id for f in usage_scenario.findings if f.raised] == ["SPIKE-STREAM-USAGE"]


async def test_missing_usage_and_missing_logs_are_reported(
    client: CloudflareClient, account: StubAccount
) -> None:
    account.usage_in_stream = False
    account.log_delay_s = 10.0
    report = await run_spike(
        client,
        default_plan()[:2],
        CostGuard(CostCaps()),
        tenant_id="t",
        run_id=new_run_id(),
        schedule=PollSchedule(timeout_s=0.1, interval_s=0.02, max_interval_s=0.02),
    )
    states = {item.key: item for item in report.items}
    assert states["routing"].state is ItemState.FAIL
    assert "json-0: not visible after 0.1 s" in states["routing"].evidence[1]
    assert states["stream-usage"].evidence[0] == "usage in 0 of 1 streams"
    assert states["log-delay"].state is ItemState.UNKNOWN
    assert not report.ok


async def test_the_run_stops_before_sending_when_over_the_cap(
    client: CloudflareClient, account: StubAccount
) -> None:
    with pytest.raises(CostCapExceeded):
        await run_spike(
            client,
            default_plan(),
            CostGuard(CostCaps(max_requests=1)),
            tenant_id="t",
            run_id="r",
            schedule=FAST,
        )
    assert account.requests == []


async def test_transport_errors_are_redacted(account: StubAccount) -> None:
    env = environment(account, "http://127.0.0.1:9")  # nothing listens on the discard port
    creds = LiveCredentials.from_environment(env)
    async with httpx.AsyncClient(timeout=1) as http:
        client = CloudflareClient(creds, http)
        with pytest.raises(LiveError) as info:
            await client.account_get("ai-gateway/gateways/x")
        obs = await client.run_probe(default_plan()[0], tenant_id="t", run_id="r")
    assert "cannot reach Cloudflare's API" in str(info.value)
    assert "[REDACTED:CLOUDFLARE_ACCOUNT_ID]" in str(info.value)
    assert account.account_id not in str(info.value)
    assert obs.error is not None
    assert account.account_id not in obs.error


async def test_spike_against_the_fake_standing_in_for_cloudflare() -> None:
    """The same run with the fake as Cloudflare: its gateway endpoint and its Logs API."""
    import secrets

    from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
    from aigw_fakes.server import FakeGateway

    account, token = secrets.token_hex(16), secrets.token_urlsafe(32)
    config = FakeConfig(
        accounts=[AccountConfig(id=account, api_tokens=[token], gateways=[GatewayConfig(id="spike-gw")])],
        time_scale=0.01,
    )
    async with FakeGateway.running(config) as fake, httpx.AsyncClient(timeout=10) as http:
        env = {
            "CLOUDFLARE_ACCOUNT_ID": account,
            "CLOUDFLARE_API_TOKEN": token,
            "AIGW_GATEWAY_ID": "spike-gw",
            "AIGW_LIVE_API_BASE": fake.api_base_url,
            "AIGW_LIVE_GATEWAY_BASE": f"{fake.base_url}/v1",
        }
        client = CloudflareClient(LiveCredentials.from_environment(env), http)
        run_id = new_run_id()
        report = await run_spike(
            client, default_plan(), CostGuard(CostCaps()), tenant_id="tenant-f", run_id=run_id, schedule=FAST
        )
        records = fake.store.records()
    assert report.ok, [(i.key, i.state, i.evidence) for i in report.items]
    assert report.mismatches == []
    assert report.listed_by_run_id == 4
    assert all((r.metadata or {}).get("tenantId") == "tenant-f" for r in records)
    assert all((r.metadata or {}).get("runId") == run_id for r in records)
    assert {r.event_id for r in records} == {
        f"{run_id}.{name}" for name in ("json-0", "stream-0", "json-1", "stream-1")
    }
    text = spike_results(report).to_json()
    assert account not in text
    assert token not in text


async def test_a_stream_that_breaks_off_keeps_what_arrived(account: StubAccount) -> None:
    async def breaking(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/event-stream"), (b"cf-aig-log-id", b"01BROKEN")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b'data: {"response":"Hi"}\n\n', "more_body": True})  # type: ignore[operator]
        raise RuntimeError("the upstream went away")

    from aigw_harness.proxy.serve import serve_asgi

    async with serve_asgi(breaking) as url, httpx.AsyncClient(timeout=5) as http:
        creds = LiveCredentials.from_environment(environment(account, url))
        client = CloudflareClient(creds, http)
        obs = await client.run_probe(default_plan()[1], tenant_id="t", run_id="r")
    assert obs.status == 200
    assert obs.text == "Hi"
    assert obs.token_events == 1
    assert obs.truncated
    assert obs.error is not None
    assert obs.error.startswith("RemoteProtocolError")
    assert account.account_id not in obs.error
