"""Who imports whom in src/nncompare: no cycle, and the writers of results depend on results, not on each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nncompare

SRC = Path(nncompare.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = ["nncompare", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _typing_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``: annotations, not imports at run time."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            skipped |= {id(n) for n in ast.walk(node)}
    return skipped


def import_graph() -> dict[str, set[str]]:
    """Module -> the nncompare modules it imports, at module level or inside functions alike."""
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        typing_only = _typing_only(tree)
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules:
                        graph[name].add(target)
                    elif base in modules:
                        graph[name].add(base)
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_in_src_takes_part_in_an_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "module, not_on",
    [
        ("nncompare.report", {"nncompare.plots"}),
        ("nncompare.plots", {"nncompare.report", "nncompare.explain"}),
        ("nncompare.explain", {"nncompare.report", "nncompare.plots"}),
        ("nncompare.whatif", {"nncompare.report", "nncompare.plots", "nncompare.explain"}),
        ("nncompare.results", {"nncompare.report", "nncompare.plots", "nncompare.explain", "nncompare.whatif"}),
    ],
)
def test_writers_depend_on_results_not_on_each_other(module, not_on):
    imported = import_graph()[module]
    assert not imported & not_on
    if module != "nncompare.results":
        assert "nncompare.results" in imported


def test_declaring_the_engines_imports_neither_dask_nor_spark():
    """The plugins' declarations are read by every command: they must not pull a framework in."""
    for name in ("nncompare.engines.dask", "nncompare.engines.spark", "nncompare.engines.local"):
        tree = ast.parse(_modules()[name].read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.split(".")[0] in ("dask", "distributed", "pyspark", "sklearn")}, name
