"""Data files: every mistake is reported with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from aigw_fakes.datafiles import DataFileError, Problem, load_model, parse_model


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


# --- Bounded, plain data: every refusal names the line (and the field where there is one). ---------------

from typing import Any  # noqa: E402

import yaml  # noqa: E402
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from aigw_fakes.datafiles import Limits, parse_data  # noqa: E402


class AnyDoc(pydantic.RootModel[Any]):
    pass


def _problem(text: str, limits: Limits | None = None) -> Problem:
    with pytest.raises(DataFileError) as info:
        parse_model(text, AnyDoc, "doc.yaml", **({"limits": limits} if limits else {}))
    (problem,) = info.value.problems
    return problem


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(levels):
        name, previous = chr(98 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_the_alias_that_overflows() -> None:
    problem = _problem(_alias_bomb())
    assert "expands to more than 1,000,000 values" in problem.message
    assert (problem.line, problem.field) == (7, "g[1]")


def test_aliases_within_bounds_and_merge_keys_still_work() -> None:
    data, _ = parse_data("base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\nagain: *b\n")
    assert data == {"base": {"x": 1, "y": 2}, "use": {"x": 1, "y": 3}, "again": {"x": 1, "y": 2}}


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ('a: !!python/object/apply:os.system ["true"]\n', 1, "a", "the tag !!python/object/apply:os.system"),
        ("ok: 1\nb: !!binary aGk=\n", 2, "b", "the tag !!binary is not allowed"),
        ("a:\n  - !custom 1\n", 2, "a[0]", "the tag !custom is not allowed"),
        ("a: 1\nb: x\x00y\n", 2, "", "control character U+0000"),
        ("n: " + "9" * 5000 + "\n", 1, "n", "integer out of range"),
        ("n: 9223372036854775808\n", 1, "n", "integer out of range"),
        ("x:\n  y: .inf\n", 2, "x.y", "not a finite number"),
        ("x: [.nan]\n", 1, "x[0]", "not a finite number"),
        ("a: 1\nb:\n  c: 2\n  c: 3\n", 4, "b.c", "key 'c' appears twice in this mapping (first on line 3)"),
        ('{"a": 1, "a": 2}', 1, "a", "appears twice"),
        ("a: &x [1, *x]\n", 1, "a[1]", "alias *x refers to itself"),
        ("a: *nowhere\n", 1, "a", "has no anchor"),
        ('a: "\\ud800"\n', 1, "a", "lone surrogate"),
        ("a: 1\n---\nb: 2\n", 2, "", "expected one document"),
        ('{"a": NaN}', 1, "", "not a finite number"),
        ('{"a":\n 1e999}', 2, "", "not a finite number"),
        ("a: [unclosed\n", 2, "", "not valid YAML or JSON"),
    ],
)
def test_refusals_name_line_and_field(text: str, line: int, field: str, words: str) -> None:
    problem = _problem(text)
    assert words in problem.message
    assert (problem.line, problem.field) == (line, field)


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "".join("  " * i + "k:\n" for i in range(400))])
def test_deep_nesting_is_refused_with_a_line(text: str) -> None:
    problem = _problem(text)
    assert "nest" in problem.message
    assert problem.line is not None


def test_size_limit(tmp_path: Path) -> None:
    limits = Limits(max_bytes=1000)
    problem = _problem("a: " + "x" * 2000 + "\n", limits)
    assert problem.message == "too large: 2,004 bytes, data files are limited to 1,000 bytes"
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * (9 * 1024 * 1024))
    with pytest.raises(DataFileError, match="too large: 9,437,187 bytes"):
        load_model(path, Doc)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: a\nsteps: []\nnote: caf\xe9\n")
    with pytest.raises(DataFileError) as info:
        load_model(path, Doc)
    assert info.value.problems[0].line == 3
    assert "not UTF-8" in info.value.problems[0].message


def test_escaped_surrogate_pairs_are_joined() -> None:
    assert parse_data('a: "\\ud83d\\ude80"\n')[0] == {"a": "\U0001f680"}
    assert parse_data('{"a": "\\ud83d\\ude80"}')[0] == {"a": "\U0001f680"}


def test_json_is_read_as_json_and_its_errors_keep_lines() -> None:
    assert parse_data('{"a": 1e5, "b": [true, null]}')[0] == {"a": 100000.0, "b": [True, None]}
    with pytest.raises(DataFileError) as info:
        parse_model('{\n  "name": "a",\n  "steps": [{"status": "x"}]\n}', Doc, "doc.json")
    assert info.value.problems[0].line == 3


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=4))
@example({"a": "\U0001f680", "b": [1.5e300, -0.0]})
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_json_round_trips(value: dict[str, Any]) -> None:
    import json

    assert parse_data(json.dumps(value))[0] == value
    assert parse_data(json.dumps(value, ensure_ascii=False, indent=1))[0] == value


@given(_json_values.filter(lambda v: not any(c in repr(v) for c in ("\\x85", "\\u2028", "\\u2029"))))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_yaml_round_trips(value: Any) -> None:
    # (NEL and the Unicode line separators are line breaks to YAML 1.1: PyYAML's emitter writes them raw.)
    text = yaml.safe_dump({"v": value}, allow_unicode=True)
    assert parse_data(text)[0] == {"v": value}


@given(st.text(max_size=300))
@example("a: &a [*a]")
@example("? [a]\n: 1")
@example("a: !!str\n")
@settings(max_examples=300)
def test_any_text_is_data_or_one_clear_error(text: str) -> None:
    try:
        parse_data(text)
    except DataFileError as exc:
        error = exc
    else:
        return
    assert error.problems
    assert all(p.message for p in error.problems)


@given(st.binary(max_size=300))
@settings(max_examples=200)
def test_any_bytes_in_a_file_are_data_or_one_clear_error(data: bytes) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".yaml") as handle:
        handle.write(data)
        handle.flush()
        try:
            load_model(handle.name, AnyDoc)
        except DataFileError as exc:
            error = exc
        else:
            return
    assert str(error).startswith(handle.name)
