"""Third-party warnings inside a backend: logged once, never raised, never printed.

A backend calls into libraries we do not control (torch, transformers). Their
warnings — a deprecation in the next release, say — are about *our* server's
code, not about the request: they must not fail it (under ``-W error`` or
pytest's ``filterwarnings = error`` a warning is an exception, which would reach
the client as ``RequestFailedError: FutureWarning: ...``) nor land on the
terminal of the person running ``mint-async serve``. :func:`contain_warnings`
records them instead and logs each distinct one once, at DEBUG, on the
``mint_async.server`` logger; ``nox -s tests_latest`` is where new ones are
meant to be noticed (its tests check that the torch backend emits none).

Python's warning filters are process-wide (before 3.14), so the recording
context is serialised by a lock: two backend threads never swap each other's
filters. The torch backend runs compute one call at a time anyway
(``ExecutionPolicy(max_concurrency=1)``), so the lock costs nothing there. A
warning another thread raises in that window is recorded (and logged) too —
the price of process-wide filters, and never a lost request.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["contain_warnings", "reported_warnings"]

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("mint_async.server")

# Re-entrant: a contained method may call another one.
_LOCK = threading.RLock()
_reported: set[tuple[str, str, str, int]] = set()


def _report(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        key = (w.category.__name__, str(w.message), w.filename, w.lineno)
        if key in _reported:
            continue
        _reported.add(key)
        logger.debug(
            "backend warning (contained): %s: %s (%s:%d)", key[0], key[1], w.filename, w.lineno
        )


def reported_warnings() -> list[tuple[str, str]]:
    """``(category, message)`` of every distinct warning contained so far (for tests and debugging)."""
    with _LOCK:
        return [(category, message) for category, message, _, _ in sorted(_reported)]


def contain_warnings(fn: Callable[P, T]) -> Callable[P, T]:
    """Run ``fn`` with every warning it emits recorded and logged once (see the module docstring)."""

    @functools.wraps(fn)
    def contained(*args: P.args, **kwargs: P.kwargs) -> T:
        with _LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return fn(*args, **kwargs)
            finally:
                # Inside the lock, outside nothing else: the list is ours alone.
                _report(caught)

    return contained
