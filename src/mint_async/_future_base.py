"""APIFuture, the awaitable handle every submission returns, and the futures built from others.

A future is resolved by whichever task awaits it (no background task outlives a
call): the first awaiter runs :meth:`APIFuture._resolve`, later ones wait for
it, and if that task is cancelled the next awaiter takes over. Subclasses say
how a result is produced: already known (:class:`DoneFuture`), derived from
another future (:class:`MapFuture`), combined from several awaited
concurrently (:class:`GatherFuture`) or polled from the server
(:class:`~mint_async._polling.PollingFuture`).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Generic, TypeVar

import anyio

from ._exceptions import FutureTimeoutError

__all__ = ["APIFuture", "DoneFuture", "GatherFuture", "MapFuture", "errors_in"]

T = TypeVar("T")
S = TypeVar("S")


class APIFuture(abc.ABC, Generic[T]):
    """An awaitable handle to the result of a server-side operation.

    ``await fut`` (or ``await fut.result(timeout=...)``) returns the typed result
    or raises. Awaiting twice returns the same result without another request.

    Example::

        fut = await training_client.forward_backward(batch, "cross_entropy")
        out = await fut                  # ForwardBackwardOutput
    """

    def __init__(self) -> None:
        self._has_value = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._running = False
        """Whether an awaiter is resolving the future right now."""
        self._wakeup: anyio.Event | None = None
        """Set when the resolving awaiter stops; made only once a second awaiter waits
        (an Event per future is a measurable share of a small request's CPU)."""

    @property
    def request_id(self) -> str | None:
        """The server's request id, when this future stands for one request."""
        return None

    @property
    def total_polls(self) -> int:
        """``retrieve_future`` calls made for this result so far, over all its requests."""
        return 0

    def done(self) -> bool:
        """Whether the outcome (result or error) is known."""
        return self._has_value or self._error is not None

    @abc.abstractmethod
    async def _resolve(self) -> T:
        """Produce the result (called by at most one awaiter at a time)."""

    async def result(self, timeout: float | None = None) -> T:
        """Wait for the result; ``timeout`` (seconds) raises FutureTimeoutError when exceeded.

        A timeout or a cancellation stops this wait's polling cleanly; the future
        stays usable and a later ``result()`` resumes polling.
        """
        if timeout is None:
            return await self._wait()
        with anyio.move_on_after(timeout) as scope:
            return await self._wait()
        assert scope.cancelled_caught
        msg = f"no result within {timeout} s" + (
            f" for request {self.request_id}" if self.request_id else ""
        )
        raise FutureTimeoutError(msg)

    def __await__(self) -> Generator[Any, None, T]:
        return self.result().__await__()

    async def _wait(self) -> T:
        while True:
            if self._error is not None:
                raise self._error
            if self._has_value:
                return self._value  # type: ignore[return-value]
            if self._running:
                if self._wakeup is None:
                    self._wakeup = anyio.Event()
                await self._wakeup.wait()
                continue
            self._running = True
            try:
                value = await self._resolve()
            except Exception as exc:
                self._error = exc
                raise
            else:
                self._value, self._has_value = value, True
                return value
            finally:
                # Wake the other awaiters: they return the outcome, or (if this
                # task was cancelled before one existed) take over the polling.
                self._running = False
                wakeup, self._wakeup = self._wakeup, None
                if wakeup is not None:
                    wakeup.set()


class DoneFuture(APIFuture[T]):
    """A future whose value is already known."""

    def __init__(self, value: T) -> None:
        super().__init__()
        self._value, self._has_value = value, True

    async def _resolve(self) -> T:
        assert self._value is not None
        return self._value


class MapFuture(APIFuture[T], Generic[S, T]):
    """The result of another future, transformed by an async function."""

    def __init__(self, inner: APIFuture[S], fn: Callable[[S], Awaitable[T]]) -> None:
        super().__init__()
        self._inner = inner
        self._fn = fn

    @property
    def request_id(self) -> str | None:
        """The inner future's request id."""
        return self._inner.request_id

    @property
    def total_polls(self) -> int:
        """The inner future's polls."""
        return self._inner.total_polls

    async def _resolve(self) -> T:
        return await self._fn(await self._inner)


class GatherFuture(APIFuture[T], Generic[S, T]):
    """Several futures awaited concurrently, their results combined into one."""

    def __init__(self, parts: Sequence[APIFuture[S]], combine: Callable[[list[S]], T]) -> None:
        super().__init__()
        self._parts = list(parts)
        self._combine = combine

    @property
    def parts(self) -> list[APIFuture[S]]:
        """The futures being gathered, in order."""
        return list(self._parts)

    @property
    def request_id(self) -> str | None:
        """The request id of the only part, if there is exactly one."""
        return self._parts[0].request_id if len(self._parts) == 1 else None

    @property
    def total_polls(self) -> int:
        """The polls of every part."""
        return sum(part.total_polls for part in self._parts)

    async def _resolve(self) -> T:
        results: list[Any] = [None] * len(self._parts)

        async def fetch(i: int, part: APIFuture[S]) -> None:
            results[i] = await part

        if len(self._parts) == 1:
            results[0] = await self._parts[0]
        else:
            try:
                async with anyio.create_task_group() as tg:
                    for i, part in enumerate(self._parts):
                        tg.start_soon(fetch, i, part)
            except BaseExceptionGroup as group:
                # A failing part cancels the others; the caller gets that error itself.
                errors = errors_in(group)
                raise (errors[0] if errors else group.exceptions[0]) from None
        return self._combine(results)


def errors_in(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The non-cancellation exceptions in a (nested) exception group, in order."""
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out += errors_in(exc)  # pyright: ignore[reportUnknownArgumentType]
        elif not isinstance(exc, anyio.get_cancelled_exc_class()):
            out.append(exc)
    return out
