"""A custom import-linter contract: no import cycle anywhere in the package.

import-linter's ``acyclic_siblings`` looks for cycles among the children of
each package, with every child's descendants taken together. A cycle that runs
through a package's own ``__init__`` (``types._base`` importing
``mint_async.types``, which imports ``types._base``) is not among siblings, so
it passes. This contract looks at the whole graph — package ``__init__``
modules, ``TYPE_CHECKING`` and function-level imports included, as grimp
builds it — and reports every strongly connected component with one cycle
through it.

Registered in pyproject.toml (``contract_types``); ``lint-imports`` puts the
working directory on ``sys.path``, so it runs from the repository root (where
``tests`` is a package). Tested by ``tests/test_import_contracts.py``.
"""

from __future__ import annotations

import grimp
from importlinter.application import output
from importlinter.domain.contract import Contract, ContractCheck

__all__ = ["NoCyclesContract", "cycles"]


def _components(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    successors = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(successors):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(successors[node]):
                work.append((node, i + 1))
                nxt = successors[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _cycle_in(graph: grimp.ImportGraph, component: list[str]) -> list[str]:
    """One cycle through the component's first module, as ``a -> ... -> a``."""
    start = component[0]
    members = set(component)
    # The shortest way back to start from any module it imports inside the component.
    best: list[str] | None = None
    for nxt in sorted(graph.find_modules_directly_imported_by(start) & members):
        path = graph.find_shortest_chain(importer=nxt, imported=start)
        if path is not None and (best is None or len(path) < len(best)):
            best = list(path)
    return [start, *(best or [start])]


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """One cycle per strongly connected component of the graph (empty: the graph is acyclic)."""
    return [_cycle_in(graph, component) for component in _components(graph)]


class NoCyclesContract(Contract):
    """Kept when the whole import graph of the root package has no cycle."""

    type_name = "no_cycles"

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        """Look for cycles in the whole graph."""
        found = cycles(graph)
        return ContractCheck(kept=not found, warnings=None, metadata={"cycles": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """Print one cycle per tangle of modules."""
        found: list[list[str]] = check.metadata["cycles"]
        for cycle in found:
            output.print_error(" -> ".join(cycle))
            output.new_line()

    def __repr__(self) -> str:
        return f"NoCyclesContract({self.name!r})"
