"""Opening a mint_async ``ServiceClient`` (a session) on the compat runtime's loop."""

from __future__ import annotations

import weakref
from typing import Any

from .._service import ServiceClient as AsyncServiceClient
from ._runtime import Runtime, runtime

__all__ = ["Session"]


def _close(rt: Runtime, cm: Any) -> None:
    if not rt.closed:
        try:
            cm.__exit__(None, None, None)
        except Exception:  # noqa: BLE001 - closing at exit must not raise
            return


class Session:
    """An open async ServiceClient on the runtime; ``close()`` (or garbage collection) ends it."""

    def __init__(self, **settings: Any) -> None:
        inner = AsyncServiceClient(**settings)
        rt = runtime()
        cm = rt.portal.wrap_async_context_manager(inner)
        cm.__enter__()
        self.inner = inner
        self._finalizer = weakref.finalize(self, _close, rt, cm)

    def close(self) -> None:
        """End the session (idempotent)."""
        self._finalizer()
