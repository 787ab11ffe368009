"""The import graph of the package has no cycle and no upward edge, counting imports inside functions (issue 18).

The layers (:data:`LAYERS`): base -> data -> core (heads, losses, scores, metrics) -> models -> runs
(configuration, run directories, a run's inputs, devices) -> work (training, detectors, deploy, evaluation) ->
commands (CLI, bench, report). A module imports from its own layer or below; reading a run's data
(:mod:`isomax.inputs`), its model (:mod:`isomax.runs`) and the device (:mod:`isomax.devices`) sits below
training, evaluation and deploy, so that none of those needs another for it, and training does not fit the
threshold (the ``train`` command does, through :func:`isomax.deploy.fit_deployment`).
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
    assert len(graph) > 50 and "isomax.deploy.threshold" in graph["isomax.deploy.fit"]  # the graph was read
    assert cycles(graph) == []


#: module (or package: every module under it) -> layer. Names that do not exist (yet) are allowed.
LAYERS = {
    # 0 base
    "isomax.errors": 0,
    "isomax._io": 0,
    "isomax._validation": 0,
    # 1 data
    "isomax.data": 1,
    # 2 core
    "isomax.heads": 2,
    "isomax.losses": 2,
    "isomax.scores": 2,
    "isomax.metrics": 2,
    "isomax.registry": 2,
    "isomax.compat": 2,
    # 3 models; the package's own namespace (`import isomax`: heads, losses, convert) sits here
    "isomax.models": 3,
    "isomax.convert": 3,
    "isomax": 3,  # the package __init__ only (not a prefix, see layer())
    # 4 runs
    "isomax.presets": 4,
    "isomax.config_file": 4,  # reads and writes TrainConfig files (--config, --print-config)
    "isomax.runs": 4,
    "isomax.inputs": 4,
    "isomax.inference": 4,
    "isomax.devices": 4,
    "isomax.records": 4,
    "isomax.sampling": 4,
    "isomax.distributed": 4,
    # 5 work
    "isomax.training": 5,
    "isomax.detectors": 5,
    "isomax.deploy": 5,
    "isomax.evaluation": 5,
    # 6 commands
    "isomax.cli": 6,
    "isomax.__main__": 6,
    "isomax.bench": 6,
    "isomax.sweep": 6,  # a study like bench: trains, evaluates, writes its table and figure
    "isomax.report": 6,
    "isomax.tables": 6,
    "isomax.plots": 6,
    "isomax.integrations": 6,
}

#: upward imports still there, each with its reason; shrink it, never grow it
ALLOWED_UPWARD = {
    # `isomax.load_pretrained`, a lazy alias (module __getattr__) of the Hugging Face integration's loader
    ("isomax", "isomax.integrations.huggingface"),
}


def layer(module: str) -> int | None:
    """The layer of ``module``: its own entry, else its nearest package's (``isomax`` itself only exactly)."""
    name = module
    while name not in LAYERS or (name == "isomax" and module != "isomax"):
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return LAYERS[name]


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, edges in graph.items() for b in edges if layer(b) > layer(a))


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if layer(m) is None] == []


def test_no_module_imports_from_a_higher_layer():
    graph = import_graph()
    assert layer("isomax.deploy.threshold") == 5 and layer("isomax") == 3 and layer("isomax.cli.train") == 6
    up = upward_imports(graph)
    assert [e for e in up if e not in ALLOWED_UPWARD] == []
    assert [e for e in ALLOWED_UPWARD if e not in up] == []  # an edge that went away leaves the list too


def test_training_does_not_import_deploy():
    assert not {m for m in import_graph()["isomax.training"] if m.startswith("isomax.deploy")}


def test_the_layer_check_finds_upward_imports():
    assert upward_imports({"isomax.heads": {"isomax.training"}, "isomax.training": {"isomax.heads"}}) == [
        ("isomax.heads", "isomax.training")
    ]


def test_data_loading_is_below_training():
    graph = import_graph()
    for name, edges in graph.items():
        if name.startswith(("isomax.deploy", "isomax.evaluation", "isomax.inputs", "isomax.runs", "isomax.data")):
            assert "isomax.training" not in edges, name


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
