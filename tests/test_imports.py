"""ganlab's modules import one another without a circle, even through imports made late
(inside a function) or for type hints only: a circle means two modules that each need the
other, i.e. one thing split in two (issue 21 found three: the run-directory guard and the
resume checks, the report's builder and its pages, the toy data and the callbacks' plots)."""

from __future__ import annotations

import ast
from pathlib import Path

import ganlab

SRC = Path(ganlab.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for file in SRC.rglob("*.py"):
        parts = file.relative_to(SRC.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def _imports(name: str, file: Path, modules: dict[str, Path]) -> set[str]:
    """The ganlab modules ``name`` imports anywhere in its code, for typing only too (a
    circle there is the same coupling), the packages above them included (importing ``a.b``
    runs ``a/__init__.py``)."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.update(
                f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                for a in node.names
            )
    with_parents = set()
    for module in found:
        parts = module.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    return {m for m in with_parents if m in modules and m != name and not name.startswith(m + ".")}


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph[todo.pop()] - seen:
            seen.add(w)
            todo.append(w)
    return seen


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach one another through imports (more than one each)."""
    reach = {v: _reach(graph, v) for v in graph}
    groups = {tuple(sorted(w for w in reach[v] if v in reach[w])) for v in graph if v in reach[v]}
    return sorted(list(g) for g in groups)


def test_no_module_imports_one_that_imports_it_back():
    modules = _modules()
    graph = {name: _imports(name, file, modules) for name, file in modules.items()}
    assert graph["ganlab.guard"] >= {"ganlab.resume", "ganlab.rundir"}  # the graph is read
    assert _circles(graph) == []


def test_a_circle_is_found():
    """The check itself: a made-up circle of three modules is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
