"""Typed data files: YAML or JSON validated by a pydantic model, with errors that name file, line and field.

Every data file in the project (behaviour scripts, the model catalogue, tenants, scenarios) loads through
``load_model``. It lives in ``fakes`` because the fake needs it and must not import ``harness``; the
harness reuses it, since ``harness`` may depend on ``fakes`` but not the other way round. It is a leaf:
it imports nothing else of ``fakes``.

A mistake raises ``DataFileError`` with one ``Problem`` per mistake, each with the line and the dotted
field path (``steps[2].expect.status``), so that a user can fix every mistake in one pass.

Input from outside is bounded before it is trusted (``Limits``): the size of the text, the nesting depth,
and the number of values the document holds once its aliases are expanded (an alias bomb of a few hundred
bytes would otherwise expand to billions of values in whatever walks it next). Only plain data is accepted:
strings, numbers, booleans, null, lists, mappings, timestamps and merge keys (``<<``); any other tag
(``!!python/object``, ``!!binary``, ``!custom``) is refused with its line. Integers fit in 64 bits, floats
are finite, strings are valid Unicode, and a mapping holds each key once. The document is composed from
the parser's events here, without recursion, so that no input can exhaust the stack.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml
from yaml.constructor import SafeConstructor

__all__ = [
    "DEFAULT_LIMITS",
    "DataFileError",
    "Limits",
    "Problem",
    "line_of",
    "load_model",
    "parse_data",
    "parse_model",
    "read_text",
    "validate_data",
    "validate_part",
]


@dataclass(frozen=True, slots=True)
class Problem:
    field: str  # dotted path, "" for the document itself
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based


class DataFileError(ValueError):
    """A data file (or in-memory document) that cannot be used; ``problems`` lists every mistake found."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self._format())

    def _format(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"]
        for problem in self.problems:
            where = self.source
            if problem.line is not None:
                where += f":{problem.line}"
                if problem.column is not None:
                    where += f":{problem.column}"
            field = f" {problem.field}:" if problem.field else ""
            lines.append(f"  {where}:{field} {problem.message}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one document. The defaults hold every data file of the project with room to spare."""

    max_bytes: int = 8 * 1024 * 1024
    """Size of the text (UTF-8 bytes)."""
    max_depth: int = 100
    """Nesting of lists and mappings."""
    max_values: int = 1_000_000
    """Values in the document with every alias expanded (what a consumer walking it would visit)."""


DEFAULT_LIMITS = Limits()

_INT64 = 2**63
# What YAML 1.1 refuses in a stream (the reader's own test) plus what JSON would have to escape.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TAG = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "merge")
)
_MERGE, _INT, _FLOAT = _TAG + "merge", _TAG + "int", _TAG + "float"

type _Loc = tuple[str | int, ...]

try:  # libyaml's parser is ten times faster; the events are the same
    _Parser: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = yaml.SafeLoader


def _mark(mark: Any) -> tuple[int | None, int | None]:
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def _field_path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Open:
    """A list or mapping being composed: its node, and for a mapping the key waiting for its value and the
    keys seen so far (with their lines)."""

    __slots__ = ("node", "pending", "seen")

    def __init__(self, node: yaml.Node) -> None:
        self.node = node
        self.pending: yaml.Node | None = None
        self.seen: dict[tuple[str, Any], int] = {}


class _Composer:
    """Builds YAML nodes from parser events with an explicit stack, checking every bound on the way."""

    def __init__(self, text: str, source: str, limits: Limits) -> None:
        self.text = text
        self.source = source
        self.limits = limits
        self._reset()

    def _reset(self) -> None:
        self.stack: list[_Open] = []
        self.anchors: dict[str, yaml.Node] = {}
        self.open_anchors: set[str] = set()
        self.sizes: dict[int, int] = {}  # id(node) -> values once aliases are expanded
        self.anchor_of: dict[int, str] = {}  # id(collection node) -> its anchor, registered when it closes

    def loc(self) -> _Loc:
        """Where the next value goes (worked out only for an error message)."""
        out: list[str | int] = []
        for entry in self.stack:
            if isinstance(entry.node, yaml.SequenceNode):
                out.append(len(entry.node.value))
            elif entry.pending is not None:
                key = entry.pending
                out.append(key.value if isinstance(key, yaml.ScalarNode) else "?")
            else:
                break
        return tuple(out)

    def fail(self, message: str, mark: Any, loc: _Loc | None = None) -> DataFileError:
        line, column = _mark(mark)
        field = _field_path(self.loc() if loc is None else loc)
        return DataFileError(self.source, [Problem(field, message, line=line, column=column)])

    def compose(self) -> yaml.Node | None:
        try:
            return self._compose_with(_Parser)
        except yaml.MarkedYAMLError as exc:
            # libyaml refuses escaped surrogates even in pairs ("\\ud83d\\ude80", as json.dumps writes an
            # emoji); PyYAML's own parser reads them, and the composer joins the pairs.
            if _Parser is yaml.SafeLoader or "Unicode character escape" not in str(exc.problem):
                raise self._syntax(exc) from None
        self._reset()
        try:
            return self._compose_with(yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            raise self._syntax(exc) from None

    def _syntax(self, exc: yaml.MarkedYAMLError) -> DataFileError:
        mark = exc.problem_mark or exc.context_mark
        return self.fail(f"not valid YAML or JSON: {exc.problem or exc.context or 'syntax error'}", mark, ())

    def _compose_with(self, loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> yaml.Node | None:
        parser = loader(self.text)
        try:
            return self._compose(parser)
        except yaml.MarkedYAMLError:
            raise
        except yaml.YAMLError as exc:  # unmarked reader errors
            raise DataFileError(self.source, [Problem("", f"not valid YAML or JSON: {exc}")]) from None
        finally:
            parser.dispose()

    def _compose(self, parser: Any) -> yaml.Node | None:
        stack = self.stack
        root: yaml.Node | None = None
        documents = 0
        while parser.check_event():
            event = parser.get_event()
            kind = type(event)
            node: yaml.Node
            if kind is yaml.ScalarEvent:
                node = self._scalar(parser, event)
                if event.anchor is not None:
                    self.anchors[event.anchor] = node
            elif kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
                node = stack.pop().node
                anchor = self.anchor_of.pop(id(node), None)
                if anchor is not None:
                    self.anchors[anchor] = node
                    self.open_anchors.discard(anchor)
            elif kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
                self._open(parser, event)
                continue
            elif kind is yaml.AliasEvent:
                if event.anchor in self.open_anchors:
                    raise self.fail(f"alias *{event.anchor} refers to itself", event.start_mark)
                target = self.anchors.get(event.anchor)
                if target is None:
                    raise self.fail(f"alias *{event.anchor} has no anchor &{event.anchor} before it",
                                    event.start_mark)  # fmt: skip
                node = target
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.fail("expected one document, found another ('---')", event.start_mark, ())
                continue
            else:  # stream start and end, document end
                continue
            if stack:
                self._add(node, event.start_mark)
            else:
                root = node
        return root

    def _open(self, parser: Any, event: Any) -> None:
        kind = yaml.SequenceNode if type(event) is yaml.SequenceStartEvent else yaml.MappingNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = parser.resolve(kind, None, event.implicit)
        self._check_tag(tag, event.start_mark)
        if len(self.stack) >= self.limits.max_depth:
            raise self.fail(f"nested more than {self.limits.max_depth} levels deep", event.start_mark)
        node = kind(tag, [], event.start_mark, event.end_mark, flow_style=event.flow_style)
        if event.anchor is not None:
            self.anchor_of[id(node)] = event.anchor
            self.open_anchors.add(event.anchor)
        self.stack.append(_Open(node))

    def _add(self, child: yaml.Node, mark: Any) -> None:
        entry = self.stack[-1]
        parent = entry.node
        total = self.sizes.get(id(parent), 1) + self.sizes.get(id(child), 1)
        self.sizes[id(parent)] = total
        # The whole document is at least as big as any open collection in it.
        if total > self.limits.max_values:
            raise self.fail(
                f"the document expands to more than {self.limits.max_values:,} values "
                "(aliases repeat what they point at); write it out or make it smaller",
                mark,
            )
        if type(parent) is yaml.SequenceNode:
            parent.value.append(child)
            return
        if entry.pending is not None:
            parent.value.append((entry.pending, child))
            entry.pending = None
            return
        if type(child) is yaml.ScalarNode and child.tag != _MERGE:
            key = (child.tag, child.value)
            first = entry.seen.get(key)
            if first is not None:
                loc = self.loc()
                raise self.fail(
                    f"key {child.value!r} appears twice in this mapping (first on line {first})",
                    child.start_mark,
                    (*loc, child.value),
                )
            entry.seen[key] = child.start_mark.line + 1
        entry.pending = child

    def _check_tag(self, tag: str, mark: Any) -> None:
        if tag not in _ALLOWED_TAGS:
            shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
            raise self.fail(
                f"the tag {shown} is not allowed: data files hold plain values only "
                "(strings, numbers, booleans, null, lists, mappings, timestamps)",
                mark,
            )

    def _scalar(self, parser: Any, event: Any) -> yaml.ScalarNode:
        tag = event.tag
        if tag is None or tag == "!":
            tag = parser.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag not in _ALLOWED_TAGS:
            self._check_tag(tag, event.start_mark)
        value = event.value
        # Only escapes in a double-quoted string can make a surrogate: the text itself was checked.
        if event.style == '"' and _SURROGATE.search(value):
            # An escaped surrogate pair ("\\ud83d\\ude80") arrives as two halves: join them; a lone half is
            # not Unicode text and could be neither stored nor sent.
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            if value.count("\ufffd") > event.value.count("\ufffd"):
                raise self.fail("not valid Unicode: a lone surrogate (\\ud800-\\udfff)", event.start_mark)
        node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)
        if tag == _INT:
            digits = value.replace("_", "").lstrip("+-")
            if len(digits) > 24 or abs(_CONSTRUCTOR.construct_yaml_int(node)) >= _INT64:
                raise self.fail("integer out of range: at most 64 bits", event.start_mark)
        elif tag == _FLOAT and not math.isfinite(_CONSTRUCTOR.construct_yaml_float(node)):
            raise self.fail(
                "not a finite number (.inf, .nan and values beyond 1.8e308 are refused)", event.start_mark
            )
        return node


_CONSTRUCTOR = SafeConstructor()


def _positions(node: yaml.Node | None) -> dict[_Loc, int]:
    """The 1-based line of every field path, aliases expanded (the composer has bounded that)."""
    out: dict[_Loc, int] = {}
    work: list[tuple[yaml.Node, _Loc]] = [(node, ())] if node is not None else []
    while work:
        current, path = work.pop()
        out.setdefault(path, current.start_mark.line + 1)
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                out[(*path, key)] = key_node.start_mark.line + 1
                work.append((value_node, (*path, key)))
        elif isinstance(current, yaml.SequenceNode):
            work.extend((item, (*path, index)) for index, item in enumerate(current.value))
    return out


def _check_size(size: int, source: str, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise DataFileError(
            source,
            [
                Problem(
                    "",
                    f"too large: {size:,} bytes, data files are limited to {limits.max_bytes:,} bytes",
                )
            ],
        )


def _compose_text(text: str, source: str, limits: Limits) -> yaml.Node | None:
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None and not _SURROGATE.match(bad.group()):
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise DataFileError(
            source,
            [
                Problem(
                    "",
                    f"control character U+{ord(bad.group()):04X} is not allowed in a data file "
                    "(write it as an escape inside a double-quoted string)",
                    line=line,
                    column=column,
                )
            ],
        )
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise DataFileError(source, [Problem("", "not valid Unicode: a lone surrogate", line=line)])
    return _Composer(text, source, limits).compose()


def _construct(node: yaml.Node | None, source: str) -> Any:
    if node is None:
        return None
    try:
        return SafeConstructor().construct_document(node)
    except yaml.MarkedYAMLError as exc:
        line, column = _mark(exc.problem_mark or exc.context_mark)
        raise DataFileError(
            source, [Problem("", f"not valid YAML or JSON: {exc.problem or exc.context}", line, column)]
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a value the checks above did not foresee
        line, column = _mark(node.start_mark)
        raise DataFileError(source, [Problem("", f"cannot read a value: {exc}", line, column)]) from None


class _NotPlainJson(Exception):
    """Raised inside ``json.loads`` hooks: the YAML path reports the mistake with its line."""


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _NotPlainJson
    return out


def _json_int(text: str) -> int:
    if len(text) > 24 or abs(value := int(text)) >= _INT64:
        raise _NotPlainJson
    return value


class _InfiniteJson(_NotPlainJson):
    """A JSON number beyond a float's range: YAML 1.1 would read it as a string, so it is reported here."""


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _InfiniteJson
    return value


_JSON_NUMBER = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+|NaN|-?Infinity")


def _infinite_json(text: str, source: str) -> DataFileError:
    line = column = None
    for match in _JSON_NUMBER.finditer(text):
        if not math.isfinite(float(match.group().replace("Infinity", "inf"))):
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            break
    return DataFileError(
        source,
        [
            Problem(
                "", "not a finite number (NaN, Infinity and values beyond 1.8e308 are refused)", line, column
            )
        ],
    )


def _json_constant(text: str) -> Any:
    raise _InfiniteJson  # NaN, Infinity, -Infinity: not JSON, and YAML would read them as strings


def _plain_json(text: str, limits: Limits) -> Any:
    """JSON read by ``json`` (fast), or ``_NotPlainJson`` when any bound or rule is broken."""
    try:
        data = json.loads(
            text,
            object_pairs_hook=_json_pairs,
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=_json_constant,
        )
    except (ValueError, RecursionError):
        raise _NotPlainJson from None
    work: list[tuple[Any, int]] = [(data, 1)]
    while work:
        value, depth = work.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise _NotPlainJson
        elif isinstance(value, (dict, list)):
            if depth > limits.max_depth:
                raise _NotPlainJson
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _SURROGATE.search(key):
                    raise _NotPlainJson
                work.append((item, depth + 1))
    return data


def parse_data(
    text: str, source: str = "<string>", limits: Limits = DEFAULT_LIMITS
) -> tuple[Any, Callable[[], Mapping[_Loc, int]]]:
    """Parse YAML or JSON text within ``limits``; return the data and a function giving field lines.

    The lines are worked out only when asked for (for an error message).
    """
    # Characters are at most four bytes: only a long text needs encoding to be measured.
    if len(text) * 4 > limits.max_bytes:
        _check_size(len(text.encode("utf-8", "surrogatepass")), source, limits)
    if text.lstrip(" \t\r\n")[:1] in ("{", "["):
        # JSON (most large files) is read by ``json``, ten times faster; anything unusual goes the YAML
        # way below, which names the line. Lines of a valid document are found the YAML way on demand.
        try:
            data = _plain_json(text, limits)
        except _InfiniteJson:
            raise _infinite_json(text, source) from None
        except _NotPlainJson:
            pass
        else:
            return data, lambda: _positions(_compose_text(text, source, limits))
    node = _compose_text(text, source, limits)
    data = _construct(node, source)
    return data, lambda: _positions(node)


def validate_data[M: pydantic.BaseModel](
    data: Any,
    model: type[M],
    source: str,
    positions: Mapping[_Loc, int] | Callable[[], Mapping[_Loc, int]] | None = None,
) -> M:
    """Validate an already-parsed document, mapping pydantic's errors to ``Problem``s.

    ``positions`` maps field paths to lines (or is a function returning that map, called on failure).
    """
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        lines = positions() if callable(positions) else positions
        problems = []
        for error in exc.errors(include_url=False):
            # Tagged unions add the tag to the location; it is not a field the user wrote.
            loc = tuple(
                part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-"))
            )
            line = _nearest_line(loc, lines or {})
            if line is None and positions is not None and data is None:
                line = 1  # an empty file: the mistake is its first line
            problems.append(Problem(_field_path(loc), error["msg"], line=line))
        raise DataFileError(source, problems) from None
    except RecursionError:  # data built in code, not from a file: files are bounded in depth above
        raise DataFileError(source, [Problem("", "nested too deeply")]) from None


def validate_part[M: pydantic.BaseModel](
    data: Any,
    model: type[M],
    source: str,
    positions: Mapping[_Loc, int] | Callable[[], Mapping[_Loc, int]] | None,
    at: _Loc,
) -> M:
    """Validate the part of a larger document found at ``at`` (``("steps", 2, "upstream")``); problems name
    fields and lines in the whole document."""

    def part_lines() -> Mapping[_Loc, int]:
        lines = positions() if callable(positions) else positions or {}
        return {loc[len(at) :]: line for loc, line in lines.items() if loc[: len(at)] == at}

    try:
        return validate_data(data, model, source, part_lines)
    except DataFileError as exc:
        prefix = _field_path(at)
        raise DataFileError(
            source,
            [
                Problem(
                    prefix + ("" if not p.field else p.field if p.field.startswith("[") else "." + p.field),
                    p.message,
                    p.line,
                    p.column,
                )
                for p in exc.problems
            ],
        ) from None


def line_of(positions: Mapping[_Loc, int] | Callable[[], Mapping[_Loc, int]] | None, loc: _Loc) -> int | None:
    """The line of the field at ``loc`` (or of the nearest enclosing field that has one)."""
    return _nearest_line(loc, (positions() if callable(positions) else positions) or {})


def _nearest_line(loc: _Loc, positions: Mapping[_Loc, int]) -> int | None:
    while positions:
        if loc in positions:
            return positions[loc]
        if not loc:
            return None
        loc = loc[:-1]
    return None


def parse_model[M: pydantic.BaseModel](
    text: str, model: type[M], source: str = "<string>", limits: Limits = DEFAULT_LIMITS
) -> M:
    """Parse YAML or JSON text and validate it."""
    data, positions = parse_data(text, source, limits)
    return validate_data(data, model, source, positions)


def read_text(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """A data file's text, refused (``DataFileError``) when unreadable, too large or not UTF-8."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if stat.S_ISREG(status.st_mode):
                _check_size(status.st_size, str(path), limits)  # refused unread
                raw = handle.read(status.st_size + 1)
            else:  # a pipe or device: read no more than the limit allows
                raw = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise DataFileError(
            str(path), [Problem("", f"cannot read the file: {exc.strerror or exc}")]
        ) from None
    if len(raw) > limits.max_bytes:
        size = path.stat().st_size if path.is_file() else len(raw)
        _check_size(max(size, len(raw)), str(path), limits)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataFileError(
            str(path), [Problem("", f"not UTF-8 text ({exc.reason} at byte {exc.start})", line=line)]
        ) from None


def load_model[M: pydantic.BaseModel](path: str | Path, model: type[M], limits: Limits = DEFAULT_LIMITS) -> M:
    """Load a YAML or JSON file and validate it; an unreadable file is a ``DataFileError`` too."""
    return parse_model(read_text(path, limits), model, str(path), limits)
