"""Retry decisions, backoff and the billing pause (protocol §6), with a testing switch that turns sleeps off.

The decision is the compact one of the openai / Stainless clients: honour
``x-should-retry``; retry 408, 409, 429 and 5xx; back off exponentially with
jitter unless the server sent ``Retry-After`` (0 < s <= 60). Every decision is
logged at debug level with its reason (:func:`~mint_async._errors.log_decision`).
A 402 is not retried like the others: :class:`BillingWindow` pauses requests in
5 s steps for a bounded window instead.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Mapping
from typing import Final

import anyio

from ._config import RetryPolicy
from ._errors import Answer, log_decision, status_error

__all__ = [
    "BillingWindow",
    "backoff_delay",
    "retry_after",
    "set_testing",
    "should_retry_status",
    "sleep",
]

logger = logging.getLogger("mint_async")

RETRYABLE_STATUSES: Final = frozenset({408, 409, 429})
_BILLING_STEP: Final = 5.0

_testing = False


def set_testing(enabled: bool) -> None:
    """Turn every retry/backoff sleep into a zero-length checkpoint (for tests).

    Use it instead of patching ``sleep``: the retry logic still runs, in order,
    only without waiting.
    """
    global _testing
    _testing = enabled


def is_testing() -> bool:
    """Whether retry sleeps are currently switched off."""
    return _testing


async def sleep(seconds: float) -> None:
    """Sleep for a backoff delay (no time at all while testing)."""
    await anyio.sleep(0 if _testing else max(0.0, seconds))


def should_retry_status(status: int, headers: Mapping[str, str]) -> tuple[bool, str]:
    """Whether an HTTP status is worth retrying, and why (for the debug log)."""
    hint = headers.get("x-should-retry", "").lower()
    if hint == "true":
        return True, "server sent x-should-retry: true"
    if hint == "false":
        return False, "server sent x-should-retry: false"
    if status in RETRYABLE_STATUSES:
        return True, f"status {status} is retryable"
    if status >= 500:
        return True, f"server error {status}"
    return False, f"status {status} is not retryable"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's requested delay in seconds, if given, valid and within (0, 60]; else None."""
    value: float | None = None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = None
    if value is None and (raw := headers.get("retry-after")) is not None:
        try:
            value = float(raw)
        except ValueError:
            value = _http_date_delay(raw)
    if value is not None and 0 < value <= 60:
        return value
    return None


def _http_date_delay(raw: str) -> float | None:
    """Seconds until an HTTP-date, or None for a header that is no date (then backoff applies)."""
    try:
        return email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
    except (ValueError, TypeError, OverflowError, IndexError):
        # A server's garbage is ignored, never raised (issue 12): normal backoff applies.
        return None


def backoff_delay(
    retries_taken: int, policy: RetryPolicy, headers: Mapping[str, str] | None = None
) -> float:
    """Seconds to wait before retry number ``retries_taken + 1``."""
    if headers is not None and (hinted := retry_after(headers)) is not None:
        return hinted
    base = min(policy.initial_delay * 2.0**retries_taken, policy.max_delay)
    return base * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not cryptography


class BillingWindow:
    """Protocol §5.5, §6.2: a 402 pauses requests in 5 s steps, for a bounded window.

    The window starts at the first 402 and ends with any successful answer
    (:meth:`end`); a 402 after it raises BillingError. One per transport: every
    request and poll to the server shares it.
    """

    def __init__(self) -> None:
        self._started: float | None = None

    def end(self) -> None:
        """Forget an earlier 402: the next one starts a new window (the server answered)."""
        self._started = None

    async def pause(self, resp: Answer, *, window: float, subject: str, attempt: int) -> None:
        """Sleep one step after a 402 inside the window; raise its BillingError once past it."""
        now = time.monotonic()
        if self._started is None:
            self._started = now
        waited = now - self._started
        if waited >= window:
            self._started = None
            log_decision(
                subject,
                attempt=attempt,
                status=resp.status_code,
                action="raise",
                reason=f"402 after the billing window ({waited:.0f} s of {window:g} s)",
            )
            raise status_error(resp)
        logger.warning("billing problem (402); pausing requests for 5 s")
        log_decision(
            subject,
            attempt=attempt,
            status=resp.status_code,
            action="pause",
            reason=f"402 within the billing window ({waited:.0f} s of {window:g} s)",
            delay=_BILLING_STEP,
        )
        await sleep(_BILLING_STEP)
