"""PollingFuture: the result of one submitted request, fetched with ``retrieve_future``.

The poll loop follows protocol §5.5:

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

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import orjson

from . import _codec
from . import types as t
from ._errors import is_read_timeout, log_decision, status_error
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    DecodeError,
    RequestFailedError,
    StuckRequestError,
)
from ._future_base import APIFuture
from ._queue_state import QueueStateMonitor
from ._retry import sleep as backoff_sleep
from ._transport import Response, Transport

__all__ = ["MAX_SAME_BODY_RESUBMITS", "PollSettings", "PollingFuture"]

T = TypeVar("T")

_BAD_REQUEST_BUDGET: Final = 3
_HELD_ANSWER: Final = 0.05
"""A try_again/408 answered faster than this (seconds after sending) was not held by the server."""
_MAX_POLL_READ: Final = 300.0
"""The longest a poll waits for a held answer after read timeouts (its wait doubles up to it)."""
_UNHELD_FIRST: Final = 0.05
_UNHELD_CAP: Final = 0.25
_UNHELD_CAP_PAUSED: Final = 1.0
_PAUSED: Final = frozenset({"paused_capacity", "paused_rate_limit"})
MAX_SAME_BODY_RESUBMITS: Final = 5
"""How often a lost promise (410) is resubmitted before the error reaches the caller."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PollSettings:
    """Per-future polling knobs (from the client's config)."""

    retrieve_timeout: float = 45.0
    stuck_timeout: float | None = 600.0


@dataclass(slots=True, kw_only=True)
class _PollState:
    """What one resolve carries from poll to poll (reset by each ``_resolve``)."""

    last_answer: float
    """``time.monotonic()`` of the last answer that proves progress, for the stuck watchdog."""
    read_timeout: float
    """How long the next poll waits for a held answer (doubles after read timeouts)."""
    allow_metadata: bool = True
    backoff: int = 0
    """k of min(2**k, 30): consecutive 429s and connection errors."""
    bad_requests: int = 0
    server_errors: int = 0
    unheld: float = 0.0
    """The last pacing sleep after an un-held try_again/408 (0: none)."""


