"""What a pipeline hands back: one :class:`Handle` per request, and :class:`PipelineStatistics`."""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio

from ._exceptions import InvalidInputError
from ._futures import APIFuture

__all__ = ["Handle", "PipelineStatistics"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineStatistics:
    """An immutable snapshot of a pipeline's state (``pipe.statistics()``)."""

    window: int
    """Current in-flight limit (adapts between min_in_flight and max_in_flight)."""
    max_in_flight: int
    in_flight: int
    waiting: int
    """Callers blocked in submit() by backpressure."""
    in_flight_bytes: int
    max_in_flight_bytes: int
    submitted: int
    completed: int
    """Handles done: successes, failures and cancellations."""
    failed: int
    cancelled: int
    """Requests cancelled before their result arrived (by leaving the block, fail_fast,
    or a cancelled submit); their handles raise ClientClosedError."""
    retries: int
    """HTTP-level retries of submissions (all causes)."""
    rate_limited: int
    """429 answers seen."""
    window_decreases: int
    latency_p50: float | None
    latency_p90: float | None
    latency_p99: float | None
    latency_mean: float | None
    """Seconds from submit() to the result."""


class Handle(Generic[T]):
    """One request in a pipeline: awaitable; ``request_id`` is known before it is sent."""

    def __init__(self, index: int, *, request_id: str | None, tag: object, nbytes: int) -> None:
        self.index: int = index
        """Position in submission order."""
        self._request_id = request_id
        self._future: APIFuture[Any] | None = None
        self.tag: object = tag
        """Whatever the caller attached at submit()."""
        self.nbytes: int = nbytes
        self.submitted_at: float = time.monotonic()
        self.completed_at: float | None = None
        # A pipeline keeps every handle until it closes: a done handle holds only its
        # outcome (not its future, nor an Event unless someone waited), so that
        # thousands of them cost the garbage collector little.
        self._done = False
        self._event: anyio.Event | None = None
        self._value: T | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"Handle(index={self.index}, request_id={self.request_id!r}, {state})"

    @property
    def request_id(self) -> str | None:
        """The server's id of the current attempt (``<session>:<seq_id>`` for samples).

        A sample the server lost (410) is resubmitted with a new seq_id; this
        follows it. ``None`` for a training call split into several requests.
        """
        if self._future is not None:
            return self._future.request_id
        return self._request_id

    def attach(self, future: APIFuture[Any]) -> None:
        """Follow ``future`` for ``request_id`` (called by the pipeline that owns the handle)."""
        self._future = future

    def done(self) -> bool:
        """Whether the result (or error) is known."""
        return self._done

    @property
    def latency(self) -> float | None:
        """Seconds from submit() to completion, once done."""
        return None if self.completed_at is None else self.completed_at - self.submitted_at

    def exception(self) -> BaseException | None:
        """The error, if the request failed (None while pending or on success)."""
        return self._error

    def result(self) -> T:
        """The result of a completed request (raises its error; InvalidInputError if pending)."""
        if not self.done():
            msg = f"request {self.index} is not done yet; await the handle"
            raise InvalidInputError(msg)
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    async def wait(self) -> T:
        """Wait for the result (or raise the request's error)."""
        if not self._done:
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()
        else:
            await anyio.lowlevel.checkpoint()
        return self.result()

    def __await__(self) -> Generator[Any, None, T]:
        return self.wait().__await__()

    def set_outcome(self, value: T | None, error: BaseException | None) -> None:
        """Record the result or error (called by the pipeline that owns the handle)."""
        self._value, self._error = value, error
        self.completed_at = time.monotonic()
        self._done = True
        if self._future is not None:
            self._request_id = self._future.request_id
            self._future = None
        event, self._event = self._event, None
        if event is not None:
            event.set()
