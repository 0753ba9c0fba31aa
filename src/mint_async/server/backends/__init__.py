"""Backends of the local server: the interface, and a registry of named factories.

``synthetic`` (numpy, always available) is built in; other backends register a
factory under a name (``mint-async serve --backend <name>``)::

    from mint_async.server.backends import BackendOptions, register_backend

    def make_torch_backend(options: BackendOptions) -> Backend[Any, Any]: ...

    register_backend("torch", make_torch_backend)

A factory is called once per server start, in a worker thread (it may load
files). ``torch`` is looked up lazily in ``mint_async.server.backends.torch``
(its module registers itself on import) so the torch extra stays optional.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._base import Backend as Backend
from ._base import CheckpointKind as CheckpointKind
from ._base import ExecutionPolicy as ExecutionPolicy
from ._base import ModelSpec as ModelSpec
from ._base import SampleSpec as SampleSpec

__all__ = [
    "Backend",
    "BackendFactory",
    "BackendOptions",
    "CheckpointKind",
    "ExecutionPolicy",
    "ModelSpec",
    "SampleSpec",
    "available_backends",
    "create_backend",
    "register_backend",
]


@dataclass(frozen=True, kw_only=True)
class BackendOptions:
    """What the server tells a backend factory."""

    seed: int = 0
    model_names: tuple[str, ...] | None = None
    """Base models to serve; ``None`` lets the backend choose its defaults."""


BackendFactory = Callable[[BackendOptions], Backend[Any, Any]]
"""Builds a backend (called once per server start, in a worker thread)."""

_FACTORIES: dict[str, BackendFactory] = {}
_LAZY_MODULES = {"torch": "mint_async.server.backends.torch"}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``factory`` available as ``--backend name`` (replacing any earlier one)."""
    _FACTORIES[name] = factory


def available_backends() -> list[str]:
    """Names of the registered backends (plus lazily importable ones)."""
    return sorted({*_FACTORIES, *_LAZY_MODULES})


def create_backend(name: str, options: BackendOptions) -> Backend[Any, Any]:
    """Build the backend registered as ``name``; ValueError for unknown names."""
    if name not in _FACTORIES and name in _LAZY_MODULES:
        try:
            importlib.import_module(_LAZY_MODULES[name])
        except ImportError as exc:
            msg = f"backend {name!r} is not installed ({exc}); try `pip install mint-async[{name}]`"
            raise ValueError(msg) from exc
    factory = _FACTORIES.get(name)
    if factory is None:
        msg = f"unknown backend {name!r}; available: {available_backends()}"
        raise ValueError(msg)
    return factory(options)


def _synthetic(options: BackendOptions) -> Backend[Any, Any]:
    from ._tiny_tokenizer import ensure_tiny_tokenizer  # noqa: PLC0415 - lazy: builds files
    from .synthetic import DEFAULT_MODELS, SyntheticBackend  # noqa: PLC0415

    return SyntheticBackend(
        tokenizer_dir=ensure_tiny_tokenizer(),
        model_names=options.model_names or DEFAULT_MODELS,
        seed=options.seed,
    )


register_backend("synthetic", _synthetic)
