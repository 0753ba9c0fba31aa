"""Pipelines: many requests in flight at once, with backpressure and an adaptive window.

``async with sampling_client.pipeline(max_in_flight=512) as pipe:`` — each
``await pipe.submit(...)`` returns a handle as soon as the request may go (it
blocks only while the pipeline is full), the request is sent and its result
polled in the pipeline's task group, and results come out of
``pipe.as_completed()``, ``pipe.in_order()`` or by awaiting a handle.

The window adapts (AIMD): a 429 or a paused queue state halves it (at most once
per generation of in-flight requests, as TCP does), each success grows it by
``1/window``, never beyond ``max_in_flight`` nor below ``min_in_flight``. A byte
budget bounds the estimated size of what is in flight.

One failure does not cancel the rest unless ``fail_fast=True``. Leaving the
``async with`` block — normally, by an exception or by cancellation — cancels
whatever is still outstanding and stops its polls: consume results inside it.
A cancelled request's handle ends with ``ClientClosedError`` (never pending
forever, never a success).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, Self, TypeVar

import anyio
import anyio.abc

from . import types as t
from ._chunking import estimate_bytes, estimate_input_bytes
from ._context import submission_retry_hook
from ._exceptions import ClientClosedError, InvalidInputError
from ._futures import APIFuture, QueueStateObserver, errors_in

if TYPE_CHECKING:
    from ._sampling import SamplingClient
    from ._training import TrainingClient

__all__ = ["Handle", "PipelineStatistics", "SamplePipeline", "TrainingPipeline"]

logger = logging.getLogger("mint_async")

T = TypeVar("T")

_LATENCY_SAMPLES: Final = 100_000


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
        self._done = anyio.Event()
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
        return self._done.is_set()

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
        await self._done.wait()
        return self.result()

    def __await__(self) -> Generator[Any, None, T]:
        return self.wait().__await__()

    def set_outcome(self, value: T | None, error: BaseException | None) -> None:
        """Record the result or error (called by the pipeline that owns the handle)."""
        self._value, self._error = value, error
        self.completed_at = time.monotonic()
        self._done.set()


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
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _fits(self, nbytes: int) -> bool:
        if self.in_flight == 0:
            return True  # always admit one, however large
        return self.in_flight < int(self.size) and self.bytes + nbytes <= self.max_bytes

    async def acquire(self, nbytes: int) -> None:
        self.waiting += 1
        try:
            while not self._fits(nbytes):
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


class _QueueStateSource(Protocol):
    """A client whose queue-state changes a pipeline follows while it is open."""

    def on_queue_state_change(self, observer: QueueStateObserver) -> None: ...
    def remove_queue_state_observer(self, observer: QueueStateObserver) -> None: ...


class _Pipeline(Generic[T]):
    """What sample and training pipelines share: the window, the task group, the results."""

    def __init__(
        self,
        observed: _QueueStateSource,
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
        self._changed = anyio.Event()
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
        # Paused queue states shrink the window (429s do through _on_retry).
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
        self._changed.set()
        self._changed = anyio.Event()

    def _new_handle(self, *, request_id: str | None, tag: object, nbytes: int) -> Handle[T]:
        if self._closed_for_submissions:
            msg = "this pipeline was closed for submissions"
            raise ClientClosedError(msg)
        handle: Handle[T] = Handle(
            len(self._handles), request_id=request_id, tag=tag, nbytes=nbytes
        )
        return handle

    def _on_retry(self, handle: Handle[T]) -> Callable[[int | None], None]:
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
            await self._changed.wait()

    async def in_order(self, *, until_closed: bool = False) -> AsyncIterator[Handle[T]]:
        """Handles in submission order, each once it is done (same ending rule as as_completed)."""
        cursor = 0
        while True:
            while cursor < len(self._handles):
                handle = self._handles[cursor]
                while not handle.done():
                    if self._state != "open":
                        return
                    await self._changed.wait()
                cursor += 1
                yield handle
            if self._window.waiting == 0 and (not until_closed or self._closed_for_submissions):
                return
            if self._state != "open":
                return
            await self._changed.wait()

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


class SamplePipeline(_Pipeline[t.SampleResponse]):
    """A pipeline of sample requests. Create it with ``SamplingClient.pipeline(...)``.

    Example::

        async with sc.pipeline(max_in_flight=512) as pipe:
            for prompt in prompts:
                await pipe.submit(prompt, 8, params, tag=prompt)
            async for handle in pipe.as_completed():
                use(handle.tag, handle.result())
    """

    def __init__(self, client: SamplingClient, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._client = client

    async def submit(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        *,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        tag: object = None,
    ) -> Handle[t.SampleResponse]:
        """Queue a sample request; blocks only while the pipeline is full.

        The returned handle's ``request_id`` (``<sampling_session_id>:<seq_id>``) is
        known before the request is sent.
        """
        request = self._client.build_request(
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
        )
        nbytes = estimate_input_bytes(prompt)
        handle = self._new_handle(
            request_id=self._client.request_id_for(request.seq_id or 0), tag=tag, nbytes=nbytes
        )
        await self._admit(handle)

        async def job() -> APIFuture[t.SampleResponse]:
            from ._sampling import SampleFuture  # noqa: PLC0415 - import cycle

            inner = await self._client.post_request(request, on_retry=self._on_retry(handle))
            fut = SampleFuture(self._client, request, inner, on_retry=self._on_retry(handle))
            handle.attach(fut)  # request_id follows resubmissions after a 410
            return fut

        self._task_group().start_soon(self._run, handle, job)
        return handle


class TrainingPipeline(_Pipeline[Any]):
    """Training operations queued back to back (in seq order), results awaited later.

    Each call submits in the caller's task — so seq_ids follow call order — and
    blocks only while the pipeline is full; the pipeline polls the results.
    Create it with ``TrainingClient.pipeline(...)``.

    Example::

        async with tc.pipeline(max_in_flight=8) as pipe:
            for batch in batches:
                fb = await pipe.forward_backward(batch, "cross_entropy")
                await pipe.optim_step(types.AdamParams(learning_rate=1e-4))
            async for handle in pipe.in_order():
                print(handle.tag, handle.result())
    """

    def __init__(self, client: TrainingClient, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._client = client

    async def _op(
        self, tag: object, nbytes: int, submit: Callable[[], Awaitable[APIFuture[Any]]]
    ) -> Handle[Any]:
        handle = self._new_handle(request_id=None, tag=tag, nbytes=nbytes)
        await self._admit(handle)
        hook = submission_retry_hook.set(self._on_retry(handle))  # 429s shrink the window
        try:
            fut = await submit()
        except Exception as exc:
            self._finish(handle, None, exc)
            raise
        except BaseException:
            # Cancelled mid-submit. Once its seq_id was taken the submission itself
            # completed (shielded, see _ordering), so the server may run it; but its
            # result is not collected and it must not count as a success.
            self._cancel(handle, "its submit() was cancelled; the server may still run it")
            raise
        finally:
            submission_retry_hook.reset(hook)
        handle.attach(fut)

        async def job() -> APIFuture[Any]:
            return fut

        self._task_group().start_soon(self._run, handle, job)
        return handle

    async def forward_backward(
        self,
        data: list[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
        *,
        tag: object = "forward_backward",
    ) -> Handle[t.ForwardBackwardOutput]:
        """Submit a forward_backward now (in order); its result arrives on the handle."""
        nbytes = sum(estimate_bytes(d) for d in data)
        return await self._op(
            tag, nbytes, lambda: self._client.forward_backward(data, loss_fn, loss_fn_config)
        )

    async def forward(
        self,
        data: list[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
        *,
        tag: object = "forward",
    ) -> Handle[t.ForwardBackwardOutput]:
        """Submit a forward pass now (in order)."""
        nbytes = sum(estimate_bytes(d) for d in data)
        return await self._op(
            tag, nbytes, lambda: self._client.forward(data, loss_fn, loss_fn_config)
        )

    async def optim_step(
        self, adam_params: t.AdamParams | None = None, *, tag: object = "optim_step"
    ) -> Handle[t.OptimStepResponse]:
        """Submit an optimizer step now (in order)."""
        return await self._op(tag, 0, lambda: self._client.optim_step(adam_params))

    async def save_state(
        self, name: str, *, tag: object = "save_state"
    ) -> Handle[t.SaveWeightsResponse]:
        """Submit a training checkpoint save now (in order)."""
        return await self._op(tag, 0, lambda: self._client.save_state(name))

    async def save_weights_for_sampler(
        self, name: str, *, tag: object = "save_weights_for_sampler"
    ) -> Handle[t.SaveWeightsForSamplerResponse]:
        """Submit a sampler checkpoint save now (in order)."""
        return await self._op(tag, 0, lambda: self._client.save_weights_for_sampler(name))
