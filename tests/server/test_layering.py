"""The server package's layering: no import cycle among its modules, not even a type-only one."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import mint_async.server

_PACKAGE = "mint_async.server"
_SERVER_DIR = Path(mint_async.server.__file__).parent


def _within(module: str) -> str | None:
    """``module`` relative to the package (``""`` for the package itself); None outside it."""
    if module == _PACKAGE or module.startswith(f"{_PACKAGE}."):
        return module.removeprefix(_PACKAGE).lstrip(".")
    return None


def _imported(tree: ast.Module, modules: set[str]) -> set[str]:
    """Modules of the package (``__init__`` for the package itself) that ``tree`` imports anywhere."""
    found: set[str] = set()
    for node in ast.walk(tree):  # every statement: module level, TYPE_CHECKING blocks, functions
        if isinstance(node, ast.Import):
            for alias in node.names:
                relative = _within(alias.name)
                if relative is not None:
                    found.add(relative.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base: str | None = node.module or ""
            else:  # absolute (level 0) or from outside the package (level 2+)
                base = _within(node.module) if node.level == 0 and node.module else None
            if base:
                found.add(base.split(".")[0])
            elif base == "":  # `from . import _x, name`: submodules, or names of __init__
                found.update(alias.name if alias.name in modules else "" for alias in node.names)
    return {name or "__init__" for name in found} & modules


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Each module of ``package_dir`` (its ``*.py``) -> the other modules there it imports."""
    modules = {path.stem for path in package_dir.glob("*.py")}
    return {
        name: _imported(ast.parse((package_dir / f"{name}.py").read_text("utf-8")), modules)
        - {name}
        for name in modules
    }


def _cycle_from(
    node: str, graph: Mapping[str, set[str]], path: list[str], done: set[str]
) -> list[str] | None:
    """Depth-first from ``node`` along ``path``: a cycle found, as ``a -> ... -> a``, or None."""
    if node in path:
        return [*path[path.index(node) :], node]
    if node in done:
        return None
    path.append(node)
    for successor in sorted(graph[node]):
        cycle = _cycle_from(successor, graph, path, done)
        if cycle is not None:
            return cycle
    path.pop()
    done.add(node)
    return None


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (first module repeated at the end), or None."""
    done: set[str] = set()
    for node in sorted(graph):
        cycle = _cycle_from(node, graph, [], done)
        if cycle is not None:
            return cycle
    return None


def test_server_modules_import_no_cycle() -> None:
    """No import cycle among the server's modules, counting type-only and lazy imports."""
    graph = import_graph(_SERVER_DIR)
    assert "_core" in graph["_app"]  # the graph sees the package's own imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_check_sees_type_only_lazy_and_package_imports(tmp_path: Path) -> None:
    """The graph counts imports under TYPE_CHECKING, in functions, and of the package __init__."""
    (tmp_path / "__init__.py").write_text("from ._high import High as High\n")
    (tmp_path / "_high.py").write_text("from ._low import low\nclass High: ...\n")
    (tmp_path / "_low.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ._high import High\n"
        "def low() -> None:\n"
        "    from mint_async.server import _high\n"
        "    import mint_async.server\n"
    )
    graph = import_graph(tmp_path)
    assert graph == {"__init__": {"_high"}, "_high": {"_low"}, "_low": {"_high", "__init__"}}
    assert find_cycle(graph) == ["__init__", "_high", "_low", "__init__"]
