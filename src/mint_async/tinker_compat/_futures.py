"""tinker's futures: awaitable *and* ``.result()``-able, from any thread or event loop.

``APIFuture`` wraps a ``concurrent.futures.Future`` completed on the compat
runtime's loop. ``await fut`` (or ``await fut.result_async()``) waits without
blocking the caller's loop; ``fut.result()`` blocks the calling thread, as
tinker's does (tinker logs a warning when that thread runs an event loop;
this layer lets it, and refuses only on its own loop thread, where it would
wait forever). ``ClientFuture`` is the future of a client returned by
``create_lora_training_client`` and friends; like tinker's
``Backcompat*ClientFuture`` it also forwards attribute access to the client
(deprecated by tinker, with a ``FutureWarning``).
"""

from __future__ import annotations

import concurrent.futures
import warnings
from collections.abc import Generator
from typing import Any, Generic, TypeVar

from ._runtime import on_runtime_thread, wait

T = TypeVar("T")
C = TypeVar("C")

__all__ = ["APIFuture", "AwaitableConcurrentFuture", "ClientFuture", "completed"]


class APIFuture(Generic[T]):
    """The result of an operation, to ``await`` or to ``.result()``.

    Example::

        fut = training_client.forward_backward(batch, "cross_entropy")
        out = await fut          # in async code
        out = fut.result()       # in blocking code
    """

    def __init__(self, future: concurrent.futures.Future[T]) -> None:
        self._future = future

    def __repr__(self) -> str:
        return f"{type(self).__name__}(done={self._future.done()})"

    def result(self, timeout: float | None = None) -> T:
        """Block until the result is known (``TimeoutError`` after ``timeout`` seconds)."""
        if on_runtime_thread() and not self._future.done():
            msg = "result() on the tinker_compat event loop would wait on itself forever; await the future"
            raise RuntimeError(msg)
        return self._future.result(timeout)

    async def result_async(self, timeout: float | None = None) -> T:
        """Wait for the result without blocking the caller's event loop."""
        return await wait(self._future, timeout)

    def future(self) -> concurrent.futures.Future[T]:
        """The ``concurrent.futures.Future`` behind this one (cancelling it cancels the operation)."""
        return self._future

    def done(self) -> bool:
        """Whether the result is known (never blocks)."""
        return self._future.done()

    async def coroutine(self) -> T:
        """This future as a coroutine (for ``asyncio.create_task`` and the like)."""
        return await self.result_async()

    def __await__(self) -> Generator[Any, None, T]:
        return self.result_async().__await__()


AwaitableConcurrentFuture = APIFuture
"""tinker's name for the concrete future class."""


def completed(value: T) -> APIFuture[T]:
    """A future that already holds ``value``."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    future.set_result(value)
    return APIFuture(future)


class ClientFuture(APIFuture[C]):
    """The future of a new client; reading a client attribute from it waits for the client.

    ``await`` it or call ``.result()`` to get the client (tinker 0.38's way);
    using it as the client directly still works but warns, as in tinker.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        warnings.warn(
            f"reading `.{name}` from the future of a client is deprecated (as in tinker 0.38); "
            "call .result() on the future, or await it, to get the client first",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(self.result(), name)
