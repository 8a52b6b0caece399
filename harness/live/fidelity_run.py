"""Running a fidelity comparison: the fake in-process on one side; live or cassettes on the other.

- ``against_live``: probes go to the real gateway (under the cost guard) and, with ``record_dir``, through
  a recording proxy (one listener for the gateway host, one for the API host) so that the run can be
  compared again offline: cassettes and ``fidelity-run.json`` in ``record_dir``.
- ``against_cassettes``: the same probes go to a replay server of such a directory.

On the fake side, an in-process fake is configured like the second target (the gateway id, and gateway
authentication when a gateway token is used), and answers without delays.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pydantic
import yaml

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.datafiles import load_model
from aigw_fakes.server import FakeGateway
from aigw_harness.errors import ConfigError
from aigw_harness.live.client import CloudflareClient
from aigw_harness.live.cost import CostGuard
from aigw_harness.live.credentials import (
    ACCOUNT_ID_ENV,
    API_TOKEN_ENV,
    GATEWAY_TOKEN_ENV,
    LiveCredentials,
    Secret,
)
from aigw_harness.live.fidelity import FidelityProbe, FidelityReport, ProbeOutcome, compare, run_probes
from aigw_harness.live.logcheck import DEFAULT_SCHEDULE, PollSchedule
from aigw_harness.live.spike import new_run_id
from aigw_harness.proxy.redaction import Redactor
from aigw_harness.proxy.replay import CassetteLibrary, running_replay

__all__ = ["RUN_FILE", "RecordedRun", "against_cassettes", "against_live", "fake_outcomes"]

RUN_FILE = "fidelity-run.yaml"
"""Beside the cassettes (which are ``*.json``): what a replay needs to address the recorded gateway."""


class RecordedRun(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    gateway_id: str
    authenticated: bool
    model: str


# Stand-ins sent to a replay server; recorded requests hold the redaction markers of the same names.
_REPLAY_SECRETS = {
    ACCOUNT_ID_ENV: "aigw-replay-account",
    API_TOKEN_ENV: "aigw-replay-api-token",
    GATEWAY_TOKEN_ENV: "aigw-replay-gateway-token",
}


async def fake_outcomes(
    probes: list[FidelityProbe], *, gateway_id: str, authenticated: bool, run_id: str, schedule: PollSchedule
) -> list[ProbeOutcome]:
    api_token, gateway_token = "aigw-fidelity-api-token", "aigw-fidelity-gateway-token"
    config = FakeConfig(
        accounts=[
            AccountConfig(
                id="aigw-fidelity-account",
                api_tokens=[api_token, gateway_token],
                gateways=[GatewayConfig(id=gateway_id, authentication=authenticated)],
            )
        ],
        time_scale=0.001,
    )
    async with FakeGateway.running(config) as fake, httpx.AsyncClient(timeout=30) as http:
        creds = LiveCredentials(
            account_id=Secret(ACCOUNT_ID_ENV, fake.account_id),
            api_token=Secret(API_TOKEN_ENV, api_token),
            gateway_id=gateway_id,
            gateway_token=Secret(GATEWAY_TOKEN_ENV, gateway_token) if authenticated else None,
            api_base=fake.api_base_url,
            gateway_base=f"{fake.base_url}/v1",
        )
        return await run_probes(CloudflareClient(creds, http), probes, run_id=run_id, schedule=schedule)


def _split(base: str) -> tuple[str, str]:
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


@asynccontextmanager
async def _recording(creds: LiveCredentials, record_dir: Path | None) -> AsyncIterator[LiveCredentials]:
    """The credentials, re-pointed through recording proxies when ``record_dir`` is given."""
    if record_dir is None:
        yield creds
        return
    (gateway_origin, gateway_prefix), (api_origin, api_prefix) = (
        _split(creds.gateway_base),
        _split(creds.api_base),
    )
    from aigw_harness.proxy.mitm import ProxySettings, running_proxy  # the [proxy] extra, only when recording

    settings = ProxySettings(upstreams=[gateway_origin, api_origin], cassette_dir=record_dir)
    async with running_proxy(settings, creds.redactor()) as ([gateway_proxy, api_proxy], _, _):
        yield LiveCredentials(
            account_id=creds.account_id,
            api_token=creds.api_token,
            gateway_id=creds.gateway_id,
            gateway_token=creds.gateway_token,
            api_base=api_proxy + api_prefix,
            gateway_base=gateway_proxy + gateway_prefix,
        )


async def against_live(
    creds: LiveCredentials,
    probes: list[FidelityProbe],
    guard: CostGuard,
    *,
    model: str,
    record_dir: Path | None = None,
    schedule: PollSchedule = DEFAULT_SCHEDULE,
    label: str = "live",
) -> FidelityReport:
    planned = [p.planned for p in probes if p.planned is not None]
    guard.check_plan(planned)
    for request in planned:
        guard.admit(request)
    run_id = new_run_id()
    authenticated = creds.gateway_token is not None
    async with _recording(creds, record_dir) as routed, httpx.AsyncClient(timeout=60) as http:
        other = await run_probes(CloudflareClient(routed, http), probes, run_id=run_id, schedule=schedule)
    if record_dir is not None:
        meta = RecordedRun(gateway_id=creds.gateway_id, authenticated=authenticated, model=model)
        (record_dir / RUN_FILE).write_text(
            yaml.safe_dump(meta.model_dump(), sort_keys=False), encoding="utf-8"
        )
    mine = await fake_outcomes(
        probes, gateway_id=creds.gateway_id, authenticated=authenticated, run_id=run_id, schedule=schedule
    )
    return _report(label, model, mine, other, creds.redactor())


async def against_cassettes(
    directory: Path, probes: list[FidelityProbe], *, schedule: PollSchedule = DEFAULT_SCHEDULE
) -> FidelityReport:
    run_file = directory / RUN_FILE
    if not run_file.is_file():
        raise ConfigError(
            f"{directory} is not a fidelity recording: {RUN_FILE} is missing (record one with "
            "aigw fidelity --against live --record DIR)"
        )
    meta = load_model(run_file, RecordedRun)
    gateway_id, authenticated, model = meta.gateway_id, meta.authenticated, meta.model
    redactor = Redactor(dict(_REPLAY_SECRETS))
    run_id = new_run_id()
    library = CassetteLibrary.from_directory(directory, redactor)
    async with running_replay(library, time_scale=0) as url:
        creds = LiveCredentials(
            account_id=Secret(ACCOUNT_ID_ENV, _REPLAY_SECRETS[ACCOUNT_ID_ENV]),
            api_token=Secret(API_TOKEN_ENV, _REPLAY_SECRETS[API_TOKEN_ENV]),
            gateway_id=gateway_id,
            gateway_token=Secret(GATEWAY_TOKEN_ENV, _REPLAY_SECRETS[GATEWAY_TOKEN_ENV])
            if authenticated
            else None,
            api_base=f"{url}/client/v4",
            gateway_base=f"{url}/v1",
        )
        async with httpx.AsyncClient(timeout=30) as http:
            other = await run_probes(CloudflareClient(creds, http), probes, run_id=run_id, schedule=schedule)
    mine = await fake_outcomes(
        probes, gateway_id=gateway_id, authenticated=authenticated, run_id=run_id, schedule=schedule
    )
    return _report(f"cassettes {directory.name}", model, mine, other, redactor)


def _report(
    label: str, model: str, mine: list[ProbeOutcome], other: list[ProbeOutcome], redactor: Redactor
) -> FidelityReport:
    differences, coverage = compare(mine, other)
    report = FidelityReport("fake", label, model, differences, coverage, mine, other)
    if redactor.contains_secret(json.dumps(report.to_dict())):
        raise RuntimeError("the fidelity report still held a secret; it was not produced")
    return report
