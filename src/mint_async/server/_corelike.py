"""What the request helpers below the core use of it: :class:`CoreLike`.

:class:`~._core.ServerCore` builds the executor (which encodes results with
:mod:`._result_encoding`), so the helpers that accept requests (:mod:`._sequenced`,
:mod:`._bodies`) may not import it back, not even for type checking: a lower
layer never imports a higher one. They take a ``CoreLike`` instead, and
``ServerCore`` is one structurally (the handlers pass theirs; the type
checkers hold it to this shape).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._config import ServerConfig
    from ._executor import Executor
    from ._futures import FutureRecord, FutureRegistry
    from ._http import Response
    from ._state import ServerState
    from ._store import CheckpointStore
    from .backends import Backend

__all__ = ["CoreLike"]


class CoreLike(Protocol):
    """The parts of the server core that accepting a request needs (see the module docstring)."""

    # Read-only here (properties): the helpers never rebind them, and ServerCore's
    # plain attributes satisfy a read-only member.
    @property
    def config(self) -> ServerConfig:
        """The server's configuration."""
        ...

    @property
    def state(self) -> ServerState:
        """Registries and counters."""
        ...

    @property
    def futures(self) -> FutureRegistry:
        """Records of accepted requests."""
        ...

    @property
    def store(self) -> CheckpointStore | None:
        """The checkpoint store while running, else None."""
        ...

    def require_running(self) -> tuple[Backend[Any, Any], CheckpointStore, Executor]:
        """The backend, store and executor; 503 before start-up completed."""
        ...

    def promise(self, rec_or_id: FutureRecord | str, *, model_id: str | None = None) -> Response:
        """The submission's answer (or a dropped connection, when that fault fires)."""
        ...
