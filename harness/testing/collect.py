"""Scenario files as pytest items (filled in when the scenario runner is available)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.testing.options import AigwOptions


def scenario_file(parent: pytest.Collector, file_path: Path, options: AigwOptions) -> pytest.Collector | None:
    return None


def write_report(session: pytest.Session, options: AigwOptions) -> None:
    return None
