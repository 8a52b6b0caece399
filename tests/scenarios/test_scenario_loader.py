"""Scenario files: the loader reports every mistake with file, line and field; the schema is exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from aigw_fakes.datafiles import DataFileError, Problem, parse_model
from aigw_harness.scenarios.loader import (
    discover,
    json_schema,
    load_scenario,
    load_scenarios,
    resolve_tenants,
)
from aigw_harness.scenarios.model import Area, FindingWhen, Match, Scenario

MINIMAL = """\
id: spike.minimal
title: One request
area: spike
description: A single streamed request.
steps:
  - request: {tenant: alpha}
    expect:
      status: 200
      headers: {content-type: {regex: "^text/event-stream"}}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_scenario_loads(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, MINIMAL))
    scenario = loaded.scenario
    assert scenario.area is Area.SPIKE
    assert scenario.step_names() == ["step1"]
    expect = scenario.steps[0].expect
    assert expect is not None
    assert expect.status == Match(equals=200)
    assert expect.headers is not None
    assert expect.headers["content-type"].regex == "^text/event-stream"


def test_unknown_keys_and_wrong_types_name_line_and_field(tmp_path: Path) -> None:
    text = MINIMAL.replace("area: spike", "area: speed") + "    repeat: lots\n    colour: blue\n"
    path = write(tmp_path, text)
    with pytest.raises(DataFileError) as info:
        load_scenario(path)
    problems = info.value.problems
    assert [(p.field, p.line) for p in problems] == [
        ("area", 3),
        ("steps[0].repeat", 10),
        ("steps[0].colour", 11),
    ]
    assert "Input should be 'spike', 'precedence'" in problems[0].message
    assert problems[2].message == "Extra inputs are not permitted"
    assert str(info.value).startswith(f"{path}: 3 problems\n  {path}:3: area: Input should be")


def test_a_step_needs_exactly_one_action(tmp_path: Path) -> None:
    text = MINIMAL + "  - pause_s: 1\n    clock: {advance_s: 5}\n"
    with pytest.raises(DataFileError) as info:
        load_scenario(write(tmp_path, text))
    (problem,) = info.value.problems
    assert problem.field == "steps[1]"
    assert problem.line == 10
    assert (
        "a step needs exactly one of request, pause_s, clock, upstream (found: pause_s, clock)"
        in problem.message
    )


def test_strict_types_are_not_coerced(tmp_path: Path) -> None:
    text = MINIMAL.replace("{tenant: alpha}", '{tenant: alpha, stream: "false"}')
    with pytest.raises(DataFileError) as info:
        load_scenario(write(tmp_path, text))
    assert info.value.problems[0].field == "steps[0].request.stream"


def test_clock_needs_a_time_zone(tmp_path: Path) -> None:
    text = MINIMAL + "  - clock: {set: '2026-02-08T00:00:00'}\n"
    with pytest.raises(DataFileError) as info:
        load_scenario(write(tmp_path, text))
    (problem,) = info.value.problems
    assert problem.field == "steps[1].clock"
    assert "set needs a time zone" in problem.message


def test_findings_must_point_at_existing_evidence(tmp_path: Path) -> None:
    text = MINIMAL + (
        "findings:\n"
        "  - {id: F-1, title: t, severity: high, evidence: [step1, ttft_ms, missing], recommendation: r}\n"
    )
    with pytest.raises(DataFileError) as info:
        load_scenario(write(tmp_path, text))
    assert "finding F-1 names evidence that is not a step, check or measurement: missing" in str(info.value)
    ok = load_scenario(write(tmp_path, text.replace(", missing", ""))).scenario
    assert ok.findings[0].when is FindingWhen.FAILED


def test_scripting_the_upstream_is_a_derived_need_and_old_requires_still_load(tmp_path: Path) -> None:
    from aigw_harness.scenarios.runner import needed_capabilities

    scripted = load_scenario(write(tmp_path, MINIMAL + "upstream: {default: {tokens: 3}}\n")).scenario
    assert "upstream_control" in needed_capabilities(scripted)
    legacy = load_scenario(write(tmp_path, MINIMAL + "requires: [upstream_control, ledger]\n")).scenario
    assert {"upstream_control", "ledger"} <= needed_capabilities(legacy)


def test_match_accepts_scalars_and_rejects_empty_and_bad_regex() -> None:
    assert Match.model_validate(3) == Match(equals=3)
    assert Match.model_validate({"min": 1, "max": 2}).describe() == ">= 1 and <= 2"
    with pytest.raises(ValueError, match="give at least one of"):
        Match.model_validate({})
    with pytest.raises(ValueError, match="regex does not compile"):
        Match.model_validate({"regex": "("})


