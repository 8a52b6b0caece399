"""The fake's module structure: no import cycles, and nothing of the harness.

The graph is read from the source (every ``import``, including those under ``TYPE_CHECKING`` and inside
functions, and the feature modules ``aigw_fakes.app`` imports by name), so a cycle that only type checkers or
a late import would meet is found too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import aigw_fakes
from aigw_fakes.features import FEATURES

ROOT = Path(aigw_fakes.__file__).parent


def _module_name(path: Path) -> str:
    # The folder is fakes/; its import name is aigw_fakes.
    parts = ("aigw_fakes", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imported(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module ``name`` imports: ``from a.b import c`` names ``a.b.c`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    if name == "aigw_fakes.app":
        found.update(FEATURES)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imported(path, name, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, set()) & graph.keys()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_fakes_modules_and_their_imports() -> None:
    graph = _graph()
    assert "aigw_fakes.server" in graph
    assert "aigw_fakes.app" in graph["aigw_fakes.server"]
    assert "aigw_fakes.state.fake" in graph["aigw_fakes.gateway.pipeline"]
    assert set(FEATURES) <= graph["aigw_fakes.app"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_fakes_has_no_import_cycles() -> None:
    graph = {name: {t for t in targets if t.startswith("aigw_fakes")} for name, targets in _graph().items()}
    assert _cycles(graph) == []


def test_fakes_subpackages_are_layered() -> None:
    """Between subpackages too, imports go one way only (top-level modules are not counted as a package)."""
    graph: dict[str, set[str]] = {}
    for name, targets in _graph().items():
        source = name.split(".")[1] if name.count(".") >= 2 else None
        if source is None:
            continue
        for target in targets:
            if target.startswith("fakes.") and target.count(".") >= 2 and target.split(".")[1] != source:
                graph.setdefault(source, set()).add(target.split(".")[1])
    for package in list(graph.values()):
        for target in package:
            graph.setdefault(target, set())
    assert _cycles(graph) == []


def test_fakes_never_imports_harness() -> None:
    offending = {
        name: sorted(t for t in targets if t == "aigw_harness" or t.startswith("aigw_harness."))
        for name, targets in _graph().items()
    }
    assert {name: found for name, found in offending.items() if found} == {}


def test_shared_leaves_import_nothing_else_of_fakes() -> None:
    """``datafiles`` and ``hardened_http`` are shared with the harness; they must stay leaves."""
    graph = _graph()
    for leaf in ("aigw_fakes.datafiles", "aigw_fakes.hardened_http"):
        assert {t for t in graph[leaf] if t == "aigw_fakes" or t.startswith("aigw_fakes.")} == set(), leaf
