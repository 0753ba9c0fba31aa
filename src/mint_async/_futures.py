"""Futures: awaitable handles to server-side work — the futures layer's one import point.

The layer sits between the transport and the clients, in three modules:

* :mod:`._future_base` — :class:`APIFuture` (resolved by whichever task awaits it)
  and the futures built from others: :class:`DoneFuture`, :class:`MapFuture`,
  :class:`GatherFuture`;
* :mod:`._polling` — :class:`PollingFuture`, one request's result fetched with
  ``retrieve_future`` (the protocol §5.5 poll loop and its decision table);
* :mod:`._queue_state` — the queue state the server reports while a request
  waits (:class:`QueueStateMonitor`, :class:`QueueStatus`, :data:`QueueStateObserver`).

The clients import these names from here; each lives in the module named above.
"""

from __future__ import annotations

from ._future_base import APIFuture as APIFuture
from ._future_base import DoneFuture as DoneFuture
from ._future_base import GatherFuture as GatherFuture
from ._future_base import MapFuture as MapFuture
from ._future_base import errors_in as errors_in
from ._polling import MAX_SAME_BODY_RESUBMITS as MAX_SAME_BODY_RESUBMITS
from ._polling import PollingFuture as PollingFuture
from ._polling import PollSettings as PollSettings
from ._queue_state import QueueStateMonitor as QueueStateMonitor
from ._queue_state import QueueStateObserver as QueueStateObserver
from ._queue_state import QueueStatus as QueueStatus

__all__ = [
    "APIFuture",
    "DoneFuture",
    "GatherFuture",
    "MapFuture",
    "PollingFuture",
    "PollSettings",
    "QueueStateMonitor",
    "QueueStateObserver",
    "QueueStatus",
    "errors_in",
]
