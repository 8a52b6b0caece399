"""The mutation analysis's own catalogue: every mutant is well formed, applies to the Worker and names
scenarios that exist, and the kill rule counts only the expected finding, new on the mutant.

The analysis itself runs in CI on a fixed sample (``benchmarks/mutation_score.py --sample``); the full
matrix is a benchmark."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLASSES = {
    "framing",
    "streaming",
    "shapes",
    "usage",
    "budget",
    "bindings",
    "errors",
    "fallback",
    "selection",
    "rate-limit",
    "identity",
    "sessions",
}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_score", ROOT / "benchmarks" / "mutation_score.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_score"] = module
    spec.loader.exec_module(module)
    return module


ms = _load()
MUTANTS = ms.catalogue_mutants()


def test_the_catalogue_has_at_least_forty_mutants_in_every_class() -> None:
    assert len(MUTANTS) >= 40
    assert {m.cls for m in MUTANTS} == CLASSES
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)


def test_every_expected_cause_names_a_scenario_and_one_of_its_findings() -> None:
    paths = ms.scenario_paths()
    runner = (ROOT / "harness" / "scenarios" / "conformance.py").read_text(encoding="utf-8")
    assert all(f'"{finding}"' in runner for finding in ms.RUNNER_ROOT_CAUSES)
    for mutant in MUTANTS:
        assert mutant.causes or mutant.gap, mutant.id
        for cause in mutant.causes:
            text = paths[cause.scenario].read_text(encoding="utf-8")
            named = f"- id: {cause.finding}\n" in text or cause.finding in ms.RUNNER_ROOT_CAUSES
            assert named, (mutant.id, cause)


def test_the_ci_sample_is_five_known_mutants() -> None:
    assert len(ms.SAMPLE) <= 5
    assert set(ms.SAMPLE) <= {m.id for m in MUTANTS}


@pytest.mark.skipif(shutil.which("git") is None, reason="git applies the patches")
def test_every_patch_applies_to_the_worker(tmp_path: Path) -> None:
    for mutant in MUTANTS:
        if mutant.patch is None:
            continue
        copy = tmp_path / mutant.id
        shutil.copytree(ms.WORKER, copy)
        done = subprocess.run(["git", "apply", "-p1", str(mutant.patch)], cwd=copy, capture_output=True)
        assert done.returncode == 0, (mutant.id, done.stderr)
        assert copy.joinpath(ms.WRANGLER).exists()


def test_a_header_without_an_expected_cause_is_refused(tmp_path: Path) -> None:
    patch = tmp_path / "x.patch"
    patch.write_text("# mutant: x\n# class: usage\n# description: d\n--- a/f\n+++ b/f\n")
    with pytest.raises(ValueError, match=r"x\.patch: header lacks expect"):
        ms.parse_patch(patch)
    with pytest.raises(ValueError, match="is not 'SCENARIO FINDING'"):
        ms.parse_expect("taxonomy.usage")


def _outcome(**raised: list[str]) -> object:
    return ms.ScenarioOutcome("failed" if raised else "passed", "", dict(raised), 1.0)


def test_only_the_expected_finding_new_on_the_mutant_kills_it() -> None:
    mutant = ms.Mutant("m", "usage", "d", (ms.Cause("s", "EXPECTED"),))
    cause = mutant.causes[0]

    row = ms.Row(mutant)
    assert ms.judge(row, cause, _outcome(EXPECTED=["step"], OTHER=["x"]), _outcome())
    assert (row.killed_by, row.evidence, row.symptoms) == ("s EXPECTED", ["step"], ["OTHER"])

    row = ms.Row(mutant)
    assert not ms.judge(row, cause, _outcome(OTHER=["x"]), _outcome())
    assert (row.killed_by, row.symptoms, row.why_not) == (None, ["OTHER"], ["s: EXPECTED not raised"])

    row = ms.Row(mutant)
    assert not ms.judge(row, cause, _outcome(EXPECTED=["step"]), _outcome(EXPECTED=["step"]))
    assert row.why_not == ["s: EXPECTED is raised on the original too"]

    row = ms.Row(mutant)
    assert not ms.judge(row, cause, ms.ScenarioOutcome("skipped", "no node", {}, 0.0), _outcome())
    assert row.why_not == ["s: skipped (no node)"]
