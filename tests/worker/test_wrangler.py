"""Reading a Wrangler file for one environment: inheritance, bindings, stubs, .dev.vars and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigw_fakes.datafiles import DataFileError
from aigw_harness.errors import ConfigError
from aigw_harness.worker.wrangler import BindingStub, DurableObjectBinding, load_worker_config

from .conftest import CHAT_WORKER


def write(tmp_path: Path, text: str, name: str = "wrangler.jsonc") -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "index.js").write_text("export default {}")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_test_worker_dev_environment() -> None:
    config = load_worker_config(CHAT_WORKER, "dev")
    assert config.name == "aigw-chat-fixture-dev"
    assert config.main == CHAT_WORKER.parent / "src" / "index.ts"
    assert config.compatibility_date == "2026-02-01"
    assert config.compatibility_flags == ("nodejs_compat",)
    assert config.vars["ENVIRONMENT"] == "dev"
    assert [t["tenantId"] for t in config.vars["TENANTS"]] == ["alpha", "example"]
    assert config.kv_namespaces == ("USAGE",)
    assert config.durable_objects == (
        DurableObjectBinding("SESSIONS", "SessionDO", sqlite=True),
        DurableObjectBinding("RATE_LIMITER_DO", "RateLimiterDO", sqlite=True),
    )
    assert config.ai_binding == "AI"
    assert config.stubs == (BindingStub("SEARCH_INDEX", "vectorize"),)
    assert config.warnings == ()


def test_top_level_has_its_own_vars_and_no_env_bindings() -> None:
    config = load_worker_config(CHAT_WORKER.parent)  # a directory finds wrangler.jsonc
    assert config.name == "aigw-chat-fixture"
    assert dict(config.vars) == {"ENVIRONMENT": "top"}
    assert config.ai_binding is None
    assert config.kv_namespaces == ()


def test_bindings_and_vars_are_not_inherited_but_main_and_dates_are(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """{
          "name": "w", "main": "src/index.js", "compatibility_date": "2026-01-01",
          "vars": {"A": "top"}, "kv_namespaces": [{"binding": "KV", "id": "x"}],
          "env": {
            "staging": {"name": "w-stage"},
            "prod": {"compatibility_date": "2026-03-01", "vars": {"B": 2}}
          }
        }""",
    )
    staging = load_worker_config(path, "staging")
    assert staging.name == "w-stage"
    assert staging.compatibility_date == "2026-01-01"
    assert dict(staging.vars) == {}
    assert staging.kv_namespaces == ()
    assert any("'vars' is declared at the top level but not in env.staging" in w for w in staging.warnings)
    assert any("'kv_namespaces'" in w for w in staging.warnings)
    prod = load_worker_config(path, "prod")
    assert prod.name == "w-prod"
    assert prod.compatibility_date == "2026-03-01"
    assert dict(prod.vars) == {"B": 2}


def test_every_unsimulated_binding_becomes_a_stub(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """{
          "name": "w", "main": "src/index.js",
          "services": [{"binding": "AUTH", "service": "auth-worker"}],
          "queues": {"producers": [{"binding": "JOBS", "queue": "jobs"}]},
          "hyperdrive": [{"binding": "DB", "id": "h"}],
          "browser": {"binding": "BROWSER"},
          "analytics_engine_datasets": [{"binding": "AE"}],
          "durable_objects": {"bindings": [
            {"name": "LOCAL", "class_name": "Local"},
            {"name": "REMOTE", "class_name": "Counter", "script_name": "other-worker"}
          ]},
          "d1_databases": [{"binding": "SQL", "database_name": "db", "database_id": "1"}],
          "r2_buckets": [{"binding": "FILES", "bucket_name": "f"}],
        }""",
    )
    config = load_worker_config(path)
    kinds = {stub.binding: stub.kind for stub in config.stubs}
    assert kinds == {
        "AUTH": "service binding to Worker 'auth-worker'",
        "JOBS": "queue producer",
        "DB": "hyperdrive",
        "BROWSER": "browser",
        "AE": "analytics_engine_datasets",
        "REMOTE": "Durable Object Counter in Worker 'other-worker'",
    }
    assert config.durable_objects == (DurableObjectBinding("LOCAL", "Local", sqlite=False),)
    assert config.d1_databases == ("SQL",)
    assert config.r2_buckets == ("FILES",)


def test_dev_vars_add_local_secrets_per_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path, '{"name": "w", "main": "src/index.js", "vars": {"A": "1"}, "env": {"dev": {"vars": {}}}}'
    )
    (tmp_path / ".dev.vars").write_text('# local secrets\nTOKEN="s3cret"\nexport A=overridden # comment\n')
    (tmp_path / ".dev.vars.dev").write_text("TOKEN=dev-token\n")
    assert dict(load_worker_config(path).vars) == {"A": "overridden", "TOKEN": "s3cret"}
    assert dict(load_worker_config(path, "dev").vars) == {"TOKEN": "dev-token"}


def test_toml_configuration(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "w"\nmain = "src/index.js"\n'
        '[[kv_namespaces]]\nbinding = "KV"\nid = "x"\n[ai]\nbinding = "AI"\n',
        name="wrangler.toml",
    )
    config = load_worker_config(tmp_path)
    assert config.source == path.resolve()
    assert config.kv_namespaces == ("KV",)
    assert config.ai_binding == "AI"


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no environment 'prod' under 'env' \(known: dev\)"):
        load_worker_config(CHAT_WORKER, "prod")


def test_missing_file_and_missing_directory_entry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such Wrangler configuration file"):
        load_worker_config(tmp_path / "wrangler.jsonc")
    with pytest.raises(
        ConfigError, match=r"no wrangler\.jsonc, wrangler\.json, wrangler\.toml in this directory"
    ):
        load_worker_config(tmp_path)


def test_missing_entry_point_names_the_field_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "name": "w",\n  "env": {"dev": {\n    "main": "src/nope.ts"\n  }}\n}')
    with pytest.raises(DataFileError) as info:
        load_worker_config(path, "dev")
    problem = info.value.problems[0]
    assert problem.field == "env.dev.main"
    assert problem.line == 4
    assert "src/nope.ts does not exist" in problem.message
    path = write(tmp_path, '{"name": "w"}')
    with pytest.raises(DataFileError, match="main: the Worker's entry point is missing"):
        load_worker_config(path)


def test_bad_field_types_name_the_field_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{\n  "main": "src/index.js",\n  "kv_namespaces": [\n    {"id": "x"}\n  ],\n'
        '  "compatibility_date": "soon"\n}',
    )
    with pytest.raises(DataFileError) as info:
        load_worker_config(path)
    problems = {p.field: p for p in info.value.problems}
    assert problems["kv_namespaces[0].binding"].line == 4
    assert problems["compatibility_date"].line == 6


def test_define_is_per_environment_and_alias_paths_are_absolute(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """{
          "name": "w", "main": "src/index.js",
          "define": {"BUILD": "'top'"}, "alias": {"fetch-lib": "./src/shim.js", "pkg": "other-pkg"},
          "env": {"dev": {"define": {"BUILD": "'dev'"}}, "bare": {}}
        }""",
    )
    dev = load_worker_config(path, "dev")
    assert dict(dev.define) == {"BUILD": "'dev'"}
    assert dict(dev.alias) == {"fetch-lib": str(tmp_path.resolve() / "src" / "shim.js"), "pkg": "other-pkg"}
    assert dict(load_worker_config(path, "bare").define) == {}
