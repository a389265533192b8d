"""The shape of ``app/``: no import cycle (run time, lazy or type-checking) and no oversized file.

The graph is read from the source with ``ast``: every ``import`` counts, also those inside a
function or under ``if TYPE_CHECKING:``, so a cycle that only mypy or a late call would walk
into is caught here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
MAX_LINES = 450


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, base: Path) -> Iterator[str]:
    """Every module name an import statement in ``path`` may load (``from a import b``: a.b, a)."""
    name = module_name(path, base)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*parts, source] if source else parts)
            yield from (f"{source}.{alias.name}" for alias in node.names)
            yield source


def import_graph(root: Path = APP) -> dict[str, set[str]]:
    """Module → the ``app`` modules it imports."""
    files = {module_name(p, root.parent): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges = {target for target in imported_names(path, root.parent) if target in files}
        graph[name] = edges - {name}
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
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


def test_the_app_has_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    detail = [{m: sorted(graph[m] & set(c)) for m in c} for c in found]
    assert found == [], f"import cycles in app/: {detail}"


def test_the_cycle_finder_sees_a_cycle_through_a_type_checking_import(tmp_path: Path) -> None:
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from app.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import a\nB = 1\n"
    )
    (package / "c.py").write_text("def late() -> None:\n    from .a import B\n")
    graph = import_graph(package)
    assert cycles(graph) == [["app.a", "app.b"]]
    assert graph["app.c"] == {"app.a"}  # a function-level, relative import


def test_no_file_in_app_is_over_the_size_limit() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in APP.rglob("*.py")}
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}
