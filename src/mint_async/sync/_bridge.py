"""The bridge from the blocking twins to the async clients, and what the twins share.

:class:`Bridge` runs the async clients' methods on the portal's event loop and
owns the callback thread that queue-state observers run in; :class:`Twin` is
the base of every blocking client (``aio``, ``repr``); :class:`ObservedTwin`
adds the queue-state methods of the sampling and training clients.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal

from .. import types as t
from .._context import QueueStateObservable
from .._exceptions import ClientClosedError
from .._futures import QueueStateObserver, QueueStatus

__all__ = ["Bridge", "ObservedTwin", "Relay", "Twin"]

_logger = logging.getLogger("mint_async")

T = TypeVar("T")
P = ParamSpec("P")
A = TypeVar("A")
Observed = TypeVar("Observed", bound=QueueStateObservable)


class Bridge:
    """Runs the async clients' methods on the portal's loop; owns the callback thread."""

    def __init__(self, portal: BlockingPortal) -> None:
        self.portal = portal
        self.closed = False
        # Created on first use, on the loop thread (the only thread that dispatches).
        self._callbacks: ThreadPoolExecutor | None = None

    def _check_open(self) -> None:
        if self.closed:
            msg = "this ServiceClient is closed"
            raise ClientClosedError(msg)

    def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` on the portal's loop and return its result."""
        self._check_open()
        return self.portal.call(functools.partial(fn, *args, **kwargs))

    def run_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a plain function on the portal's loop (to touch state the loop owns)."""
        self._check_open()
        return self.portal.call(functools.partial(fn, *args, **kwargs))

    def dispatch(
        self, observer: QueueStateObserver, state: t.QueueState, reason: str | None
    ) -> None:
        """Hand one change to the callback thread; called on the loop, so it never raises."""
        if self.closed:
            return
        if self._callbacks is None:
            # One worker: observers see the changes in the order they happened.
            self._callbacks = ThreadPoolExecutor(1, thread_name_prefix="mint_async-callbacks")
        with contextlib.suppress(RuntimeError):  # shut down meanwhile: the change is dropped
            self._callbacks.submit(_run_observer, observer, state, reason)

    def shutdown_callbacks(self) -> None:
        """Stop taking callbacks; ones already queued still run (close() does not wait)."""
        if self._callbacks is not None:
            # wait=False: close() may be called from an observer, on the callback thread.
            self._callbacks.shutdown(wait=False)


def _run_observer(observer: QueueStateObserver, state: t.QueueState, reason: str | None) -> None:
    try:
        observer(state, reason)
    except Exception:
        _logger.exception("queue-state observer %r failed", observer)


class Relay:
    """The observer registered with the async client: forwards to the callback thread."""

    def __init__(self, bridge: Bridge, observer: QueueStateObserver) -> None:
        self.bridge = bridge
        self.observer = observer

    def __call__(self, state: t.QueueState, reason: str | None) -> None:
        self.bridge.dispatch(self.observer, state, reason)


class Twin(Generic[A]):
    """A blocking twin of the async client ``inner``: each method one call through the bridge."""

    def __init__(self, bridge: Bridge, inner: A) -> None:
        self._bridge = bridge
        self._inner = inner

    def __repr__(self) -> str:
        return f"sync.{self._inner!r}"

    @property
    def aio(self) -> A:
        """The async client underneath (for use on the portal's loop)."""
        return self._inner


class ObservedTwin(Twin[Observed]):
    """A twin whose queue-state observers run in the bridge's callback thread."""

    def __init__(self, bridge: Bridge, inner: Observed) -> None:
        super().__init__(bridge, inner)
        self._relays: list[Relay] = []

    def on_queue_state_change(self, observer: QueueStateObserver) -> None:
        """Call ``observer(state, reason)`` on each queue-state change, in the callback thread."""
        relay = Relay(self._bridge, observer)
        self._bridge.run_sync(self._inner.on_queue_state_change, relay)
        self._relays.append(relay)

    def remove_queue_state_observer(self, observer: QueueStateObserver) -> None:
        """Stop calling an observer added with :meth:`on_queue_state_change` (ValueError if absent)."""
        relay = next((r for r in self._relays if r.observer == observer), None)
        if relay is None:
            msg = f"{observer!r} is not an observer of this client"
            raise ValueError(msg)
        self._bridge.run_sync(self._inner.remove_queue_state_observer, relay)
        self._relays.remove(relay)

    def queue_status(self) -> QueueStatus:
        """The last queue state the server reported (an immutable snapshot; never blocks)."""
        return self._inner.queue_status()
