"""Typed data files: YAML or JSON validated by a pydantic model, with errors that name file, line and field.

Every data file in the project (behaviour scripts, the model catalogue, tenants, scenarios) loads through
``load_model``. It lives in ``fakes`` because the fake needs it and must not import ``harness``; the
harness reuses it, since ``harness`` may depend on ``fakes`` but not the other way round.

A mistake raises ``DataFileError`` with one ``Problem`` per mistake, each with the line and the dotted
field path (``steps[2].expect.status``), so that a user can fix every mistake in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml

__all__ = ["DataFileError", "Problem", "load_model", "parse_model", "validate_data"]


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


class _LineLoader(yaml.SafeLoader):
    """A safe loader that also records where each mapping key and sequence item starts."""


def _compose_positions(
    node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]
) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            out[(*path, key)] = key_node.start_mark.line + 1
            _compose_positions(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _compose_positions(item, (*path, index), out)


def _parse_text(text: str, source: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    try:
        node = yaml.compose(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise DataFileError(
            source,
            [
                Problem(
                    "",
                    f"not valid YAML or JSON: {exc.problem}",
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                )
            ],
        ) from None
    positions: dict[tuple[str | int, ...], int] = {}
    if node is None:
        return None, positions
    _compose_positions(node, (), positions)
    data = yaml.load(text, Loader=_LineLoader)
    return data, positions


def _field_path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _nearest_line(loc: tuple[str | int, ...], positions: Mapping[tuple[str | int, ...], int]) -> int | None:
    while True:
        if loc in positions:
            return positions[loc]
        if not loc:
            return None
        loc = loc[:-1]


def validate_data[M: pydantic.BaseModel](
    data: Any,
    model: type[M],
    source: str,
    positions: Mapping[tuple[str | int, ...], int] | None = None,
) -> M:
    """Validate an already-parsed document, mapping pydantic's errors to ``Problem``s."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            # Tagged unions add the tag to the location; it is not a field the user wrote.
            loc = tuple(
                part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-"))
            )
            problems.append(
                Problem(
                    _field_path(loc),
                    error["msg"],
                    line=_nearest_line(loc, positions or {}) if positions else None,
                )
            )
        raise DataFileError(source, problems) from None


def parse_model[M: pydantic.BaseModel](text: str, model: type[M], source: str = "<string>") -> M:
    """Parse YAML or JSON text and validate it."""
    data, positions = _parse_text(text, source)
    return validate_data(data, model, source, positions)


def load_model[M: pydantic.BaseModel](path: str | Path, model: type[M]) -> M:
    """Load a YAML or JSON file and validate it; an unreadable file is a ``DataFileError`` too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(
            str(path), [Problem("", f"cannot read the file: {exc.strerror or exc}")]
        ) from None
    except UnicodeDecodeError as exc:
        raise DataFileError(
            str(path), [Problem("", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    return parse_model(text, model, str(path))