@dataclass(frozen=True, slots=True)
class _Done(Generic[T]):
    """The result, once known (a result may itself be falsy, so it travels boxed)."""

    value: T


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
        """Poll until the outcome is known: one poll, then one decision per answer (table above)."""
        poll = _PollState(
            last_answer=time.monotonic(), read_timeout=self._settings.retrieve_timeout
        )
        while True:
            stuck = self._settings.stuck_timeout
            if stuck is not None and time.monotonic() - poll.last_answer > stuck:
                msg = f"request {self.request_id}: no answer from the server for {stuck:.0f} s"
                raise StuckRequestError(msg)
            sent = time.monotonic()
            try:
                resp = await self._poll_once(poll)
            except APIConnectionError as exc:
                self.polls += 1
                await self._after_failure(exc, poll)
                continue
            self.polls += 1
            held = time.monotonic() - sent >= _HELD_ANSWER
            if resp.status_code != 429:
                poll.backoff = 0  # any other answer proves the server reachable (as tinker does)
            if resp.status_code in (200, 408):
                poll.last_answer, poll.bad_requests, poll.server_errors = time.monotonic(), 0, 0
            if resp.status_code == 200:
                done = await self._after_ok(resp, held, poll)
                if done is not None:
                    return done.value
            else:
                await self._after_status(resp, held, poll)

    async def _poll_once(self, poll: _PollState) -> Response:
        """One ``retrieve_future`` request; its answer whatever the status, or a transport error."""
        body = _codec.encode(
            t.FutureRetrieveRequest(
                request_id=self.request_id, allow_metadata_only=poll.allow_metadata
            )
        )
        return await self._transport.send_once(
            "POST",
            "api/v1/retrieve_future",
            body=body,
            headers=self._headers(self.polls),
            traffic="retrieve",
            timeout=self._poll_timeout(poll.read_timeout, poll.last_answer),
        )

    async def _after_failure(self, exc: APIConnectionError, poll: _PollState) -> None:
        """No answer: a poll held past our wait re-polls at once, anything else backs off."""
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
            poll.read_timeout = min(poll.read_timeout * 2, max(poll.read_timeout, _MAX_POLL_READ))
            poll.backoff, poll.unheld = 0, 0.0
            self._log(
                None,
                "repoll",
                f"read timeout: held past our wait; now waiting {poll.read_timeout:g} s",
            )
            return
        delay = min(2.0**poll.backoff, 30.0)
        poll.backoff = min(poll.backoff + 1, 8)
        self._log(None, "retry", f"connection error: {exc}", delay)
        await backoff_sleep(self._bounded(delay, poll.last_answer))

    async def _after_ok(self, resp: Response, held: bool, poll: _PollState) -> _Done[T] | None:
        """A 200: the result (returned), a failure (raised), or a reason to poll again (None)."""
        status = resp.status_code
        self._transport.end_billing_pause()
        outcome = self._decode(resp)
        if isinstance(outcome, t.TryAgainResponse):
            self._queue_state(outcome.queue_state, outcome.queue_state_reason)
            poll.unheld = await self._pace(
                status, held, poll.unheld, outcome.queue_state, poll.last_answer, "try_again"
            )
            return None
        if isinstance(outcome, t.CompleteMetadataResponse):
            if not poll.allow_metadata:
                msg = f"request {self.request_id}: server answered metadata-only twice"
                self._log(status, "raise", msg)
                raise APIResponseValidationError(msg)
            poll.allow_metadata = False
            self._log(status, "repoll", "complete_metadata: fetching the payload")
            return None
        if isinstance(outcome, t.RequestFailedResponse):
            self._log(
                status, "raise", f"the request failed ({outcome.error_category}); never retried"
            )
            raise RequestFailedError(
                outcome.error, category=outcome.error_category, request_id=self.request_id
            )
        self._queue_state("active", None)
        result: T = outcome
        return _Done(result)

    async def _after_status(self, resp: Response, held: bool, poll: _PollState) -> None:
        """Any status but 200: wait as the table says before the next poll, or raise."""
        status = resp.status_code
        if status == 408:
            state, reason = _queue_state_of(resp.content)
            if state is not None:
                self._queue_state(state, reason)
            poll.unheld = await self._pace(
                status, held, poll.unheld, state, poll.last_answer, "408"
            )
        elif status >= 500:
            poll.server_errors += 1
            if poll.server_errors > 3:
                # Protocol: re-poll at once; we add a small capped backoff so a
                # server that fails fast is not hammered in a hot loop.
                delay = min(0.05 * 2.0 ** min(poll.server_errors - 3, 6), 2.0)
                self._log(status, "retry", f"server error ({poll.server_errors} in a row)", delay)
                await backoff_sleep(self._bounded(delay, poll.last_answer))
            else:
                self._log(status, "repoll", f"server error ({poll.server_errors} in a row)")
        elif status == 429:
            delay = min(2.0**poll.backoff, 30.0)
            poll.backoff = min(poll.backoff + 1, 8)
            self._log(status, "retry", "rate limited", delay)
            await backoff_sleep(self._bounded(delay, poll.last_answer))
        elif status == 400:
            poll.bad_requests += 1
            if poll.bad_requests > _BAD_REQUEST_BUDGET:
                self._log(status, "raise", f"bad request, budget of {_BAD_REQUEST_BUDGET} used")
                raise status_error(resp, request_id=self.request_id)
            self._log(
                status, "repoll", f"bad request ({poll.bad_requests} of {_BAD_REQUEST_BUDGET})"
            )
        elif status == 402:
            await self._transport.billing_pause(
                resp, subject=f"poll of {self.request_id}", attempt=self.polls
            )
        elif (
            status == 410
            and self._resubmit is not None
            and self.resubmits < MAX_SAME_BODY_RESUBMITS
        ):
            # The server lost the promise. The same body (same seq_id) is
            # resubmitted: a deduplicating server answers with the original
            # request, so the work still runs exactly once.
            self.resubmits += 1
            self._log(
                status, "resubmit", f"promise lost ({self.resubmits} of {MAX_SAME_BODY_RESUBMITS})"
            )
            self._promise = await self._resubmit()
            poll.allow_metadata = True
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
