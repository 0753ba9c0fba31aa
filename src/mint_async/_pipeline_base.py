"""The machinery both pipelines share: the adaptive window, the task group, the results.

It knows clients only as :class:`QueueStateSource` (and each pipeline as the
Protocol of the client it drives, in :mod:`mint_async._pipeline`): pipelines
sit below the clients, which create them with their ``.pipeline()`` factories.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Final, Generic, Protocol, Self, TypeVar

import anyio
import anyio.abc

from ._context import RetryObserver
from ._exceptions import ClientClosedError, InvalidInputError
from ._futures import APIFuture, QueueStateObserver, errors_in
from ._pipeline_handle import Handle, PipelineStatistics

if TYPE_CHECKING:
    from . import types as t

__all__ = ["Pipeline", "QueueStateSource"]

logger = logging.getLogger("mint_async")

T = TypeVar("T")

_LATENCY_SAMPLES: Final = 100_000


class _Window:
    """An in-flight limit that can shrink and grow while callers wait on it."""

    def __init__(self, *, max_in_flight: int, min_in_flight: int, max_bytes: int) -> None:
        self.max = max_in_flight
        self.min = min_in_flight
        self.size = float(max_in_flight)
        self.max_bytes = max_bytes
        self.in_flight = 0
        self.bytes = 0
        self.waiting = 0
        self.decreases = 0
        self._boundary = -1
        """Requests submitted before this index don't shrink the window again."""
        self._changed: anyio.Event | None = None
        """Set on the next change; made only when someone waits (most changes have no waiter)."""

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def _fits(self, nbytes: int) -> bool:
        if self.in_flight == 0:
            return True  # always admit one, however large
        return self.in_flight < int(self.size) and self.bytes + nbytes <= self.max_bytes

    async def acquire(self, nbytes: int) -> None:
        self.waiting += 1
        try:
            while not self._fits(nbytes):
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        self.bytes += nbytes

    def release(self, nbytes: int) -> None:
        self.in_flight -= 1
        self.bytes -= nbytes
        self._notify()

    def grow(self) -> None:
        if self.size < self.max:
            self.size = min(float(self.max), self.size + 1.0 / self.size)
            self._notify()

    def shrink(self, index: int, next_index: int) -> None:
        """Halve the window, once per generation (requests submitted before the last halving)."""
        if index < self._boundary:
            return
        self._boundary = next_index
        self.size = max(float(self.min), self.size / 2)
        self.decreases += 1
        logger.debug("pipeline window shrinks to %d", int(self.size))


class QueueStateSource(Protocol):
    """A client whose queue-state changes a pipeline follows while it is open."""

    def on_queue_state_change(self, observer: QueueStateObserver) -> None: ...
    def remove_queue_state_observer(self, observer: QueueStateObserver) -> None: ...


