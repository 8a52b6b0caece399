"""The JSONC reader: JSON plus comments and trailing commas, with lines and columns in errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_fakes.datafiles import DataFileError
from aigw_harness.worker.jsonc import parse_jsonc

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

comments = st.sampled_from(
    ["", " ", "\n", '// note, with "quotes" and /* */\n', "/* a\nblock , ] } */", "\t"]
)


def decorate(value: Any, draw: st.DrawFn) -> str:
    """Serialise ``value`` as JSON with comments between tokens and optional trailing commas."""
    gap = draw(comments)
    if isinstance(value, dict):
        items = [
            f"{gap}{json.dumps(k)}{draw(comments)}:{draw(comments)}{decorate(v, draw)}"
            for k, v in value.items()
        ]
        trailing = "," if items and draw(st.booleans()) else ""
        return "{" + ",".join(items) + trailing + draw(comments) + "}"
    if isinstance(value, list):
        parts = [f"{draw(comments)}{decorate(v, draw)}{draw(comments)}" for v in value]
        trailing = "," if parts and draw(st.booleans()) else ""
        return "[" + ",".join(parts) + trailing + "]"
    return json.dumps(value)


@st.composite
def documents(draw: st.DrawFn) -> tuple[Any, str]:
    value = draw(json_values)
    return value, draw(comments) + decorate(value, draw) + draw(comments)


@given(documents())
def test_comments_and_trailing_commas_do_not_change_the_value(case: tuple[Any, str]) -> None:
    value, text = case
    parsed, _ = parse_jsonc(text)
    assert parsed == value


@given(json_values)
def test_plain_json_parses_as_json_does(value: Any) -> None:
    text = json.dumps(value, indent=2)
    assert parse_jsonc(text)[0] == json.loads(text)


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_a_data_file_error(text: str) -> None:
    problems = []
    try:
        parse_jsonc(text)
    except DataFileError as exc:
        problems = exc.problems
    assert all(problem.line is not None and problem.column is not None for problem in problems)


def test_comment_markers_inside_strings_are_text() -> None:
    parsed, _ = parse_jsonc('{"url": "https://example.com/*x*/", "c": "// not a comment"}')
    assert parsed == {"url": "https://example.com/*x*/", "c": "// not a comment"}


def test_positions_name_the_line_of_each_key() -> None:
    text = '{\n  "a": 1,\n  // comment\n  "env": {\n    "dev": {"vars": {"X": "1"}}\n  }\n}'
    _, positions = parse_jsonc(text)
    assert positions[("a",)] == 2
    assert positions[("env",)] == 4
    assert positions[("env", "dev", "vars", "X")] == 5


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ('{\n  "a": 1\n  "b": 2\n}', 3, 3, "expected ',' or '}'"),
        ('{\n  "a": [1, 2,, 3]\n}', 2, 14, "unexpected ','"),
        ('{"a": "unterminated\n}', 1, 7, "unterminated string"),
        ('{"a": 1} extra', 1, 10, "after the end of the document"),
        ('{"a": /* open', 1, 7, "unterminated /* comment"),
        ("", 1, 1, "the file is empty"),
        ("{'a': 1}", 1, 2, "expected a quoted key"),
        ('{"a": 01x}', 1, 7, "invalid number"),
    ],
)
def test_syntax_errors_say_where(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(DataFileError) as info:
        parse_jsonc(text, "wrangler.jsonc")
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (line, column)
    assert message in problem.message
    assert str(info.value).startswith("wrangler.jsonc: 1 problem")
