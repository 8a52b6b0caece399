from __future__ import annotations

import pytest

from aigw_harness.errors import ConfigError, TargetUnavailable
from aigw_harness.live.cost import CostCapExceeded, CostCaps, CostGuard, PlannedRequest, estimate, parse_rate
from aigw_harness.live.credentials import LiveCredentials, Secret
from aigw_harness.live.spike import default_plan


def test_missing_variables_are_all_named_with_their_purpose() -> None:
    with pytest.raises(TargetUnavailable) as info:
        LiveCredentials.from_environment({"AIGW_GATEWAY_ID": "gw"})
    message = str(info.value)
    assert "CLOUDFLARE_ACCOUNT_ID: the Cloudflare account id" in message
    assert "CLOUDFLARE_API_TOKEN: an API token with AI Gateway Read and Workers AI Read" in message
    assert "AIGW_GATEWAY_ID" not in message.split("\n")[1:3][0]
    assert "Set AIGW_GATEWAY_TOKEN too if the gateway is authenticated." in message


def test_secrets_do_not_print(account_env: dict[str, str]) -> None:
    creds = LiveCredentials.from_environment(account_env)
    shown = f"{creds!r} {creds} {creds.api_token} {creds.gateway_token!r}"
    for name in ("CLOUDFLARE_API_TOKEN", "AIGW_GATEWAY_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        assert account_env[name] not in shown
    assert "Secret(CLOUDFLARE_API_TOKEN)" in shown
    assert Secret("A", "x") == Secret("A", "x")


@pytest.fixture
def account_env() -> dict[str, str]:
    import secrets

    return {
        "CLOUDFLARE_ACCOUNT_ID": secrets.token_hex(16),
        "CLOUDFLARE_API_TOKEN": secrets.token_urlsafe(32),
        "AIGW_GATEWAY_ID": "gw",
        "AIGW_GATEWAY_TOKEN": secrets.token_urlsafe(32),
    }


def test_estimate_is_the_worst_case_from_bytes_and_max_tokens() -> None:
    request = PlannedRequest("p", "@cf/meta/llama-3.2-3b-instruct", [{"role": "user", "content": "hi"}], 100)
    result = estimate(request)
    # [{"role": "user", "content": "hi"}] is 35 bytes, + 16 per message + 32 per request.
    assert result.input_tokens == 35 + 16 + 32
    assert result.output_tokens == 100
    assert result.neurons == pytest.approx((83 * 4625 + 100 * 30475) / 1e6)
    assert result.usd == pytest.approx(result.neurons * 0.011 / 1000)


def test_the_default_plan_fits_the_default_caps() -> None:
    estimates = CostGuard(CostCaps()).check_plan(default_plan(binding=True))
    assert len(estimates) == 5
    assert sum(e.usd for e in estimates) < CostCaps().max_usd


def test_a_plan_over_the_cap_refuses_to_start_and_says_how_to_raise_it() -> None:
    guard = CostGuard(CostCaps(max_requests=2, max_tokens=100, max_usd=0.000001))
    with pytest.raises(CostCapExceeded) as info:
        guard.check_plan(default_plan())
    message = str(info.value)
    assert message.startswith("the run's worst case is over its caps, so it did not start:\n")
    assert "  4 requests > cap 2 (raise with --max-requests)" in message
    assert "tokens > cap 100 (raise with --max-tokens)" in message
    assert "> cap $0.000001 (raise with --max-usd)" in message
    assert guard.requests == 0


def test_admit_counts_and_refuses_the_request_that_breaks_a_cap() -> None:
    plan = default_plan()
    guard = CostGuard(CostCaps(max_requests=2))
    guard.admit(plan[0])
    guard.admit(plan[1])
    with pytest.raises(CostCapExceeded, match=r"request json-1 refused: 3 requests > cap 2"):
        guard.admit(plan[2])
    assert guard.requests == 2


def test_unknown_model_needs_an_explicit_rate() -> None:
    request = PlannedRequest("p", "@cf/x/unknown", [], 10)
    with pytest.raises(ConfigError, match="no neuron rate is known for model @cf/x/unknown; give one with"):
        estimate(request)
    model, rate = parse_rate("@cf/x/unknown=100,200")
    assert estimate(request, {model: rate}).neurons == pytest.approx(((2 + 32) * 100 + 10 * 200) / 1e6)
    with pytest.raises(ConfigError, match="expected MODEL=IN,OUT"):
        parse_rate("@cf/x/unknown=1")
