"""flowlab's modules among themselves (issue 37): no module imports another's private name (a
name with a leading underscore, from ``from flowlab.x import _y`` or ``x._y``), and no import
cycle among flowlab's modules, counting imports inside functions too (a lazy import hides a
cycle from Python, not from a reader). Private *modules* (``flowlab._validate``) are the
package's own and may be imported; their public names are their contract. Read from the source
with :mod:`ast`, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flowlab"


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, ast.Module]:
    """flowlab's modules (subpackages included) by dotted name, parsed."""
    return {_module_name(path, package): ast.parse(path.read_text(encoding="utf-8"), str(path))
            for path in sorted(package.rglob("*.py")) if "__pycache__" not in path.parts}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def imports(name: str, tree: ast.Module, known: set[str]) -> tuple[set[str], list[str]]:
    """The flowlab modules ``name`` imports (anywhere in it), and its uses of other modules'
    private names, each as 'line N: what'."""
    imported, aliases, private = set(), {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    imported.add(alias.name)
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "flowlab":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    imported.add(submodule)
                    aliases[alias.asname or alias.name] = submodule
                    continue
                if node.module in known:
                    imported.add(node.module)
                if _private(alias.name) and node.module != name:
                    private.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            owner = aliases[node.value.id]
            if _private(node.attr) and owner != name and f"{owner}.{node.attr}" not in known:
                private.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return imported - {name}, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph_and_private(package: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    parsed = modules(package)
    graph, private = {}, {}
    for name, tree in parsed.items():
        graph[name], uses = imports(name, tree, set(parsed))
        if uses:
            private[name] = uses
    return graph, private


def test_no_module_imports_another_modules_private_name():
    _, private = _graph_and_private()
    assert private == {}, "make the name public where it is a contract, or move it to the module that uses it"


def test_no_import_cycle_among_flowlab_modules():
    graph, _ = _graph_and_private()
    assert cycles(graph) == []


def _core(module: str) -> bool:
    """The lab's core: flowlab's top-level modules and the flow families (flowlab.flows); not the
    command line (flowlab.cli, and ``python -m flowlab``, which runs it)."""
    top_level = module.count(".") == 1 and module not in ("flowlab.cli", "flowlab.__main__")
    return top_level or module.startswith("flowlab.flows")


def test_the_lab_core_imports_no_study_no_grader_and_not_the_command():
    """The subpackages depend on the core, never the other way round: flowlab.io finds the digits
    flows' save and load by name (flowlab.studies.digits.io), on first use."""
    graph, _ = _graph_and_private()
    assert {module: sorted(target for target in targets if not _core(target))
            for module, targets in graph.items() if _core(module) and not all(map(_core, targets))} == {}
    assert "flowlab.studies.digits.io" not in graph["flowlab.io"]


def test_no_module_imports_a_moved_module_by_its_old_name():
    """The old flat names (flowlab._moved.MOVED) are for the notebooks and scripts outside the
    package: flowlab's own modules import the new paths, so none of them relies on the import hook."""
    from flowlab._moved import MOVED

    old = {f"flowlab.{name}" for name in MOVED}
    found = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [f"{name}: import {a.name}" for a in node.names if a.name in old]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in old:
                found.append(f"{name}: from {node.module} import ...")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found += [f"{name}: from {node.module} import {a.name}" for a in node.names
                          if f"{node.module}.{a.name}" in old]
    assert found == []


@pytest.fixture
def package(tmp_path) -> Path:
    """A small package named flowlab whose modules break both rules."""
    root = tmp_path / "flowlab"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "_private_module.py").write_text("VALUE = 1\n")
    (root / "a.py").write_text("from flowlab import _private_module\nfrom flowlab.b import _hidden, shown\n"
                               "def later():\n    from flowlab import c\n    return c\n")
    (root / "b.py").write_text("import flowlab.a as first\n_hidden = shown = 1\nfirst._secret\nfirst.public\n")
    (root / "c.py").write_text("from flowlab import a\n")
    return root


def test_the_walk_finds_private_names_and_cycles_lazy_imports_included(package):
    graph, private = _graph_and_private(package)
    assert private == {"flowlab.a": ["line 2: from flowlab.b import _hidden"], "flowlab.b": ["line 3: first._secret"]}
    assert graph["flowlab.a"] == {"flowlab._private_module", "flowlab.b", "flowlab.c"}
    assert cycles(graph) == [["flowlab.a", "flowlab.b", "flowlab.c"]]