class Pipeline(Generic[T]):
    """What sample and training pipelines share: the window, the task group, the results."""

    def __init__(
        self,
        observed: QueueStateSource,
        *,
        max_in_flight: int,
        max_in_flight_bytes: int,
        min_in_flight: int,
        fail_fast: bool,
    ) -> None:
        if not 1 <= min_in_flight <= max_in_flight:
            msg = f"need 1 <= min_in_flight <= max_in_flight, got {min_in_flight}, {max_in_flight}"
            raise InvalidInputError(msg)
        if max_in_flight_bytes < 1:
            msg = "max_in_flight_bytes must be positive"
            raise InvalidInputError(msg)
        self._window = _Window(
            max_in_flight=max_in_flight, min_in_flight=min_in_flight, max_bytes=max_in_flight_bytes
        )
        self._fail_fast = fail_fast
        self._observed = observed
        self._tg: anyio.abc.TaskGroup | None = None
        self._state = "new"
        self._handles: list[Handle[T]] = []
        self._completed: list[Handle[T]] = []
        self._closed_for_submissions = False
        self._changed: anyio.Event | None = None
        self._failed = 0
        self._cancelled = 0
        self._retries = 0
        self._rate_limited = 0
        self._latencies: list[float] = []

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            msg = "a pipeline cannot be reused; create a new one"
            raise ClientClosedError(msg)
        self._state = "open"
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        # Paused queue states shrink the window (429s do through _retry_observer).
        self._observed.on_queue_state_change(self._on_queue_state)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = "closed"
        tg, self._tg = self._tg, None
        if tg is None:
            return None
        self._observed.remove_queue_state_observer(self._on_queue_state)
        # Outstanding work is cancelled: its submissions and polls stop here.
        tg.cancel_scope.cancel()
        try:
            return await tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # With fail_fast the caller gets the first failure itself (several requests
            # may fail at once; the others are named in a note), not an ExceptionGroup.
            errors = errors_in(group)
            if not errors:
                raise
            first = errors[0]
            if len(errors) > 1:
                first.add_note(
                    f"({len(errors) - 1} more request(s) of the pipeline failed as well)"
                )
            raise first from None
        finally:
            self._wake()

    def _task_group(self) -> anyio.abc.TaskGroup:
        if self._state != "open" or self._tg is None:
            msg = "use the pipeline inside `async with` (it is not open)"
            raise ClientClosedError(msg)
        return self._tg

    def close(self) -> None:
        """Declare that no more requests will be submitted (ends ``until_closed`` iterations)."""
        self._closed_for_submissions = True
        self._wake()

    # -- bookkeeping ------------------------------------------------------------------

    def _wake(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def _wait_change(self) -> None:
        """Wait for the next :meth:`_wake` (the Event is made only when someone waits)."""
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _new_handle(self, *, request_id: str | None, tag: object, nbytes: int) -> Handle[T]:
        if self._closed_for_submissions:
            msg = "this pipeline was closed for submissions"
            raise ClientClosedError(msg)
        handle: Handle[T] = Handle(
            len(self._handles), request_id=request_id, tag=tag, nbytes=nbytes
        )
        return handle

    def _retry_observer(self, handle: Handle[T]) -> RetryObserver:
        """Counts the HTTP retries of ``handle``'s submission; a 429 shrinks the window."""

        def on_retry(status: int | None) -> None:
            self._retries += 1
            if status == 429:
                self._rate_limited += 1
                self._window.shrink(handle.index, len(self._handles))

        return on_retry

    def _on_queue_state(self, state: t.QueueState, reason: str | None) -> None:
        if state.startswith("paused"):
            self._window.shrink(len(self._handles) - 1, len(self._handles))

    async def _admit(self, handle: Handle[T]) -> None:
        """Wait for room (backpressure), then register the handle."""
        self._task_group()
        await self._window.acquire(handle.nbytes)
        handle.submitted_at = time.monotonic()
        self._handles.append(handle)

    def _finish(self, handle: Handle[T], value: T | None, error: BaseException | None) -> None:
        handle.set_outcome(value, error)
        self._window.release(handle.nbytes)
        if error is None:
            self._window.grow()
            if handle.latency is not None and len(self._latencies) < _LATENCY_SAMPLES:
                self._latencies.append(handle.latency)
        else:
            self._failed += 1
        self._completed.append(handle)
        self._wake()

    def _cancel(self, handle: Handle[T], why: str) -> None:
        """End a handle whose request was cancelled: an error, not a success (no growth)."""
        # Recorded as done so that awaiting the handle raises instead of hanging and
        # as_completed()/in_order() still end; counted apart from server failures.
        msg = f"request {handle.index} was cancelled before its result arrived ({why})"
        handle.set_outcome(None, ClientClosedError(msg))
        self._window.release(handle.nbytes)
        self._cancelled += 1
        self._completed.append(handle)
        self._wake()

    async def _run(self, handle: Handle[T], job: Callable[[], Awaitable[APIFuture[T]]]) -> None:
        try:
            value = await (await job())
        except Exception as exc:
            self._finish(handle, None, exc)
            if self._fail_fast:
                raise
        except BaseException:
            # Cancellation of the task group: the block was left or fail_fast fired.
            self._cancel(handle, "the pipeline was left or stopped by fail_fast")
            raise
        else:
            self._finish(handle, value, None)

    # -- results ---------------------------------------------------------------------

    async def as_completed(self, *, until_closed: bool = False) -> AsyncIterator[Handle[T]]:
        """Handles in completion order.

        Ends once every request submitted so far has been yielded — or, with
        ``until_closed=True`` (for a producer in another task), once ``close()``
        was called and everything submitted has been yielded.
        """
        cursor = 0
        while True:
            while cursor < len(self._completed):
                cursor += 1
                yield self._completed[cursor - 1]
            finished = cursor >= len(self._handles) and self._window.waiting == 0
            if finished and (not until_closed or self._closed_for_submissions):
                return
            if self._state != "open" and cursor >= len(self._completed):
                return
            await self._wait_change()

    async def in_order(self, *, until_closed: bool = False) -> AsyncIterator[Handle[T]]:
        """Handles in submission order, each once it is done (same ending rule as as_completed)."""
        cursor = 0
        while True:
            while cursor < len(self._handles):
                handle = self._handles[cursor]
                while not handle.done():
                    if self._state != "open":
                        return
                    await self._wait_change()
                cursor += 1
                yield handle
            if self._window.waiting == 0 and (not until_closed or self._closed_for_submissions):
                return
            if self._state != "open":
                return
            await self._wait_change()

    async def results(self) -> list[T]:
        """Every result so far, in submission order (raises the first error met)."""
        return [await h for h in list(self._handles)]

    def statistics(self) -> PipelineStatistics:
        """An immutable snapshot: window, in-flight counts and bytes, retries, latency percentiles."""
        lat = sorted(self._latencies)

        def pct(q: float) -> float | None:
            if not lat:
                return None
            return lat[min(len(lat) - 1, math.ceil(q * len(lat)) - 1)]

        w = self._window
        return PipelineStatistics(
            window=int(w.size),
            max_in_flight=w.max,
            in_flight=w.in_flight,
            waiting=w.waiting,
            in_flight_bytes=w.bytes,
            max_in_flight_bytes=w.max_bytes,
            submitted=len(self._handles),
            completed=len(self._completed),
            failed=self._failed,
            cancelled=self._cancelled,
            retries=self._retries,
            rate_limited=self._rate_limited,
            window_decreases=w.decreases,
            latency_p50=pct(0.50),
            latency_p90=pct(0.90),
            latency_p99=pct(0.99),
            latency_mean=(sum(lat) / len(lat)) if lat else None,
        )
