"""The code blocks of README.md and docs/*.md, as markdown-it-py parses them.

A block says how it is checked by its info string: the first word is its language, and attributes in braces
after it, which renderers do not show, say more::

    ```bash {skip="needs a Cloudflare account"}
    ```python {name="conftest" tested-by="tests/plugin/test_docs_example.py"}
    ```yaml {document="behaviour"}

``skip`` (a reason) leaves a block out, ``name`` lets a test find it, ``tested-by`` names the test file that
runs it instead of the docs test, and each language's runner reads the attributes it knows
(``tests/docs/runners.py``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]

ATTRIBUTES = frozenset({"skip", "name", "tested-by", "document", "excerpt"})


class InfoStringError(ValueError):
    """An info string whose attributes cannot be read."""


@dataclass(frozen=True)
class Block:
    doc: Path  # relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    attrs: dict[str, str] = field(default_factory=dict)
    text: str = ""
    fenced: bool = True  # False: an indented code block, which cannot carry attributes

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def documents() -> list[Path]:
    """README.md and every docs/*.md, relative to the repository root."""
    return [Path("README.md"), *sorted(p.relative_to(ROOT) for p in (ROOT / "docs").glob("*.md"))]


def parse_info(info: str) -> tuple[str, dict[str, str]]:
    """``bash {skip="a reason" name=x}`` -> ``("bash", {"skip": "a reason", "name": "x"})``."""
    lang, _, rest = info.strip().partition(" ")
    rest = rest.strip()
    if lang.startswith("{"):
        lang, rest = "", info.strip()
    if not rest:
        return lang, {}
    if not (rest.startswith("{") and rest.endswith("}")):
        raise InfoStringError(f"attributes must be in braces after the language, got {rest!r}")
    try:
        words = shlex.split(rest[1:-1])
    except ValueError as exc:
        raise InfoStringError(f"cannot read attributes {rest!r}: {exc}") from None
    attrs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if key not in ATTRIBUTES:
            raise InfoStringError(f"unknown attribute {key!r} (known: {', '.join(sorted(ATTRIBUTES))})")
        if key in attrs:
            raise InfoStringError(f"attribute {key!r} given twice")
        attrs[key] = value if sep else ""
    return lang, attrs


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark")


def blocks(doc: Path) -> list[Block]:
    """Every code block of one document, fenced or indented, in order."""
    found: list[Block] = []
    for token in _parser().parse((ROOT / doc).read_text(encoding="utf-8")):
        if token.type not in ("fence", "code_block") or token.map is None:
            continue
        line = token.map[0] + 1
        if token.type == "code_block":
            found.append(Block(doc, line, "", {}, token.content, fenced=False))
            continue
        try:
            lang, attrs = parse_info(token.info)
        except InfoStringError as exc:
            raise InfoStringError(f"{doc}:{line}: {exc}") from None
        found.append(Block(doc, line, lang, attrs, token.content))
    return found


def all_blocks() -> list[Block]:
    return [block for doc in documents() for block in blocks(doc)]


def named(doc: str | Path, name: str) -> Block:
    """The block of ``doc`` whose ``name`` attribute is ``name``."""
    matching = [b for b in blocks(Path(doc)) if b.attrs.get("name") == name]
    assert len(matching) == 1, f"{doc} has {len(matching)} blocks named {name!r}, expected one"
    return matching[0]
