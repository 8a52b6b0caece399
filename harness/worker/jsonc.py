"""JSON with comments and trailing commas (the ``wrangler.jsonc`` dialect), with the line of every value.

``parse_jsonc`` returns the document and a map from field path (``("env", "dev", "vars")``) to its
1-based line, in the form ``aigw_fakes.datafiles.validate_data`` uses to name lines in validation errors. A
syntax error raises ``DataFileError`` with the line and column. Strings, numbers and literals follow JSON
exactly (``json`` decodes each token); the only extensions are ``//`` and ``/* */`` comments and one
trailing comma before ``}`` or ``]``, as in Wrangler's parser.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from typing import Any

from aigw_fakes.datafiles import DataFileError, Problem

__all__ = ["parse_jsonc"]

type Path = tuple[str | int, ...]

_WHITESPACE = " \t\r\n\ufeff"
_LITERALS = {"true": True, "false": False, "null": None}
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_MAX_DEPTH = 100  # as aigw_fakes.datafiles: deeper nesting is a mistake, and this parser recurses


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0
        self.positions: dict[Path, int] = {}
        self.newlines = [match.start() for match in re.finditer("\n", text)]

    def fail(self, message: str, at: int | None = None) -> DataFileError:
        at = self.pos if at is None else at
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return DataFileError(self.source, [Problem("", message, line=line, column=column)])

    def line(self) -> int:
        return bisect.bisect_left(self.newlines, self.pos) + 1

    def skip(self) -> None:
        """Skip whitespace and comments."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in _WHITESPACE:
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def document(self) -> Any:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("the file is empty; expected a JSON object")
        value = self.value(())
        self.skip()
        if self.pos < len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos]!r} after the end of the document")
        return value

    def value(self, path: Path) -> Any:
        self.positions.setdefault(path, self.line())
        char = self.peek()
        if char in "{[" and len(path) >= _MAX_DEPTH:
            raise self.fail(f"nested more than {_MAX_DEPTH} levels deep")
        if char == "{":
            return self.object(path)
        if char == "[":
            return self.array(path)
        if char == '"':
            return self.string()
        for word, literal in _LITERALS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return literal
        if char and (char.isdigit() or char == "-"):
            return self.number()
        if not char:
            raise self.fail("unexpected end of file; a value is missing")
        raise self.fail(
            f"unexpected {char!r}; expected a value (object, array, string, number, true, false, null)"
        )

    def object(self, path: Path) -> dict[str, Any]:
        start = self.pos
        self.pos += 1
        out: dict[str, Any] = {}
        self.skip()
        while self.peek() != "}":
            if not self.peek():
                raise self.fail("unterminated object: '}' is missing", at=start)
            if self.peek() != '"':
                raise self.fail(f"unexpected {self.peek()!r}; expected a quoted key or '}}'")
            key_line = self.line()
            key = self.string()
            self.skip()
            if self.peek() != ":":
                raise self.fail(f"expected ':' after the key {key!r}")
            self.pos += 1
            self.skip()
            self.positions[(*path, key)] = key_line
            out[key] = self.value((*path, key))
            self.skip()
            if self.peek() == ",":
                self.pos += 1
                self.skip()
            elif self.peek() != "}":
                raise self.fail(f"expected ',' or '}}' after the value of {key!r}")
        self.pos += 1
        return out

    def array(self, path: Path) -> list[Any]:
        start = self.pos
        self.pos += 1
        out: list[Any] = []
        self.skip()
        while self.peek() != "]":
            if not self.peek():
                raise self.fail("unterminated array: ']' is missing", at=start)
            out.append(self.value((*path, len(out))))
            self.skip()
            if self.peek() == ",":
                self.pos += 1
                self.skip()
            elif self.peek() != "]":
                raise self.fail("expected ',' or ']' after an array item")
        self.pos += 1
        return out

    def string(self) -> str:
        start = self.pos
        index = start + 1
        text = self.text
        while True:
            if index >= len(text) or text[index] == "\n":
                raise self.fail("unterminated string", at=start)
            if text[index] == "\\":
                index += 2
                continue
            if text[index] == '"':
                break
            index += 1
        token = text[start : index + 1]
        try:
            value = json.loads(token)
        except json.JSONDecodeError as exc:
            raise self.fail(f"invalid string: {exc.msg}", at=start + exc.pos) from None
        self.pos = index + 1
        return str(value)

    def number(self) -> int | float:
        start = self.pos
        end = start
        while end < len(self.text) and self.text[end] in _NUMBER_CHARS:
            end += 1
        token = self.text[start:end]
        try:
            value = json.loads(token)
        except ValueError:  # malformed, or an integer beyond Python's digit limit
            raise self.fail(f"invalid number {token[:40]!r}", at=start) from None
        if not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(f"number out of range: {token[:40]!r}", at=start)
        self.pos = end
        return value


def parse_jsonc(text: str, source: str = "<string>") -> tuple[Any, dict[Path, int]]:
    """Parse JSONC text; return the document and the 1-based line of every field path."""
    parser = _Parser(text, source)
    return parser.document(), parser.positions
