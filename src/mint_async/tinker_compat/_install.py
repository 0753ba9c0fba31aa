"""``install()``: make ``import tinker`` (and its submodules) resolve to this layer.

A meta-path finder placed first on ``sys.meta_path`` answers ``tinker``,
``tinker.types`` (and every ``tinker.types.<module>``), ``tinker.lib`` and
``tinker.lib.public_interfaces`` (and its modules) with modules that re-export
:mod:`mint_async.tinker_compat` / :mod:`mint_async.tinker_compat.types`; other
``tinker.*`` modules are a clear ``ModuleNotFoundError``. It is explicit (the
user calls it), reversible (:func:`uninstall`), and refuses when the real
tinker SDK is already imported (its objects would not mix with these).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["install", "installed", "uninstall"]

_MARK = "__mint_async_tinker_compat__"
_PACKAGE = "mint_async.tinker_compat"
_TYPES = "mint_async.tinker_compat.types"


def _target(fullname: str) -> str | None:
    """The module that ``fullname`` (a ``tinker`` module name) stands for, if provided."""
    if fullname in ("tinker", "tinker.lib", "tinker.lib.public_interfaces"):
        return _PACKAGE
    if fullname.startswith("tinker.lib.public_interfaces."):
        return _PACKAGE
    if fullname == "tinker.types" or fullname.startswith("tinker.types."):
        return _TYPES
    return None


class _Alias(importlib.abc.Loader):
    """Creates a module named like tinker's that re-exports ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        target = importlib.import_module(self.target)
        module = ModuleType(spec.name, target.__doc__)
        module.__dict__.update(
            {k: v for k, v in vars(target).items() if not (k.startswith("__") and k.endswith("__"))}
        )
        if hasattr(target, "__all__"):
            module.__dict__["__all__"] = list(target.__all__)

        def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook
            return getattr(target, name)

        module.__dict__["__getattr__"] = __getattr__
        module.__dict__[_MARK] = True
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was filled in by :meth:`create_module`."""


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tinker" and not fullname.startswith("tinker."):
            return None
        aliased = _target(fullname)
        if aliased is None:
            msg = f"mint_async.tinker_compat does not provide {fullname} (install() maps tinker, tinker.types and tinker.lib.public_interfaces)"
            raise ModuleNotFoundError(msg, name=fullname)
        return importlib.util.spec_from_loader(fullname, _Alias(aliased), is_package=True)


_finder = _Finder()
_lock = threading.Lock()


def installed() -> bool:
    """Whether :func:`install` is in effect."""
    return _finder in sys.meta_path


def install() -> None:
    """Make ``import tinker`` resolve to :mod:`mint_async.tinker_compat` (idempotent).

    Call it before anything imports tinker. Raises ``RuntimeError`` if the real
    tinker SDK is already imported in this process.

    Example::

        import mint_async.tinker_compat
        mint_async.tinker_compat.install()
        import tinker                      # mint_async underneath
        from tinker_cookbook.supervised import train
    """
    with _lock:
        if _finder in sys.meta_path:
            return
        real = [
            name
            for name, module in list(sys.modules.items())
            if (name == "tinker" or name.startswith("tinker."))
            and not getattr(module, _MARK, False)
        ]
        if real:
            msg = (
                "the real tinker SDK is already imported in this process "
                f"({', '.join(sorted(real)[:3])}); call mint_async.tinker_compat.install() "
                "before anything imports tinker"
            )
            raise RuntimeError(msg)
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo :func:`install`: ``import tinker`` finds the real SDK (if installed) again.

    Modules that already did ``import tinker`` keep the objects they hold.
    """
    with _lock:
        while _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        for name, module in list(sys.modules.items()):
            if (name == "tinker" or name.startswith("tinker.")) and getattr(module, _MARK, False):
                del sys.modules[name]
