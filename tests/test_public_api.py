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
    code = (
        "import sys, mint_async, mint_async.types, mint_async._codec; "
        "[getattr(mint_async, name) for name in mint_async.__all__]; "  # the lazy names too
        "print('asyncio' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", ["mint_async", "mint_async.sync"])
def test_heavy_optional_imports_stay_lazy(module: str) -> None:
    """Importing the package or its sync facade imports neither transformers nor torch (nor asyncio)."""
    heavy = ("asyncio", "transformers", "torch", "tokenizers")
    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_import_mint_async_leaves_the_client_stack_lazy() -> None:
    """``import mint_async`` loads settings and errors only; naming a client loads the rest."""
    lazy = (
        "httpx",
        "anyio",
        "numpy",
        "msgspec",
        "google.protobuf",
        "mint_async.types",
        "mint_async._transport",
        "mint_async._service",
        "mint_async._binary",
    )
    code = (
        "import sys, mint_async; "
        f"print(sorted(m for m in {lazy!r} if m in sys.modules)); "
        "from mint_async import ServiceClient; "
        f"print(sorted(m for m in {lazy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    before, after = out.stdout.strip().splitlines()
    assert before == "[]"
    assert "'httpx'" in after and "'mint_async._service'" in after


def test_lazy_names_resolve_like_eager_ones() -> None:
    """Every lazily loaded name is the object its module defines, and unknown names still fail."""
    from mint_async._sampling import SamplingClient
    from mint_async._service import ServiceClient

    assert mint_async.ServiceClient is ServiceClient
    assert mint_async.SamplingClient is SamplingClient
    assert mint_async.OperationFuture is mint_async.APIFuture
    assert mint_async.types is types
    assert set(mint_async.__all__) <= set(dir(mint_async))
    with pytest.raises(AttributeError):
        _ = mint_async.NoSuchName  # type: ignore[attr-defined]
