"""report.md: text from scenarios, targets and models is text, never HTML or Markdown structure.

A CommonMark parser with GFM tables (markdown-it-py) is the oracle: hostile strings must come out as one
table cell, one paragraph or one list item, with no HTML token, exactly as written in the rendered text.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from aigw_harness.report.markdown import cell, escape, paragraphs
from aigw_harness.report.render import render_markdown
from aigw_harness.report.results import CheckResult, CheckStatus, FindingResult, Results, ScenarioResult
from tests.report.test_report_render import sample_results

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<!-- comment --> and <?php ?>",
    "<https://evil.example/phish>",
    "a\n# Injected heading\n| x | y |\n|---|---|",
    "line\r\n\r\n> quote\n- item\n1. ordered\n```\nfence\n```",
    "   ===\n---\n***",
    "pipe | in | cell",
    "&lt;already an entity&gt; &amp; &#60;",
    "back\\slash \\| and \\",
    "\u2028separator\u0085next\x0bvt\x0cff",
    "# heading at the start",
    "12) numbered",
]

_MD = MarkdownIt("commonmark").enable("table")


def _inline_text(tokens: list[Token]) -> str:
    out = []
    for token in tokens:
        if token.type == "inline":
            for child in token.children or []:
                assert not child.type.startswith("html"), f"raw HTML survived: {child.content!r}"
                out.append(child.content if child.type != "softbreak" else "\n")
    return "".join(out)


def _kinds(tokens: list[Token]) -> list[str]:
    return [t.type for t in tokens if t.nesting >= 0 and t.type != "inline"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_value_in_a_table_row_stays_one_cell(text: str) -> None:
    tokens = _MD.parse(f"| a | b |\n|---|---|\n| {cell(text, limit=10_000)} | end |\n")
    cells = [t for t in tokens if t.type == "td_open"]
    assert len(cells) == 2
    assert not any(t.type.startswith("html") for t in tokens)
    assert _kinds(tokens).count("tr_open") == 2


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_value_in_a_paragraph_stays_one_paragraph(text: str) -> None:
    tokens = _MD.parse(f"{escape(text)}\n")
    assert [t.type for t in tokens if t.nesting == 1] in ([], ["paragraph_open"])
    assert not any(t.type.startswith("html") for t in tokens)


def test_paragraphs_keep_their_breaks_and_nothing_else() -> None:
    text = paragraphs("first line\nsame paragraph\n\n# not a heading\n\n\n<b>bold?</b>")
    tokens = _MD.parse(text + "\n")
    assert [t.type for t in tokens if t.nesting == 1] == ["paragraph_open"] * 3
    texts = [_inline_text([t]) for t in tokens if t.type == "inline"]
    assert texts == ["first line same paragraph", "# not a heading", "<b>bold?</b>"]


def test_text_is_shown_as_written() -> None:
    for text in ["<b>x</b> & <i>", "a <= b, c > d", "# h", "- l", "x | y", "&amp; stays"]:
        tokens = _MD.parse(escape(text) + "\n")
        assert _inline_text(tokens) == text


@given(st.text(max_size=80))
@example("<a href='x'>")
@example("x\n===")
@example("\\")
@settings(max_examples=300)
def test_any_text_is_one_cell_without_html(text: str) -> None:
    tokens = _MD.parse(f"| a | b |\n|---|---|\n| {cell(text, limit=10_000)} | end |\n")
    assert len([t for t in tokens if t.type == "td_open"]) == 2
    assert not any(t.type.startswith("html") for t in tokens)
    for token in tokens:
        for child in token.children or []:
            assert not child.type.startswith("html")


@given(st.text(max_size=80))
@settings(max_examples=300)
def test_any_text_is_at_most_one_paragraph_without_html(text: str) -> None:
    tokens = _MD.parse(f"{escape(text)}\n")
    assert [t.type for t in tokens if t.nesting == 1] in ([], ["paragraph_open"])
    for token in tokens:
        assert not token.type.startswith("html")
        for child in token.children or []:
            assert not child.type.startswith("html")


def _hostile_results() -> Results:
    results = sample_results()
    evil = "\n".join(HOSTILE)
    scenario = results.scenarios[0]
    check = CheckResult(
        id="evil.check",
        kind="expect",
        status=CheckStatus.FAILED,
        expected=evil,
        observed={"content": evil},
        reason=evil,
    )
    finding = FindingResult(
        id="EVIL", title=evil, severity="high", raised=True, when="failed", detail=evil,
        recommendation=evil, evidence=[],
    )  # fmt: skip
    hostile: ScenarioResult = scenario.model_copy(
        update={
            "title": evil,
            "description": evil,
            "questions": [evil],
            "reason": evil,
            "checks": [*scenario.checks, check],
            "findings": [*scenario.findings, finding],
        }
    )
    return results.model_copy(update={"scenarios": [hostile, *results.scenarios[1:]]})


def test_report_md_holds_no_raw_html_and_no_injected_structure() -> None:
    clean = render_markdown(sample_results())
    text = render_markdown(_hostile_results())
    assert "<script" not in text
    assert "<img" not in text
    assert "\n# Injected heading" not in text
    tokens = _MD.parse(text)
    # The only HTML is the template's own anchors.
    anchor = re.compile(r'^(<a id="[A-Za-z0-9-]+">|</a>)$')
    for token in tokens:
        assert not token.type.startswith("html"), token.content
        for child in token.children or []:
            assert not child.type.startswith("html") or anchor.match(child.content), child.content
    headings = [t for t in tokens if t.type == "heading_open"]
    clean_headings = [t for t in _MD.parse(clean) if t.type == "heading_open"]
    # The hostile scenario adds its finding's heading, nothing else.
    assert len(headings) == len(clean_headings) + 1
    rows = [t for t in tokens if t.type == "tr_open"]
    clean_rows = [t for t in _MD.parse(clean) if t.type == "tr_open"]
    # One more findings row and one more check row; none injected by the text.
    assert len(rows) == len(clean_rows) + 2
