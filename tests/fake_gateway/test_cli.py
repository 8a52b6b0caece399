"""``aigw fake serve`` refuses bad files and flags before it binds a port."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigw_harness.cli import main


def test_behaviour_file_mistakes_name_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "behaviour.yaml"
    path.write_text("default:\n  ttfb_ms: soon\nrules:\n  - script: []\n")
    assert main(["fake", "serve", "--behaviour", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: default.ttfb_ms: Input should be a valid number" in err
    assert f"{path}:4: rules[0].script: List should have at least 1 item" in err


def test_missing_behaviour_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fake", "serve", "--behaviour", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_bad_time_scale_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fake", "serve", "--time-scale", "0"]) == 2
    assert "--time-scale must be greater than 0, got 0.0" in capsys.readouterr().err
    assert main(["fake", "serve", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535, got 70000" in capsys.readouterr().err


def test_config_file_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fake.yaml"
    path.write_text("accounts:\n  - id: acc\n    api_tokens: []\nseed: x\n")
    assert main(["fake", "serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: accounts[0].api_tokens: List should have at least 1 item" in err
    assert f"{path}:4: seed: Input should be a valid integer" in err


def test_config_file_with_bad_gateway_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fake.yaml"
    path.write_text(
        "accounts:\n  - id: acc\n    api_tokens: [t]\n    gateways:\n      - id: g\n        cache_ttl: abc\n"
    )
    assert main(["fake", "serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{path}:5: accounts[0].gateways[0]: Value error, cache_ttl: Input should be a valid integer" in err
    )
