"""The transport's error boundary: how an answer or a failure becomes one of our exceptions.

Everything the HTTP layer raises passes through here, at exactly one place each:

* an error status becomes its :class:`~mint_async.APIStatusError` subclass
  (:func:`status_error`, the table below, messages like the official SDK's);
* an httpx exception becomes an :class:`~mint_async.APIConnectionError`,
  :class:`~mint_async.APITimeoutError` or :class:`~mint_async.RemoteProtocolError`
  (:func:`map_transport_errors`), with credentials scrubbed from the message and chain;
* every retry decision the transport and the poll loop take is logged in one
  format (:func:`log_decision`).

======  ==========================  ======  ==========================
status  exception                   status  exception
======  ==========================  ======  ==========================
400     BadRequestError             410     PromiseExpiredError
401     AuthenticationError         422     UnprocessableEntityError
402     BillingError                429     RateLimitError
403     PermissionDeniedError       5xx     InternalServerError
404     NotFoundError               other   APIStatusError
409     ConflictError
======  ==========================  ======  ==========================
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Final, Protocol

import httpx
import orjson

from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    PromiseExpiredError,
    RateLimitError,
    RemoteProtocolError,
    UnprocessableEntityError,
)
from ._redaction import redact, scrub_chain

__all__ = [
    "Answer",
    "TransportErrors",
    "is_read_timeout",
    "log_decision",
    "map_transport_errors",
    "status_error",
]

logger = logging.getLogger("mint_async")

_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BillingError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: PromiseExpiredError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_BODY_PREVIEW: Final = 2000


class Answer(Protocol):
    """What :func:`status_error` reads of an answer (the transport's ``Response`` has it)."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def content(self) -> bytes:
        """The whole body, already redacted."""
        ...


def _body_of(response: Answer) -> object:
    preview = response.content[:_BODY_PREVIEW]
    try:
        parsed: object = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return preview.decode("utf-8", "replace")
    return parsed


def status_error(response: Answer, *, request_id: str | None = None) -> APIStatusError:
    """The APIStatusError subclass for an error response (message like the SDK's)."""
    body = _body_of(response)
    cls = _STATUS_ERRORS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIStatusError
    text = response.content[:_BODY_PREVIEW].decode("utf-8", "replace")
    message = f"Error code: {response.status_code} - {text}"
    return cls(message, status_code=response.status_code, body=body, request_id=request_id)


def map_transport_errors(what: str, secrets: tuple[str, ...] = ()) -> TransportErrors:
    """``with map_transport_errors(what)``: httpx's transport exceptions become ours (no credentials)."""
    return TransportErrors(what, secrets)


class TransportErrors:
    """The context manager of :func:`map_transport_errors`.

    A class, not a generator-based context manager: it wraps every request, and
    ``contextlib.contextmanager`` costs several times as much to enter and leave.
    """

    __slots__ = ("_secrets", "_what")

    def __init__(self, what: str, secrets: tuple[str, ...]) -> None:
        self._what = what
        self._secrets = secrets

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        what, secrets = self._what, self._secrets
        if isinstance(exc, httpx.TimeoutException):
            msg = f"{what} timed out ({type(exc).__name__})"
            raise APITimeoutError(msg) from exc
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.DecodingError)):
            scrub_chain(exc, secrets)
            msg = redact(f"{what} failed: the server broke the protocol: {exc}", secrets)
            raise RemoteProtocolError(msg) from exc
        if isinstance(exc, httpx.RequestError):
            scrub_chain(exc, secrets)
            msg = redact(f"{what} failed: {type(exc).__name__}: {exc}", secrets)
            raise APIConnectionError(msg) from exc


def is_read_timeout(exc: BaseException) -> bool:
    """Whether a transport failure was a timeout *waiting for the response*.

    The connection was made and the request sent, so the server is alive and
    holding it (a long poll held past our read timeout). Connect, write and
    pool timeouts, refusals and resets are not: those are connection errors.
    """
    return isinstance(exc, APITimeoutError) and isinstance(exc.__cause__, httpx.ReadTimeout)


def log_decision(
    subject: str,
    *,
    attempt: int,
    status: int | None,
    action: str,
    reason: str,
    delay: float | None = None,
) -> None:
    """Log one retry decision at DEBUG: what was tried, how it ended, what happens next and why.

    ``action`` is one word: ``retry`` (after ``delay`` s), ``repoll`` (at once),
    ``refresh`` (the token, then replay), ``pause`` (billing), ``resubmit``,
    ``raise`` (not retryable) or ``give_up`` (retries exhausted). The record
    also carries the fields as ``retry_action``, ``retry_reason``,
    ``retry_attempt``, ``retry_status`` and ``retry_delay`` for structured handlers.
    """
    if not logger.isEnabledFor(logging.DEBUG):
        return
    outcome = f"status {status}" if status is not None else "no response"
    then = f"{action} in {delay:.2f} s" if delay is not None else action
    logger.debug(
        "%s: attempt %d got %s; %s: %s",
        subject,
        attempt,
        outcome,
        then,
        reason,
        extra={
            "retry_action": action,
            "retry_reason": reason,
            "retry_attempt": attempt,
            "retry_status": status,
            "retry_delay": delay,
        },
    )
