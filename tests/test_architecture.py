"""The package's import graph reads top-down (docs/architecture.md): no import cycles between modules or between
top-level units, no import from a lower layer to a higher one, and a small top level."""

from __future__ import annotations

import ast
import pathlib

import clipcomp

ROOT = pathlib.Path(clipcomp.__file__).parent

# Layer of each top-level unit (package or module): a unit may import only units of its own layer or below.
LAYERS = {
    4: ("cli", "__main__"),
    3: ("pipelines",),
    2: ("tasks", "train", "analysis", "similarity", "negatives", "benchgen"),
    1: ("datasets", "synth", "stats", "cooccur", "corpus", "concepts", "models"),
    0: ("errors", "io", "procs", "progress", "remote", "config", "nlp"),
}
RANK = {unit: rank for rank, units in LAYERS.items() for unit in units}


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module → the clipcomp modules it imports (at any depth, function-level imports included)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # `from a import b` names module a.b when b is a module, else module a
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[name].update(t for t in targets if t in mods and t != name)
    return edges


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_module_cycles():
    assert _cycles(import_graph()) == []


def test_no_cycles_between_top_level_units():
    units: dict[str, set[str]] = {}
    for a, bs in import_graph().items():
        for b in bs:
            if _unit(a) != _unit(b):
                units.setdefault(_unit(a), set()).add(_unit(b))
    assert _cycles(units) == []


def test_every_unit_has_a_layer_and_no_import_goes_up():
    edges = import_graph()
    units = {_unit(m) for m in edges} - {"<root>"}
    assert units <= set(RANK), f"units without a layer: {sorted(units - set(RANK))}"
    up = sorted(f"{a} → {b}" for a, bs in edges.items() for b in bs
                if _unit(a) != "<root>" and (_unit(b) == "<root>" or RANK[_unit(b)] > RANK[_unit(a)]))
    assert up == []


def test_small_top_level():
    modules = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(modules) <= 12, modules


def test_moved_modules_still_import():
    import importlib
    import warnings

    for old, new in clipcomp.MOVED_MODULES.items():
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            assert importlib.import_module(old) is importlib.import_module(new)
