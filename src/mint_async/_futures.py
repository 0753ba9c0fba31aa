"""Futures: awaitable handles to server-side work, and the ``retrieve_future`` poll loop.

A future is resolved by whichever task awaits it (no background task outlives a
call): the first awaiter polls, later ones wait for it, and if the polling task
is cancelled the next awaiter takes over. The poll loop follows protocol §5.5:

====================  ======================================================
answer                action
====================  ======================================================
200 try_again         report the queue state, re-poll at once (server long-polls) (*)
200 complete_metadata re-poll at once with ``allow_metadata_only=false``
200 ``{"error"}``     raise RequestFailedError(category)
200 result            decode and return it
408                   like try_again, queue state may be in the body (*); resets the 400 budget
read timeout          the server held the poll past our timeout: re-poll at once, and it
                      counts as an answer for the watchdog (our choice, see the loop)
5xx                   re-poll at once; after a few in a row, back off a little
429, connection error back off ``min(2**k, 30)`` s, re-poll (any other answer resets ``k``)
400                   re-poll up to 3 times, then raise
402                   billing pause (5 s steps within the window), then raise
410                   raise PromiseExpiredError (sampling resubmits, new seq_id)
anything else         raise the APIStatusError
====================  ======================================================

(*) A try_again/408 that came back within 50 ms was not held by the server;
re-polling at once would be a hot loop, so the loop first sleeps 0.05 s,
doubling per such answer in a row up to 0.25 s (1 s while paused).

A progress watchdog raises StuckRequestError when the server has not answered
a poll for ``stuck_timeout`` seconds; ``result(timeout=...)`` bounds one wait.
Every decision is logged at DEBUG with its reason (see ``log_decision``).
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import anyio
import orjson

from . import _codec
from . import types as t
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    DecodeError,
    FutureTimeoutError,
    RequestFailedError,
    StuckRequestError,
)
from ._retry import sleep as backoff_sleep
from ._transport import Response, Transport, is_read_timeout, log_decision, status_error

__all__ = [
    "APIFuture",
    "DoneFuture",
    "GatherFuture",
    "MapFuture",
    "PollingFuture",
    "QueueStateMonitor",
    "QueueStateObserver",
    "QueueStatus",
]

logger = logging.getLogger("mint_async")

T = TypeVar("T")
S = TypeVar("S")

QueueStateObserver = Callable[[t.QueueState, "str | None"], None]
"""Called with ``(queue_state, reason)`` whenever a client's queue state changes."""

_PAUSE_LOG_INTERVAL: Final = 60.0
_BAD_REQUEST_BUDGET: Final = 3
_HELD_ANSWER: Final = 0.05
"""A try_again/408 answered faster than this (seconds after sending) was not held by the server."""
_MAX_POLL_READ: Final = 300.0
"""The longest a poll waits for a held answer after read timeouts (its wait doubles up to it)."""
_UNHELD_FIRST: Final = 0.05
_UNHELD_CAP: Final = 0.25
_UNHELD_CAP_PAUSED: Final = 1.0
_PAUSED: Final = frozenset({"paused_capacity", "paused_rate_limit"})
MAX_RESUBMITS: Final = 5
"""How often a lost promise (410) is resubmitted before the error reaches the caller."""
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
        self._running: anyio.Event | None = None

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
            running = self._running
            if running is not None:
                await running.wait()
                continue
            running = self._running = anyio.Event()
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
                self._running = None
                running.set()


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


@dataclass(frozen=True, slots=True, kw_only=True)
class PollSettings:
    """Per-future polling knobs (from the client's config)."""

    retrieve_timeout: float = 45.0
    stuck_timeout: float | None = 600.0


