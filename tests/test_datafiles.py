"""Data files: every mistake is reported with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from fakes.datafiles import DataFileError, Problem, load_model, parse_model


class Step(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    status: int


class Doc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str
    steps: list[Step]


def test_valid_yaml_and_json() -> None:
    assert parse_model("name: a\nsteps:\n  - status: 200\n", Doc).steps[0].status == 200
    assert parse_model('{"name": "a", "steps": []}', Doc).name == "a"


def test_problems_name_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: a\nsteps:\n  - status: 200\n  - status: nope\n    extra: 1\n")
    with pytest.raises(DataFileError) as info:
        load_model(path, Doc)
    problems = info.value.problems
    assert Problem("steps[1].status", problems[0].message, line=4) in problems
    assert any(p.field == "steps[1].extra" and p.line == 5 for p in problems)
    text = str(info.value)
    assert text.startswith(f"{path}: 2 problems")
    assert f"{path}:4: steps[1].status:" in text


def test_missing_field_points_at_its_parent() -> None:
    with pytest.raises(DataFileError) as info:
        parse_model("name: a\nsteps:\n  - {}\n", Doc, "doc.yaml")
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("steps[0].status", 3)
    assert problem.message == "Field required"


def test_syntax_error_has_position() -> None:
    with pytest.raises(DataFileError) as info:
        parse_model("name: [unclosed\n", Doc, "doc.yaml")
    (problem,) = info.value.problems
    assert problem.line is not None
    assert "not valid YAML or JSON" in problem.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read the file"):
        load_model(tmp_path / "missing.yaml", Doc)