def test_directory_discovery_skips_tenants_and_reports_all_files(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "a.yaml")
    write(tmp_path, MINIMAL.replace("spike.minimal", "spike.other"), "b.yml")
    (tmp_path / "tenants").mkdir()
    write(tmp_path / "tenants", "tenantId: alpha\n", "alpha.yaml")
    assert [p.name for p in discover([tmp_path])] == ["a.yaml", "b.yml"]
    assert [s.scenario.id for s in load_scenarios([tmp_path])] == ["spike.minimal", "spike.other"]
    write(tmp_path, MINIMAL, "c.yaml")
    write(tmp_path, "id: [\n", "d.yaml")
    with pytest.raises(DataFileError) as info:
        load_scenarios([tmp_path])
    text = str(info.value)
    assert text.startswith("2 scenario files: 2 problems")
    assert "'spike.minimal' is already used by" in text
    assert "d.yaml:2" in text
    with pytest.raises(DataFileError) as missing:
        discover([tmp_path / "nope.yaml"])
    assert missing.value.problems == [Problem("", "no such file or directory")]


def test_tenants_resolve_from_files_and_inline(tmp_path: Path) -> None:
    (tmp_path / "alpha.yaml").write_text("tenantId: alpha\ntokenBudget: {daily: 10}\n")
    text = MINIMAL + "tenants:\n  - alpha\n  - {extends: alpha, tenantId: beta}\n"
    scenario = load_scenario(write(tmp_path, text, "s.yml")).scenario
    assert resolve_tenants(scenario, tmp_path) == [
        {"tenantId": "alpha", "tokenBudget": {"daily": 10}},
        {"tenantId": "beta", "tokenBudget": {"daily": 10}},
    ]
    missing = Scenario.model_validate({**scenario.model_dump(by_alias=True), "tenants": ["gamma"]})
    with pytest.raises(DataFileError, match="no tenant file for 'gamma'"):
        resolve_tenants(missing, tmp_path)


def test_json_schema_is_deterministic_and_forbids_extra_keys() -> None:
    text = json_schema()
    assert text == json_schema()
    schema = json.loads(text)
    assert schema["additionalProperties"] is False
    assert {"id", "title", "area", "description", "steps"} <= set(schema["required"])
    assert schema["$defs"]["Expect"]["properties"].keys() >= {"json", "sse", "status"}


def test_committed_schema_is_current() -> None:
    committed = Path(__file__).parents[2] / "scenarios" / "schema.json"
    assert committed.read_text(encoding="utf-8") == json_schema(), "run: aigw schema > scenarios/schema.json"


_REQUESTS = st.fixed_dictionaries(
    {"tenant": st.sampled_from(["alpha", "example"])},
    optional={
        "message": st.text(min_size=1, max_size=20),
        "stream": st.one_of(st.none(), st.booleans()),
        "model": st.sampled_from(["@cf/meta/llama-3.1-8b-instruct-fp8-fast", "@cf/openai/gpt-oss-20b"]),
        "new_session": st.booleans(),
        "disconnect_after_events": st.integers(0, 50),
        "headers": st.dictionaries(st.sampled_from(["x-api-key", "host"]), st.text(max_size=8), max_size=2),
    },
)
_STEPS = st.lists(
    st.one_of(
        st.builds(lambda r, n, c: {"request": r, "repeat": n, "concurrency": c}, _REQUESTS,
                  st.integers(1, 5), st.integers(1, 8)),
        st.builds(lambda s: {"pause_s": s}, st.floats(0, 10, allow_nan=False)),
        st.builds(lambda s: {"clock": {"advance_s": s}}, st.floats(0, 1e6, allow_nan=False)),
    ),
    min_size=1,
    max_size=6,
)  # fmt: skip


@given(_STEPS)
def test_any_valid_scenario_survives_a_yaml_round_trip(steps: list[dict[str, object]]) -> None:
    document = {"id": "p.round-trip", "title": "t", "area": "spike", "description": "d", "steps": steps}
    first = parse_model(yaml.safe_dump(document), Scenario)
    again = parse_model(
        yaml.safe_dump(first.model_dump(mode="json", by_alias=True, exclude_unset=True)), Scenario
    )
    assert again == first
    assert len(first.step_names()) == len(steps)
