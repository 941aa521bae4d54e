"""The shape of the harness: no import cycle inside harness/, and nothing in the
core (or the backends) imports the command line. Imports inside functions count:
deferring an import hides a cycle from Python, not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND_LINE = ("harness.__main__", "harness.commands")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # ``from harness.x import y``: y is a module when harness.x.y is one.
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known
                      else node.module for a in node.names}
    return found & known


def import_graph(*packages: str) -> dict[str, set[str]]:
    found = {name: path for package in packages for name, path in modules(package).items()}
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def is_command_line(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in COMMAND_LINE)


def test_the_harness_has_no_import_cycle():
    assert cycles(import_graph("harness", "backends")) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_nothing_below_the_command_line_imports_it():
    graph = import_graph("harness", "backends")
    upward = {name: sorted(filter(is_command_line, deps)) for name, deps in graph.items()
              if not is_command_line(name)}
    assert {name: deps for name, deps in upward.items() if deps} == {}


def test_the_backends_do_not_import_the_harness():
    graph = import_graph("harness", "backends")
    assert {name: sorted(d for d in deps if d.startswith("harness"))
            for name, deps in graph.items()
            if name.startswith("backends") and any(d.startswith("harness") for d in deps)} == {}


def test_every_module_is_seen():
    graph = import_graph("harness")
    assert {"harness.storage", "harness.running.run", "harness.commands.run"} <= set(graph)
    assert "harness.storage" in graph["harness.running.run"]
