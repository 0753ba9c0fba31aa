"""Retry decisions and backoff (protocol §6), with a testing switch that turns sleeps off.

The decision is the compact one of the openai / Stainless clients: honour
``x-should-retry``; retry 408, 409, 429 and 5xx; back off exponentially with
jitter unless the server sent ``Retry-After`` (0 < s <= 60). Every decision is
logged at debug level with its reason by the caller.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from typing import Final

import anyio

from ._config import RetryPolicy

__all__ = ["backoff_delay", "retry_after", "set_testing", "should_retry_status", "sleep"]

RETRYABLE_STATUSES: Final = frozenset({408, 409, 429})

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
