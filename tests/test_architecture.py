"""The shape of the harness: its layers, each importing only the layers below it
(docs/architecture.md draws them), no import cycle inside harness/, and nothing
in the core (or the backends) imports the command line. Imports inside functions
count: deferring an import hides a cycle from Python, not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND_LINE = ("harness.__main__", "harness.commands")
# The layers, lowest first: a module may import its own layer's modules and those
# of the layers below it, never one above. The data and the backends know nothing
# of the rest; then the shared lower modules (a run's settings and records, every
# statistic, the summary frame, atomic writing, every file format); the job every child process
# starts from; the profiled children; the runs and sweeps, which may profile; the
# reports, which read what runs wrote; the comparison and history; and the command
# line on top, which alone writes the pages and parses arguments.
LAYERS = (
    "harness.data",
    "backends",
    "harness.config",
    "harness.records",
    "harness.stats",
    "harness.summary",
    "harness.files",
    "harness.storage",
    "harness.jobs",
    "harness.profiling",
    "harness.running",
    "harness.reporting",
    "harness.compare",
    "harness.commands",
    "harness.__main__",
)
ROOTS = ("harness",)  # the package itself: an empty __init__.py, below everything


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str, root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


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


def import_graph(*packages: str, root: Path = ROOT) -> dict[str, set[str]]:
    found = {name: path for package in packages
             for name, path in modules(package, root).items()}
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def layer(name: str, layers: tuple[str, ...] = LAYERS, roots: tuple[str, ...] = ROOTS) -> int:
    """The index of ``name``'s layer (the declared package or module it is, or is
    inside); -1 for a root package; None for a module no layer declares."""
    if name in roots:
        return -1
    found = [i for i, unit in enumerate(layers)
             if name == unit or name.startswith(unit + ".")]
    return max(found, key=lambda i: len(layers[i])) if found else None


def upward_imports(graph: dict[str, set[str]], layers: tuple[str, ...] = LAYERS,
                   roots: tuple[str, ...] = ROOTS) -> dict[str, list[str]]:
    """Every module that imports one of a higher layer, with what it imports."""
    found = {}
    for name, deps in graph.items():
        up = sorted(d for d in deps if layer(d, layers, roots) is not None
                    and layer(name, layers, roots) is not None
                    and layer(d, layers, roots) > layer(name, layers, roots))
        if up:
            found[name] = up
    return found


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


def test_every_module_belongs_to_a_declared_layer():
    graph = import_graph("harness", "backends")
    assert sorted(name for name in graph if layer(name) is None) == []


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(import_graph("harness", "backends")) == {}


def test_the_layer_check_reports_an_upward_import(tmp_path):
    """A lower layer that imports a higher one, inside a function as a deferred
    import would, is reported; the downward import beside it is not."""
    package = tmp_path / "pkg"
    (package / "high").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "high" / "__init__.py").write_text("")
    (package / "high" / "view.py").write_text("from pkg import low\n")
    (package / "low.py").write_text("def f():\n    from pkg.high import view\n    return view\n")
    graph = import_graph("pkg", root=tmp_path)
    assert graph["pkg.low"] == {"pkg.high.view"} and graph["pkg.high.view"] == {"pkg.low"}
    layers = ("pkg.low", "pkg.high")
    assert upward_imports(graph, layers, roots=("pkg",)) == {"pkg.low": ["pkg.high.view"]}
    assert upward_imports({"pkg.high.view": {"pkg.low"}}, layers, roots=("pkg",)) == {}



def test_every_package_is_in_the_distribution():
    """A package missing from pyproject.toml's list works in a checkout and is
    missing from an installed wheel."""
    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("harness", "backends") for init in (ROOT / top).rglob("__init__.py")}
    assert found - listed == set(), "add them to [tool.setuptools] packages"
