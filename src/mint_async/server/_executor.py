"""Running accepted requests: capacity, simulated latency, injected failures, backend calls.

Every execution goes through :meth:`Executor.run`, which

1. waits for a capacity slot (the record reports ``paused_capacity`` meanwhile),
2. sleeps the configured latency for the operation (holding the slot, as real
   compute would),
3. fails the request instead of executing it when the ``error_result`` fault
   fires,
4. counts the execution (per request id, for exactly-once tests),
5. awaits the work — whose blocking parts run inline or in worker threads:
   compute follows the backend's :class:`ExecutionPolicy`, checkpoint I/O
   always runs in a thread — and
6. stores the encoded answer (or ``{"error", "category"}``) in the record —
   for forward/forward_backward and sample results on a server that answers
   them as protobuf, the protobuf form (see :mod:`._result_encoding`).

Work is an async callable so that multi-step requests (load a reference
checkpoint in an I/O thread, then compute) are one unit; it uses
:meth:`Executor.call` / :meth:`Executor.compute_encoded` for blocking parts.

``InvalidInputError`` from the work fails the request with category ``user``;
any other exception with ``server`` (and is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import anyio
import anyio.abc
import anyio.to_thread

from mint_async import _codec
from mint_async._exceptions import InvalidInputError

from ._faults import FaultInjector
from ._futures import Encoded, FutureRecord, FutureRegistry, Phase
from ._latency import LatencyModel
from ._result_encoding import encode_result
from ._state import ServerState, Session
from .backends import Backend

__all__ = ["Executor", "Work"]

T = TypeVar("T")

Work = Callable[[], Awaitable[object]]
"""A request's work: returns a wire Struct, pre-encoded JSON bytes, or :class:`Encoded`."""

logger = logging.getLogger("mint_async.server")

_IO_THREADS: Final = 4


def _describe(exc: Exception) -> str:
    """A server failure's message for the client: an OSError without its file names.

    File names are paths in the server's data directory, which are none of the
    client's business (the log keeps them).
    """
    if isinstance(exc, OSError) and exc.strerror:
        errno = f"[Errno {exc.errno}] " if exc.errno is not None else ""
        return f"{type(exc).__name__}: {errno}{exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _encode_in_thread(work: Callable[[], object], binary: bool) -> Encoded:
    return encode_result(work(), binary=binary)


class Executor:
    """Executes work for future records (see the module docstring)."""

    def __init__(
        self,
        *,
        backend: Backend[Any, Any],
        futures: FutureRegistry,
        state: ServerState,
        faults: FaultInjector,
        latency: LatencyModel,
        capacity: int | None,
        binary_results: bool = False,
    ) -> None:
        self._backend = backend
        self._futures = futures
        self._state = state
        self._faults = faults
        self._latency = latency
        self._capacity = anyio.CapacityLimiter(capacity) if capacity is not None else None
        self._binary = binary_results
        policy = backend.execution
        self._threaded = policy.threaded
        self._compute = anyio.CapacityLimiter(policy.max_concurrency)
        self._io = anyio.CapacityLimiter(_IO_THREADS)
        self._task_group: anyio.abc.TaskGroup | None = None
        self.queued_samples = 0
        """Samples waiting for a capacity slot (for 429 backpressure)."""

    def attach(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """The task group background work runs in (``None`` when the server stops)."""
        self._task_group = task_group

    def spawn(self, session: Session | None, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` in the background, cancellable with its session."""
        if self._task_group is None:
            msg = "the server is not running"
            raise RuntimeError(msg)
        self._task_group.start_soon(self._scoped, session, fn)

    @staticmethod
    async def _scoped(session: Session | None, fn: Callable[[], Awaitable[None]]) -> None:
        if session is None:
            await fn()
            return
        with anyio.CancelScope() as scope:
            session.scopes.add(scope)
            try:
                await fn()
            finally:
                session.scopes.discard(scope)

    async def call(self, fn: Callable[[], T], *, io: bool = False, offload: bool = False) -> T:
        """Run blocking ``fn`` where it belongs: inline, in a compute thread, or in an I/O thread.

        ``offload``: a large request (see ``RequestLimits.inline_work``) takes a compute
        thread even on an inline backend, so the event loop keeps answering meanwhile.
        """
        if io:
            return await anyio.to_thread.run_sync(fn, limiter=self._io)
        if self._threaded or offload:
            return await anyio.to_thread.run_sync(fn, limiter=self._compute)
        return fn()

    async def compute_encoded(self, fn: Callable[[], object], *, offload: bool = False) -> Encoded:
        """Run backend compute ``fn`` and encode its result for the wire (in the same thread)."""
        if self._threaded or offload:
            return await anyio.to_thread.run_sync(
                _encode_in_thread, fn, self._binary, limiter=self._compute
            )
        return encode_result(fn(), binary=self._binary)

    def runs_inline(self, op: str) -> bool:
        """Whether ``op`` can run right in the submitting request.

        True when nothing could make it wait or yield (unlimited capacity, no
        configured latency, an inline backend): the answer is then ready before
        the promise goes out, which saves a task, a held poll and a wake-up per
        request. The client cannot tell the difference.
        """
        return self._capacity is None and not self._threaded and self._latency.is_zero(op)

    def submit(
        self,
        session: Session | None,
        rec: FutureRecord,
        op: str,
        work: Work,
        *,
        offload: bool = False,
    ) -> Awaitable[None] | None:
        """Start ``work``: an awaitable to run it now (see :meth:`runs_inline`), or ``None`` once spawned.

        ``offload`` work (a large request) is always spawned: its submission answers at once.
        """
        if self.runs_inline(op) and not offload:
            return self.run(rec, op, work)
        self.spawn(session, lambda: self.run(rec, op, work))
        return None

    async def run(self, rec: FutureRecord, op: str, work: Work) -> None:
        """Execute ``work`` for ``rec`` (see the module docstring) and store its answer."""
        if rec.finished:
            return  # cancelled (by its session or the client) before it got a turn
        capacity = self._capacity
        if capacity is None:
            await self._execute(rec, op, work)
            return
        if capacity.available_tokens >= 1:
            # A free slot is taken at once: the record never reads as queued (an awaited
            # acquire yields even then, and a poll in that instant would see paused_capacity).
            # Checked, not tried: anyio 4.4 (an earlier floor) raises trio's own WouldBlock on trio.
            capacity.acquire_nowait()
        else:
            sample = op == "sample"
            rec.phase = Phase.QUEUED
            if sample:
                self.queued_samples += 1
            try:
                await capacity.acquire()
            finally:
                if sample:
                    self.queued_samples -= 1
        try:
            if not rec.finished:
                await self._execute(rec, op, work)
        finally:
            capacity.release()

    async def _execute(self, rec: FutureRecord, op: str, work: Work) -> None:
        rec.phase = Phase.RUNNING
        delay = self._latency.delay(op)
        if delay > 0:
            await anyio.sleep(delay)
        if self._faults.fires("error_result"):
            category = self._faults.config.error_category
            self._futures.fail(rec, f"injected fault: {op} failed", category)
            return
        self._state.count_execution(rec.request_id, op)
        try:
            value = await work()
            payload = value if isinstance(value, bytes | Encoded) else _codec.encode(value)
        except InvalidInputError as exc:
            self._futures.fail(rec, str(exc), "user")
        except Exception as exc:
            logger.exception("request %s failed", rec.request_id)
            self._futures.fail(rec, _describe(exc), "server")
        else:
            self._futures.complete(rec, payload)
