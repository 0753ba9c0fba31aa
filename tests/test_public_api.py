"""The public surface: __all__ is complete and importable; heavy optional imports stay lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mint_async
from mint_async import types


def test_all_names_exist() -> None:
    """Every name in __all__ (package and types) is importable."""
    for module in (mint_async, types):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_no_private_leaks_in_all() -> None:
    """__all__ lists public names only (and the dunder version)."""
    for module in (mint_async, types):
        assert all(not n.startswith("_") or n == "__version__" for n in module.__all__)


def test_types_all_lists_every_public_struct() -> None:
    """Every public class defined in mint_async.types is in its __all__."""
    public = {
        name
        for name, obj in vars(types).items()
        if isinstance(obj, type)
        and obj.__module__.startswith(types.__name__)
        and obj.__name__ == name
        and not name.startswith("_")
    }
    assert public <= set(types.__all__)


def test_client_import_graph_has_no_asyncio() -> None:
    """Importing the client package does not import asyncio (trio users pay nothing for it)."""
    code = "import sys, mint_async, mint_async.types, mint_async._codec; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", ["mint_async", "mint_async.sync"])
def test_heavy_optional_imports_stay_lazy(module: str) -> None:
    """Importing the package or its sync facade imports neither transformers nor torch (nor asyncio)."""
    heavy = ("asyncio", "transformers", "torch", "tokenizers")
    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
