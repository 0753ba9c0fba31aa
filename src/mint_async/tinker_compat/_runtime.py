"""The event loop the compatibility clients run on, and waiting for its results from anywhere.

tinker runs every client of a process on one event loop in a helper thread;
so does this layer: one anyio ``BlockingPortal`` (asyncio) started on first
use and stopped at interpreter exit. A call such as ``forward_backward``
starts a task on that loop and returns at once with a
``concurrent.futures.Future``; :func:`wait` awaits such a future from any
other event loop (asyncio or trio) without blocking it, by asking the
future's done-callback to wake the waiting task on its own loop.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.from_thread import BlockingPortal, start_blocking_portal

T = TypeVar("T")

__all__ = ["Runtime", "on_runtime_thread", "runtime", "wait"]


class Runtime:
    """One portal thread running the async mint_async clients of every compat client."""

    def __init__(self) -> None:
        self._cm = start_blocking_portal("asyncio")
        self.portal: BlockingPortal = self._cm.__enter__()
        self.thread_id: int = self.portal.call(threading.get_ident)
        self.closed = False

    def spawn(self, fn: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Start ``fn(*args)`` on the loop; its future (cancelling it cancels the task)."""
        return self.portal.start_task_soon(fn, *args)

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and wait for it (not from the loop's own thread)."""
        if threading.get_ident() == self.thread_id:
            msg = "a blocking tinker_compat call on the client's own event loop would wait on itself forever"
            raise RuntimeError(msg)
        return self.portal.call(functools.partial(fn, *args))

    def close(self) -> None:
        """Stop the loop thread (tasks still running are cancelled)."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self._cm.__exit__(None, None, None)


_lock = threading.Lock()
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process's runtime, started on first use."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime.closed:
            _runtime = Runtime()
            atexit.register(_runtime.close)
        return _runtime


def on_runtime_thread() -> bool:
    """Whether the caller runs on the runtime's own loop thread."""
    current = _runtime
    return current is not None and not current.closed and threading.get_ident() == current.thread_id


async def wait(future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """Await ``future`` from the current event loop (asyncio or trio) without blocking it.

    ``timeout`` seconds at most (``TimeoutError``; the operation keeps running).
    """
    if not future.done():
        with anyio.fail_after(timeout):
            current_token = getattr(anyio.lowlevel, "current_token", None)
            if current_token is None:  # anyio < 4.11: wait in a worker thread
                await anyio.to_thread.run_sync(
                    functools.partial(concurrent.futures.wait, [future]), abandon_on_cancel=True
                )
            else:
                native: Any = current_token().native_token
                # asyncio's loop or trio's TrioToken: both run a callback soon, from any thread.
                schedule: Callable[[Callable[[], object]], object] = (
                    getattr(native, "call_soon_threadsafe", None) or native.run_sync_soon
                )
                event = anyio.Event()

                def wake(_: object) -> None:
                    with contextlib.suppress(RuntimeError):  # the waiter's loop has closed
                        schedule(event.set)

                future.add_done_callback(wake)
                await event.wait()
    return future.result()