class PollingFuture(APIFuture[T]):
    """The result of one submitted request, fetched with ``retrieve_future`` (protocol §5)."""

    def __init__(
        self,
        transport: Transport,
        promise: t.UntypedAPIFuture,
        result_type: type[T],
        *,
        request_type: str,
        settings: PollSettings,
        monitor: QueueStateMonitor | None = None,
        roundtrip: float | None = None,
        binary_decoder: Callable[[bytes], T] | None = None,
        resubmit: Callable[[], Awaitable[t.UntypedAPIFuture]] | None = None,
    ) -> None:
        super().__init__()
        self._resubmit = resubmit
        self.resubmits: int = 0
        """How often a lost promise (410) was recovered by resubmitting the same request."""
        self._transport = transport
        self._promise = promise
        self._result_type = result_type
        self._request_type = request_type
        self._settings = settings
        self._monitor = monitor
        self._roundtrip = roundtrip
        self._binary_decoder = binary_decoder
        self.polls: int = 0
        """How many ``retrieve_future`` requests this future made (for statistics)."""

    @property
    def request_id(self) -> str:
        """The server's id of the request."""
        return self._promise.request_id

    @property
    def total_polls(self) -> int:
        """Same as :attr:`polls` (one request)."""
        return self.polls

    @property
    def promise(self) -> t.UntypedAPIFuture:
        """What the submission returned."""
        return self._promise

    def __repr__(self) -> str:
        return f"PollingFuture(request_id={self.request_id!r}, type={self._request_type}, done={self.done()})"

    def _headers(self, iteration: int) -> dict[str, str]:
        headers = {
            "X-Tinker-Request-Iteration": str(iteration),
            "X-Tinker-Request-Type": self._request_type,
            "Accept": "application/x-protobuf, application/json"
            if self._binary_decoder is not None
            else "application/json",
        }
        if iteration == 0 and self._roundtrip is not None:
            headers["X-Tinker-Create-Promise-Roundtrip-Time"] = f"{self._roundtrip:.6f}"
        return headers

    def _queue_state(self, state: str, reason: str | None) -> None:
        if self._monitor is not None:
            self._monitor.report(state, reason)

    def _log(
        self, status: int | None, action: str, reason: str, delay: float | None = None
    ) -> None:
        log_decision(
            f"poll of {self.request_id}",
            attempt=self.polls,
            status=status,
            action=action,
            reason=reason,
            delay=delay,
        )

    async def _resolve(self) -> T:
        allow_metadata = True
        backoff = 0  # k of min(2**k, 30): consecutive 429s and connection errors
        bad_requests = 0
        server_errors = 0
        unheld = 0.0  # the last pacing sleep after an un-held try_again/408 (0: none)
        last_answer = time.monotonic()
        stuck = self._settings.stuck_timeout
        read_timeout = self._settings.retrieve_timeout
        while True:
            if stuck is not None and time.monotonic() - last_answer > stuck:
                msg = f"request {self.request_id}: no answer from the server for {stuck:.0f} s"
                raise StuckRequestError(msg)
            body = _codec.encode(
                t.FutureRetrieveRequest(
                    request_id=self.request_id, allow_metadata_only=allow_metadata
                )
            )
            sent = time.monotonic()
            try:
                resp = await self._transport.send_once(
                    "POST",
                    "api/v1/retrieve_future",
                    body=body,
                    headers=self._headers(self.polls),
                    traffic="retrieve",
                    timeout=self._poll_timeout(read_timeout, last_answer),
                )
            except APIConnectionError as exc:
                self.polls += 1
                if is_read_timeout(exc):
                    # Our choice (§5.5 treats a client timeout like a connection
                    # error): the request reached a server that held it longer
                    # than our read timeout. That is either a server that
                    # long-polls longer than we wait, or one that accepts and
                    # never answers; we cannot tell which from one poll. Backing
                    # off would only add latency, so re-poll at once, waiting
                    # twice as long (up to _MAX_POLL_READ): a live server's held
                    # answer then arrives and counts as progress, while a silent
                    # one keeps timing out and the stuck watchdog still ends it.
                    read_timeout = min(read_timeout * 2, max(read_timeout, _MAX_POLL_READ))
                    backoff, unheld = 0, 0.0
                    self._log(
                        None,
                        "repoll",
                        f"read timeout: held past our wait; now waiting {read_timeout:g} s",
                    )
                    continue
                delay = min(2.0**backoff, 30.0)
                backoff = min(backoff + 1, 8)
                self._log(None, "retry", f"connection error: {exc}", delay)
                await backoff_sleep(self._bounded(delay, last_answer))
                continue
            self.polls += 1
            status = resp.status_code
            held = time.monotonic() - sent >= _HELD_ANSWER
            if status != 429:
                backoff = 0  # any other answer proves the server reachable (as tinker does)
            if status == 200:
                last_answer, bad_requests, server_errors = time.monotonic(), 0, 0
                self._transport.end_billing_pause()
                outcome = self._decode(resp)
                if isinstance(outcome, t.TryAgainResponse):
                    self._queue_state(outcome.queue_state, outcome.queue_state_reason)
                    unheld = await self._pace(
                        status, held, unheld, outcome.queue_state, last_answer, "try_again"
                    )
                elif isinstance(outcome, t.CompleteMetadataResponse):
                    if not allow_metadata:
                        msg = f"request {self.request_id}: server answered metadata-only twice"
                        self._log(status, "raise", msg)
                        raise APIResponseValidationError(msg)
                    allow_metadata = False
                    self._log(status, "repoll", "complete_metadata: fetching the payload")
                elif isinstance(outcome, t.RequestFailedResponse):
                    self._log(
                        status,
                        "raise",
                        f"the request failed ({outcome.error_category}); never retried",
                    )
                    raise RequestFailedError(
                        outcome.error, category=outcome.error_category, request_id=self.request_id
                    )
                else:
                    self._queue_state("active", None)
                    result: T = outcome
                    return result
            elif status == 408:
                last_answer, bad_requests, server_errors = time.monotonic(), 0, 0
                state, reason = _queue_state_of(resp.content)
                if state is not None:
                    self._queue_state(state, reason)
                unheld = await self._pace(status, held, unheld, state, last_answer, "408")
            elif status >= 500:
                server_errors += 1
                if server_errors > 3:
                    # Protocol: re-poll at once; we add a small capped backoff so a
                    # server that fails fast is not hammered in a hot loop.
                    delay = min(0.05 * 2.0 ** min(server_errors - 3, 6), 2.0)
                    self._log(status, "retry", f"server error ({server_errors} in a row)", delay)
                    await backoff_sleep(self._bounded(delay, last_answer))
                else:
                    self._log(status, "repoll", f"server error ({server_errors} in a row)")
            elif status == 429:
                delay = min(2.0**backoff, 30.0)
                backoff = min(backoff + 1, 8)
                self._log(status, "retry", "rate limited", delay)
                await backoff_sleep(self._bounded(delay, last_answer))
            elif status == 400:
                bad_requests += 1
                if bad_requests > _BAD_REQUEST_BUDGET:
                    self._log(status, "raise", f"bad request, budget of {_BAD_REQUEST_BUDGET} used")
                    raise status_error(resp, request_id=self.request_id)
                self._log(
                    status, "repoll", f"bad request ({bad_requests} of {_BAD_REQUEST_BUDGET})"
                )
            elif status == 402:
                await self._transport.billing_pause(
                    resp, subject=f"poll of {self.request_id}", attempt=self.polls
                )
            elif status == 410 and self._resubmit is not None and self.resubmits < MAX_RESUBMITS:
                # The server lost the promise. The same body (same seq_id) is
                # resubmitted: a deduplicating server answers with the original
                # request, so the work still runs exactly once.
                self.resubmits += 1
                self._log(status, "resubmit", f"promise lost ({self.resubmits} of {MAX_RESUBMITS})")
                self._promise = await self._resubmit()
                allow_metadata = True
            else:
                self._log(status, "raise", f"status {status} is fatal while polling")
                raise status_error(resp, request_id=self.request_id)

    async def _pace(
        self,
        status: int,
        held: bool,
        previous: float,
        state: str | None,
        last_answer: float,
        what: str,
    ) -> float:
        """Re-poll after a try_again/408; returns the pacing delay used (0 after a held answer).

        §5.5 says "no sleep" because the server holds each poll. An answer that
        came back faster than _HELD_ANSWER was not held, and re-polling at once
        would be a hot loop: sleep 0.05 s, doubling per un-held answer in a row,
        up to 0.25 s (1 s while the queue is paused, when the result is far off).
        """
        label = f"{what} (queue_state={state})" if state else what
        if held:
            self._log(status, "repoll", f"{label} after a held poll")
            return 0.0
        cap = _UNHELD_CAP_PAUSED if state in _PAUSED else _UNHELD_CAP
        delay = min(max(previous * 2.0, _UNHELD_FIRST), cap)
        self._log(status, "retry", f"{label} answered without holding the poll", delay)
        await backoff_sleep(self._bounded(delay, last_answer))
        return delay

    def _poll_timeout(self, read_timeout: float, last_answer: float) -> float:
        """A poll's read timeout, cut so the poll ends by the stuck watchdog's deadline."""
        stuck = self._settings.stuck_timeout
        if stuck is None:
            return read_timeout
        return max(1e-3, min(read_timeout, stuck - (time.monotonic() - last_answer) + 0.01))

    def _bounded(self, delay: float, last_answer: float) -> float:
        """A backoff delay that never sleeps past the stuck watchdog."""
        stuck = self._settings.stuck_timeout
        if stuck is None:
            return delay
        return max(0.0, min(delay, stuck - (time.monotonic() - last_answer) + 0.01))

    def _decode(self, resp: Response) -> Any:
        if "application/x-protobuf" in resp.content_type and self._binary_decoder is not None:
            try:
                return self._binary_decoder(resp.content)
            except DecodeError as exc:
                msg = f"request {self.request_id}: undecodable binary result: {exc}"
                raise APIResponseValidationError(msg) from exc
        try:
            return _codec.decode_future_outcome(self._result_type, resp.content)
        except DecodeError as exc:
            msg = f"request {self.request_id}: invalid result: {exc}"
            raise APIResponseValidationError(msg) from exc


def errors_in(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The non-cancellation exceptions in a (nested) exception group, in order."""
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out += errors_in(exc)  # pyright: ignore[reportUnknownArgumentType]
        elif not isinstance(exc, anyio.get_cancelled_exc_class()):
            out.append(exc)
    return out


def _queue_state_of(content: bytes) -> tuple[str | None, str | None]:
    """``queue_state`` and reason from a 408 body, if it is JSON carrying them."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    state = body.get("queue_state")  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    reason = body.get("queue_state_reason")  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    return (
        state if isinstance(state, str) else None,
        reason if isinstance(reason, str) else None,
    )
