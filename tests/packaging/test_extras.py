"""Without the optional extras every command still starts, and the ones that need an extra say which."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_WITHOUT = """
import sys
for name in ("mitmproxy", "locust"):
    sys.modules[name] = None  # importing it now raises ModuleNotFoundError, as on a plain install
from aigw_harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _aigw_without_extras(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT, *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_commands_start_without_mitmproxy_and_locust() -> None:
    listed = _aigw_without_extras("list")
    assert listed.returncode == 0, listed.stderr
    assert "spike.connectivity" in listed.stdout
    helped = _aigw_without_extras("record", "--help")
    assert helped.returncode == 0, helped.stderr


def test_load_without_locust_names_the_extra() -> None:
    done = _aigw_without_extras("load", "--duration", "1s")
    assert done.returncode == 2
    assert "pip install 'aigw-harness[load]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_proxy_without_mitmproxy_names_the_extra() -> None:
    script = """
import sys
sys.modules["mitmproxy"] = None
try:
    import aigw_harness.proxy.mitm
except Exception as exc:
    print(type(exc).__name__, exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert "ConfigError" in done.stdout
    assert "pip install 'aigw-harness[proxy]'" in done.stdout
