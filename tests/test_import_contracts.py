"""The no_cycles import contract (tests/import_contracts.py) that nox -s lint runs with lint-imports."""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest

from .import_contracts import cycles


def _package(root: Path, name: str, files: dict[str, str]) -> grimp.ImportGraph:
    """Write package ``name`` under ``root`` and build its import graph (no cache)."""
    for relative, text in files.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return grimp.build_graph(name, cache_dir=None)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path for throwaway packages."""
    # grimp finds packages on sys.path (it never imports them).
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    return tmp_path


def test_acyclic_package_has_no_cycles(root: Path) -> None:
    """A package whose modules only import downwards has none."""
    graph = _package(
        root,
        "cyc_ok",
        {
            "__init__.py": "from ._high import High as High\n",
            "_high.py": "from ._low import low\nclass High: ...\n",
            "_low.py": "def low() -> None: ...\n",
        },
    )
    assert cycles(graph) == []


def test_cycle_through_a_package_init_is_found(root: Path) -> None:
    """A function-level import of the package's own __init__ closes a cycle (acyclic_siblings misses it)."""
    graph = _package(
        root,
        "cyc_init",
        {
            "__init__.py": "from ._low import low as low\n",
            "_low.py": "def low() -> None:\n    import cyc_init\n",
        },
    )
    assert cycles(graph) == [["cyc_init", "cyc_init._low", "cyc_init"]]


def test_type_checking_cycle_is_found(root: Path) -> None:
    """An import under TYPE_CHECKING counts: two modules importing each other are one cycle."""
    graph = _package(
        root,
        "cyc_tc",
        {
            "__init__.py": "",
            "_a.py": "from ._b import B\nclass A: ...\n",
            "_b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from ._a import A\n"
                "class B: ...\n"
            ),
        },
    )
    assert cycles(graph) == [["cyc_tc._a", "cyc_tc._b", "cyc_tc._a"]]


def test_one_cycle_per_tangle(root: Path) -> None:
    """Two separate tangles give two cycles; a longer loop is reported through all its modules."""
    graph = _package(
        root,
        "cyc_two",
        {
            "__init__.py": "",
            "_a.py": "from . import _b\n",
            "_b.py": "from . import _c\n",
            "_c.py": "from . import _a\n",
            "_x.py": "from . import _y\n",
            "_y.py": "from . import _x\n",
        },
    )
    assert cycles(graph) == [
        ["cyc_two._a", "cyc_two._b", "cyc_two._c", "cyc_two._a"],
        ["cyc_two._x", "cyc_two._y", "cyc_two._x"],
    ]
