"""The import graph of the package has no cycle, counting imports inside functions (issue 18).

Reading a run's data (:mod:`isomax.inputs`), its model (:mod:`isomax.runs`) and the device
(:mod:`isomax.devices`) sits below training, evaluation and deploy, so that none of those needs
another for it. One upward edge is left (``training`` fits the threshold through ``deploy`` at the end
of training); it makes no cycle, since ``deploy`` and ``evaluation`` do not import ``training``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import isomax

ROOT = Path(isomax.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the isomax modules it imports anywhere in its file (``from .x import y`` counts ``x.y``
    when that is a module, else ``x``)."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                elif node.module and node.module.split(".")[0] == "isomax":
                    target = node.module
                else:
                    continue
                edges |= {f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names}
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.split(".")[0] == "isomax"}
        graph[name] = {e for e in edges if e in mods and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and "isomax.deploy.threshold" in graph["isomax.training"]  # the graph was read
    assert cycles(graph) == []


def test_data_loading_is_below_training():
    graph = import_graph()
    for name, edges in graph.items():
        if name.startswith(("isomax.deploy", "isomax.evaluation", "isomax.inputs", "isomax.runs", "isomax.data")):
            assert "isomax.training" not in edges, name


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
