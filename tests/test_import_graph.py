"""The package's import graph has no cycles and imports go one way.

The graph is read from the source with :mod:`ast` (nothing is imported). An edge
``a -> b`` means that running module ``a`` may run module ``b``:

* every ``import`` / ``from ... import`` inside ``torchfluid``, at module level AND
  inside functions (a function-level import is a deferred edge, not a missing one:
  a cycle through it is still two modules that need each other);
* ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
  ``pkg`` (its ``__init__``);
* importing ``a.b.c`` first runs the packages ``a.b`` and ``a`` (their ``__init__``),
  so those are edges too, except the importer's own enclosing packages (already
  running).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "torchfluid"


def _modules():
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("torchfluid",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _import_nodes(tree, function_level):
    if function_level:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    out = []
    stack = list(tree.body)
    while stack:  # module level: also inside module-level if/try/with, never inside def/class bodies
        n = stack.pop()
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out.append(n)
        elif isinstance(n, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                stack.extend(getattr(n, field, []))
        elif isinstance(n, ast.ExceptHandler):
            stack.extend(n.body)
    return out


def _targets(module, is_pkg, node, mods):
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")
            if not is_pkg:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module
        names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
    out = set()
    for name in names:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def import_graph(function_level):
    mods = _modules()
    graph = {}
    for module, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_pkg = path.name == "__init__.py"
        own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        deps = set()
        for node in _import_nodes(tree, function_level):
            for target in _targets(module, is_pkg, node, mods):
                parts = target.split(".")
                deps.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[module] = {d for d in deps if d in mods and d not in own}
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(frozenset(comp))
    return out


def _describe(graph, comp):
    return "\n".join(f"  {m} -> {sorted(d for d in graph[m] if d in comp)}" for m in sorted(comp))


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [{"a", "b"}]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [{"a", "b", "c"}]),
        ({"a": {"a"}}, []),  # a module importing itself is no cycle between modules
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [{"a", "b"}, {"c", "d"}]),
    ],
)
def test_cycle_finder_on_small_graphs(graph, expected):
    assert sorted(map(sorted, cycles(graph))) == sorted(map(sorted, expected))


def test_graph_reader_sees_relative_function_level_and_package_edges():
    graph = import_graph(function_level=True)
    # `from ..checkpoint.atomic import atomic_write` in io/__init__.py: the module and its package
    assert {"torchfluid.checkpoint.atomic", "torchfluid.checkpoint"} <= graph["torchfluid.io"]
    # `from ..static import io as static_io` inside io.__getattr__: a function-level edge
    assert "torchfluid.static.io" in graph["torchfluid.io"]
    assert "torchfluid.static.io" not in import_graph(function_level=False)["torchfluid.io"]


def test_no_cycle_among_module_level_imports():
    graph = import_graph(function_level=False)
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n\n".join(_describe(graph, c) for c in found)


def test_no_cycle_counting_function_level_imports():
    graph = import_graph(function_level=True)
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n\n".join(_describe(graph, c) for c in found)


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        (
            "torchfluid.kernels",
            ("torchfluid.optimizer", "torchfluid.static", "torchfluid.dygraph", "torchfluid.layers", "torchfluid.lr"),
        ),
        ("torchfluid.lr", ("torchfluid.optimizer", "torchfluid.static", "torchfluid.dygraph", "torchfluid.layers")),
        ("torchfluid.optimizer", ("torchfluid.static", "torchfluid.dygraph", "torchfluid.layers", "torchfluid.ops")),
        ("torchfluid.ops", ("torchfluid.optimizer", "torchfluid.static", "torchfluid.dygraph", "torchfluid.layers")),
        ("torchfluid.io", ("torchfluid.dygraph", "torchfluid.layers")),
    ],
)
def test_lower_layers_do_not_import_the_facades(layer, forbidden):
    graph = import_graph(function_level=True)
    bad = sorted(
        (m, d)
        for m, deps in graph.items()
        if m == layer or m.startswith(layer + ".")
        for d in deps
        if any(d == f or d.startswith(f + ".") for f in forbidden)
    )
    assert not bad, f"{layer} imports a layer above it: {bad}"
