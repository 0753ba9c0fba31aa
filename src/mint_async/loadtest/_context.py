"""Timing one server request: submit, accept, result — what every workload's operation uses.

:class:`OpContext` wraps the client's own calls (``SamplingClient.submit``,
``TrainingClient.forward_backward``, ...). Each request is bounded by the
run's ``request_timeout`` when one is set (an expired request is an error,
``Timeout``; without one no cancel scope is spent per request: the run's own
deadlines bound everything), and
counted exactly once: completed, failed, or cancelled (a run's drain deadline,
or an operation that gave up on it after an earlier failure).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Generic, TypeVar

import anyio

from .._futures import APIFuture
from .._sampling import SampleFuture
from .._training import ForwardBackwardFuture
from ._recorder import KindStats, Recorder, Timeline

__all__ = ["Live", "OpContext", "Pending"]

T = TypeVar("T")


class Live:
    """What the whole run shares right now: requests in flight, and the timeline."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.in_flight = 0
        self.peak_in_flight = 0


class Pending(Generic[T]):
    """A submitted request whose result has not been collected yet."""

    def __init__(self, stats: KindStats, started: float, deadline: float) -> None:
        self.stats = stats
        self.started = started
        self.deadline = deadline
        self.future: APIFuture[T] | None = None
        self.finished = False


class OpContext:
    """Records the requests of one operation into a phase's :class:`Recorder`."""

    def __init__(self, recorder: Recorder, live: Live, *, request_timeout: float | None) -> None:
        self.recorder = recorder
        self._live = live
        self._timeout = request_timeout
        self.recorded: BaseException | None = None
        """The last error already counted (so the operation does not count it again)."""

    def _bounded(self, deadline: float) -> AbstractContextManager[object]:
        """The request's timeout scope (none without a request_timeout: the hot path stays lean)."""
        if self._timeout is None:
            return nullcontext()
        return anyio.fail_after(max(0.0, deadline - time.perf_counter()))

    def _pending(self, kind: str) -> Pending[Any]:
        stats, started = self._begin(kind)
        timeout = math.inf if self._timeout is None else self._timeout
        return Pending(stats, started, started + timeout)

    def on_retry(self, status: int | None) -> None:
        """Count a retried submission (the observer given to ``reporting_retries``)."""
        self.recorder.retry(status)

    def _begin(self, kind: str) -> tuple[KindStats, float]:
        live = self._live
        live.in_flight += 1
        live.peak_in_flight = max(live.peak_in_flight, live.in_flight)
        return self.recorder.kind(kind), time.perf_counter()

    def _end(
        self, pending: Pending[Any], error: BaseException | None, *, cancelled: bool = False
    ) -> None:
        """Count the request once, whatever way it ended."""
        if pending.finished:
            return
        pending.finished = True
        self._live.in_flight -= 1
        stats, fut = pending.stats, pending.future
        if isinstance(fut, SampleFuture):
            stats.accepted += fut.resubmits  # each resubmission is a new server request
        if fut is not None:
            stats.polls[fut.total_polls] += 1
        if cancelled or isinstance(error, anyio.get_cancelled_exc_class()):
            stats.cancelled += 1
        elif error is None:
            stats.completed += 1
            stats.time_to_result.record(time.perf_counter() - pending.started)
            self._live.timeline.finished(ok=True)
        else:
            stats.failed += 1
            self.recorder.error(error)
            self.recorded = error
            self._live.timeline.finished(ok=False)

    async def submit(
        self,
        kind: str,
        send: Callable[[], Awaitable[APIFuture[T]]],
        *,
        input_tokens: int = 0,
        training_tokens: int = 0,
    ) -> Pending[T]:
        """Send one request (``send`` returns once the server accepted it); raises its error."""
        pending: Pending[T] = self._pending(kind)
        try:
            with self._bounded(pending.deadline):
                fut = await send()
        except BaseException as exc:
            self._end(pending, exc)
            raise
        self._accepted(pending, fut, input_tokens, training_tokens)
        return pending

    @staticmethod
    def _accepted(
        pending: Pending[T], fut: APIFuture[T], input_tokens: int, training_tokens: int
    ) -> None:
        stats = pending.stats
        pending.future = fut
        stats.submit.record(time.perf_counter() - pending.started)
        stats.accepted += len(fut.parts) if isinstance(fut, ForwardBackwardFuture) else 1
        stats.input_tokens += input_tokens
        stats.training_tokens += training_tokens

    async def result(self, pending: Pending[T]) -> T:
        """Wait for a submitted request's result (within its deadline); raises its error."""
        assert pending.future is not None
        try:
            with self._bounded(pending.deadline):
                value = await pending.future
        except BaseException as exc:
            self._end(pending, exc)
            raise
        self._end(pending, None)
        return value

    def abandon(self, pending: Pending[Any]) -> None:
        """Count a request whose result the operation will not collect (as cancelled)."""
        self._end(pending, None, cancelled=True)

    async def request(
        self,
        kind: str,
        send: Callable[[], Awaitable[APIFuture[T]]],
        *,
        input_tokens: int = 0,
        training_tokens: int = 0,
    ) -> T:
        """Submit and wait: one whole request (one timeout scope, the hot path)."""
        pending: Pending[T] = self._pending(kind)
        try:
            with self._bounded(pending.deadline):
                fut = await send()
                self._accepted(pending, fut, input_tokens, training_tokens)
                value = await fut
        except BaseException as exc:
            self._end(pending, exc)
            raise
        self._end(pending, None)
        return value

    async def call(self, kind: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A composite call (e.g. a weight sync) timed as one request of ``kind``.

        Its duration counts as time to result; it has no separate submit latency.
        """
        pending: Pending[T] = self._pending(kind)
        try:
            with self._bounded(pending.deadline):
                value = await fn()
        except BaseException as exc:
            self._end(pending, exc)
            raise
        pending.stats.accepted += 1
        self._end(pending, None)
        return value

    def output_tokens(self, kind: str, n: int) -> None:
        """Count tokens a request generated."""
        self.recorder.kind(kind).output_tokens += n
