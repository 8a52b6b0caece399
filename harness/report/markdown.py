"""Escaping for Markdown templates: every interpolated value is text, never markup or structure.

Scenario names, descriptions, observed values and model output reach ``report.md`` and the generated docs.
Jinja's autoescape speaks HTML only, so Markdown templates render through ``environment`` here, whose
``finalize`` escapes every ``{{ value }}``:

- a ``<`` that would open a tag, comment or autolink, and an ``&`` that would start an entity, become
  entities, so no HTML survives;
- line breaks become spaces, so a value cannot end a table row or start a heading, list or quote;
- ``|`` (a cell boundary in tables) becomes an entity, and a value that starts like a block (a heading,
  quote, list item, thematic break, setext underline or fence) has its marker escaped.

Inline emphasis and code spans written in scenario text stay as written: they cannot add structure or HTML.
Filters that must keep their own shape return ``MarkdownText``, which ``finalize`` passes through:
``cell`` (one table cell, shortened) and ``paragraphs`` (blank-line separated paragraphs kept).

It knows Markdown and Jinja, nothing of results.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jinja2

__all__ = ["MarkdownText", "cell", "environment", "escape", "paragraphs"]


class MarkdownText(str):
    """Text already escaped for Markdown: ``finalize`` leaves it alone."""

    __slots__ = ()


_LINE_BREAKS = re.compile(r"[\r\n\u0085\u2028\u2029\v\f]+")
_ENTITY_START = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# Raw HTML and autolinks open with "<" and a letter, "/", "!" or "?"; "a <= b" stays as written.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# What makes a line a heading, quote, list item, thematic break, setext underline or fence.
_BLOCK_START = re.compile(r"^(?:#{1,6}(?=\s|$)|>|[-+*](?=\s|$)|\d{1,9}(?=[.)](?:\s|$))|[=\-_*`~]{2,})")
_PARAGRAPH_BREAK = re.compile(r"(?:\r\n?|\n)[ \t]*(?:\r\n?|\n)\s*")


def escape(value: Any) -> MarkdownText:
    """One line of plain text: no HTML, no line break, no block marker at its start, ``|`` escaped."""
    if isinstance(value, MarkdownText):
        return value
    text = value if isinstance(value, str) else str(value)
    text = _ENTITY_START.sub("&amp;", text)
    text = _TAG_START.sub("&lt;", text).replace("|", "&#124;")
    text = _LINE_BREAKS.sub(" ", text).lstrip()
    block = _BLOCK_START.match(text)
    if block is not None:  # a backslash before the marker's last character makes it text
        end = block.end() if not text[0].isdigit() else block.end() + 1
        text = text[: end - 1] + "\\" + text[end - 1 :]
    return MarkdownText(text)


def _finalize(value: Any) -> Any:
    if value is None or isinstance(value, (MarkdownText, int, float)):
        return value
    return escape(value)


def cell(value: Any, limit: int = 160) -> MarkdownText:
    """A value fit for one Markdown table cell (JSON for anything but text), shortened to ``limit``."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    # Backslashes are doubled (as the cell's text, not escapes): observed values are often regexes or paths.
    text = text.replace("\\", "\\\\")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return escape(text)


def paragraphs(value: Any) -> MarkdownText:
    """Text of one or more paragraphs (separated by blank lines), each escaped like ``escape``."""
    text = value if isinstance(value, str) else str(value)
    parts = [escape(part) for part in _PARAGRAPH_BREAK.split(text.strip())]
    return MarkdownText("\n\n".join(part for part in parts if part))


def environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    """A Jinja environment for Markdown templates: every interpolated value is escaped."""
    env = jinja2.Environment(
        loader=loader,
        autoescape=False,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = cell
    env.filters["paragraphs"] = paragraphs
    return env
