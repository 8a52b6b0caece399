"""docs/ai-gateway.md is generated from a seeded run on the embedded fake; the committed file is current."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aigw_harness.report.render import render_docs
from aigw_harness.scenarios.loader import load_scenarios
from aigw_harness.scenarios.runner import RunOptions, run_scenarios

ROOT = Path(__file__).parents[2]


def test_committed_ai_gateway_doc_is_up_to_date() -> None:
    loaded = load_scenarios([ROOT / "scenarios"])
    options = RunOptions(seed=0, time_scale=0.05, tenants_dir=ROOT / "scenarios" / "tenants")
    results = asyncio.run(run_scenarios(loaded, options, run_id="docs"))
    generated = render_docs(results)
    committed = (ROOT / "docs" / "ai-gateway.md").read_text(encoding="utf-8")
    assert generated == committed, "docs/ai-gateway.md is out of date: run 'aigw docs' and commit it"
