"""``aigw load`` from the command line: mistakes are usage errors that say what and where."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _aigw(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aigw_harness", "load", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_a_bad_profile_names_file_line_and_field(tmp_path: Path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text("tenants:\n  - {tenant: example, weight: 0}\nstream_ratio: 2\n", encoding="utf-8")
    done = _aigw("--profile", str(profile), "--duration", "1s")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{profile}:2" in done.stderr
    assert "tenants[0].weight" in done.stderr
    assert f"{profile}:3" in done.stderr
    assert "stream_ratio" in done.stderr


def test_an_unknown_tenant_in_the_profile_is_named(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("tenants: [{tenant: nobody}]\n", encoding="utf-8")
    done = _aigw("--profile", str(profile), "--tenants", str(tmp_path), "--duration", "1s")
    assert done.returncode == 2
    assert "tenants[0]" in done.stderr
    assert "nobody" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_numbers_and_a_worker_without_master_are_usage_errors() -> None:
    for args, words in [
        (["--duration", "soon"], "duration like 30s"),
        (["--users", "0"], "must be from 1"),
        (["--worker"], "--master-host"),
    ]:
        done = _aigw(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
