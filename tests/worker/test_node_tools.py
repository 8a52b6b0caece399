"""Finding Node.js, and the env.AI adapter's own contract tests (node --test)."""

from __future__ import annotations

import subprocess

import pytest

from aigw_harness.errors import TargetUnavailable
from aigw_harness.worker.bridge import AI_BINDING_MODULE, find_node

from .conftest import needs_node


def test_missing_node_is_reported_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIGW_NODE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TargetUnavailable, match=r"needs Node\.js 20\.18 or newer, and 'node' is not on PATH"):
        find_node()


@needs_node
def test_adapter_contract_tests_pass_in_node() -> None:
    result = subprocess.run(
        [find_node(), "--test", str(AI_BINDING_MODULE.with_name("ai-binding.test.mjs"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
