"""The queue state a server reports for a client's requests, and who is told when it changes.

While a request waits, ``retrieve_future`` answers ``try_again`` (or 408) with a
``queue_state`` (protocol §5.5): ``active``, ``paused_capacity`` or
``paused_rate_limit``. The poll loop reports each to its client's
:class:`QueueStateMonitor`, which keeps an immutable :class:`QueueStatus`,
calls the observers on every change and warns (at most once a minute) while
requests are paused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from . import types as t

__all__ = ["QueueStateMonitor", "QueueStateObserver", "QueueStatus"]

logger = logging.getLogger("mint_async")

QueueStateObserver = Callable[[t.QueueState, "str | None"], None]
"""Called with ``(queue_state, reason)`` whenever a client's queue state changes."""

_PAUSE_LOG_INTERVAL: Final = 60.0
_DEFAULT_REASONS: Final[dict[str, str]] = {
    "paused_capacity": "the backend is running short on capacity, please wait",
    "paused_rate_limit": "a concurrency or rate limit was hit",
}


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """An immutable snapshot of a client's queue state."""

    state: t.QueueState
    reason: str | None
    changed_at: float
    """``time.monotonic()`` of the last change."""


class QueueStateMonitor:
    """Tracks the queue state the server reports for one client's requests.

    Observers are called on every change; paused states are logged as warnings
    at most once a minute.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._status = QueueStatus("active", None, time.monotonic())
        self._observers: list[QueueStateObserver] = []
        self._last_log = -_PAUSE_LOG_INTERVAL

    def add_observer(self, observer: QueueStateObserver) -> None:
        """Call ``observer(state, reason)`` on every queue-state change."""
        self._observers.append(observer)

    def remove_observer(self, observer: QueueStateObserver) -> None:
        """Stop calling ``observer``."""
        self._observers.remove(observer)

    def status(self) -> QueueStatus:
        """The current state (immutable snapshot)."""
        return self._status

    def report(self, state: str, reason: str | None) -> None:
        """Record a state reported by the server (unknown strings count as ``unknown``)."""
        normalised: t.QueueState = (
            state if state in ("active", "paused_capacity", "paused_rate_limit") else "unknown"  # type: ignore[assignment]
        )
        if normalised == "unknown" and not reason:
            return
        now = time.monotonic()
        if normalised.startswith("paused") and now - self._last_log >= _PAUSE_LOG_INTERVAL:
            self._last_log = now
            logger.warning(
                "%s: requests are queued (%s): %s",
                self._name,
                normalised,
                reason or _DEFAULT_REASONS.get(normalised, ""),
            )
        if (normalised, reason) == (self._status.state, self._status.reason):
            return
        self._status = QueueStatus(normalised, reason, now)
        for observer in list(self._observers):
            observer(normalised, reason)
