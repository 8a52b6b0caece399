"""Tenant files and environment overrides: the platform's schema, errors naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigw_fakes.datafiles import DataFileError
from aigw_harness.cli import main
from aigw_harness.errors import ConfigError
from aigw_harness.gateway.tenants import EnvOverrides, TenantRegistry, load_tenants

from .conftest import TENANTS_DIR, tenant


def test_sample_tenants_are_like_the_platforms() -> None:
    tenants = {t.tenant_id: t for t in load_tenants(TENANTS_DIR)}
    assert set(tenants) == {"alpha", "example"}
    alpha, example = tenants["alpha"], tenants["example"]
    assert alpha.allow_list_enabled
    assert alpha.token_budget is not None
    assert (alpha.token_budget.daily, alpha.token_budget.monthly) == (50000, 1000000)
    assert not example.allow_list_enabled
    assert example.token_budget is None
    assert (example.session_retention_days, example.max_messages_per_session) == (30, 1000)


def test_platform_layout_is_read_too(tmp_path: Path) -> None:
    (tmp_path / "beta").mkdir()
    source = json.loads((TENANTS_DIR / "example.json").read_text())
    (tmp_path / "beta" / "tenant.config.json").write_text(json.dumps({**source, "tenantId": "beta"}))
    assert [t.tenant_id for t in load_tenants(tmp_path)] == ["beta"]


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{\n  "tenantId": "bad",\n  "accountId": "a",\n  "aiGatewayId": "g",\n'
        '  "aiModels": {"chat": "@cf/x"},\n  "vectorizeNamespace": "v",\n'
        '  "rateLimit": {"perMinute": 0, "burst": 1},\n  "featureFlags": {"modelAllowList": "yes"},\n'
        '  "allowedHosts": [], "apiKeys": [],\n  "tokenBudget": {"daily": -5}\n}\n'
    )
    with pytest.raises(DataFileError) as error:
        load_tenants(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{bad}: 4 problems")
    assert f"{bad}:5: aiModels.embeddings: Field required" in message
    assert f"{bad}:7: rateLimit.perMinute: Input should be greater than 0" in message
    assert f"{bad}:8: featureFlags.modelAllowList: Input should be a valid boolean" in message
    assert f"{bad}:10: tokenBudget.daily: Input should be greater than 0" in message


def test_duplicate_tenant_ids_name_both_files(tmp_path: Path) -> None:
    source = (TENANTS_DIR / "example.json").read_text()
    (tmp_path / "a.json").write_text(source)
    (tmp_path / "b.json").write_text(source)
    with pytest.raises(
        DataFileError,
        match=r"b\.json: 1 problem\n.*tenantId: tenant 'example' is already defined in .*a\.json",
    ):
        load_tenants(tmp_path)


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_tenants(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"no tenant files in .*: expected \*\.json"):
        load_tenants(tmp_path)


def test_later_tenant_wins_a_duplicate_host_or_key() -> None:
    first = tenant(tenantId="a", allowedHosts=["shared.local"], apiKeys=["k"])
    second = tenant(tenantId="b", allowedHosts=["shared.local"], apiKeys=["k"])
    registry = TenantRegistry([first, second])
    assert registry.resolve_id(tenant_header=None, hostname="SHARED.local", api_key=None) == "b"
    assert registry.resolve_id(tenant_header=None, hostname="other", api_key="k") == "b"
    assert registry.resolve_id(tenant_header="", hostname="other", api_key=None) is None


def test_environment_overrides_as_the_platform_reads_them() -> None:
    env = EnvOverrides({"MAX_MESSAGE_LENGTH": "2000", "MAX_REQUEST_BODY_SIZE": "abc", "MODEL_ID": ""})
    assert env.max_message_length() == 2000
    assert env.max_request_body_size() != env.max_request_body_size()  # NaN: no request is "larger"
    assert env.model_id() is None
    assert EnvOverrides().max_request_body_size() == 10240
    assert EnvOverrides().max_message_length() is None
    with pytest.raises(ConfigError, match="unknown environment override MODEL; the known ones are MODEL_ID"):
        EnvOverrides({"MODEL": "x"})


def test_cli_reports_bad_tenant_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.json").write_text("{ not json")
    status = main(["gateway", "serve", "--upstream", "http://127.0.0.1:9", "--tenants", str(tmp_path)])
    assert status == 2
    assert f"aigw: error: {tmp_path / 't.json'}: 1 problem" in capsys.readouterr().err


def test_cli_rejects_bad_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["gateway", "serve", "--upstream", "gateway.local", "--tenants", str(TENANTS_DIR)])
    assert status == 2
    assert "--upstream must start with http:// or https://" in capsys.readouterr().err
