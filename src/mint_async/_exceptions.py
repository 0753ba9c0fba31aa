"""The exceptions mint_async raises.

Every exception the library raises on purpose derives from :class:`MintError`.
Names follow the openai / tinker SDKs so that ``except tinker.RateLimitError``
style code ports by changing one import::

    MintError
    ├── InvalidInputError (also ValueError)      bad input, raised before anything is sent
    ├── DecodeError (also ValueError)            bytes from the wire we cannot decode
    ├── ClientClosedError (also RuntimeError)    a client used after it was closed
    ├── SequenceBrokenError (also RuntimeError)  a training request could not be submitted: its
    │                                            seq_id is a gap the server would wait on forever
    ├── TokenizerUnavailableError (RuntimeError) a tokenizer could not be loaded
    ├── DownloadError (also OSError)             a checkpoint download was incomplete
    ├── WandbUnavailableError (also ImportError) wandb=... given without the wandb package
    └── APIError                                 anything that went wrong talking to a server
        ├── APIConnectionError                   the request may not have reached the server
        │   ├── APITimeoutError                  no complete answer within the deadline
        │   └── RemoteProtocolError              the answer broke HTTP framing (retried alike)
        ├── ResponseTooLargeError                the answer exceeded Limits.max_response_bytes
        ├── APIStatusError                       the server answered with a 4xx/5xx status
        │   ├── BadRequestError                  400
        │   ├── AuthenticationError              401
        │   ├── BillingError                     402 (after the billing pause ran out)
        │   ├── PermissionDeniedError            403
        │   ├── NotFoundError                    404
        │   ├── ConflictError                    409
        │   ├── PromiseExpiredError              410 (a future the server no longer knows)
        │   ├── UnprocessableEntityError         422
        │   ├── RateLimitError                   429
        │   └── InternalServerError              5xx
        ├── RequestFailedError                   the server ran the request and it failed
        ├── APIResponseValidationError           a 2xx answer whose body does not fit the type
        └── FutureTimeoutError (also TimeoutError)
            └── StuckRequestError                no progress within the watchdog time

Lower-level errors (httpx's, msgspec's) are translated at exactly one boundary
each (the transport, the codec) with ``raise X from exc``; whatever a server
sends (garbage headers, broken framing, oversized bodies) ends as one of these,
never as a bare ``ValueError``. Messages never contain credentials: the API key
and session tokens are redacted even from error bodies a server echoes them in.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ClientClosedError",
    "ConflictError",
    "DecodeError",
    "DownloadError",
    "FutureTimeoutError",
    "InternalServerError",
    "InvalidInputError",
    "MintError",
    "NotFoundError",
    "PermissionDeniedError",
    "PromiseExpiredError",
    "RateLimitError",
    "RemoteProtocolError",
    "RequestErrorCategory",
    "RequestFailedError",
    "ResponseTooLargeError",
    "SequenceBrokenError",
    "StuckRequestError",
    "TokenizerUnavailableError",
    "UnprocessableEntityError",
    "WandbUnavailableError",
]

RequestErrorCategory = Literal["unknown", "server", "user"]
"""Who the server blames for a failed request: ``user`` means the input was bad."""


class MintError(Exception):
    """Base class of every error mint_async raises on purpose."""


class InvalidInputError(MintError, ValueError):
    """An argument or a value of a wire type is invalid; nothing was sent.

    Raised at construction time (``SamplingParams(max_tokens=-1)``) and by client
    methods before a request leaves the process.
    """


class DecodeError(MintError, ValueError):
    """Bytes received from a server (or given to a decoder) do not decode into the expected type."""


class ClientClosedError(MintError, RuntimeError):
    """A client or pipeline was used after its ``async with`` block ended."""


class SequenceBrokenError(MintError, RuntimeError):
    """An earlier request of this training client could not be submitted.

    The server executes a model's requests in seq_id order, so it would wait for
    the missing one forever. Create a new training client (for example from your
    last checkpoint with ``create_training_client_from_state``).
    """


class TokenizerUnavailableError(MintError, RuntimeError):
    """A tokenizer could not be loaded (hub unreachable, offline, or transformers missing)."""


class DownloadError(MintError, OSError):
    """A checkpoint download was incomplete or did not match its announced size."""


class WandbUnavailableError(MintError, ImportError):
    """``wandb=`` was given but the wandb package is not installed."""


class APIError(MintError):
    """Something went wrong while talking to a MinT / Tinker server."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(APIError):
    """The request could not be completed at the transport level.

    The server may or may not have received it; resubmissions reuse the same
    ``seq_id`` so a deduplicating server executes the request once.
    """

    def __init__(self, message: str = "Connection error.") -> None:
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The request timed out before a response arrived."""

    def __init__(self, message: str = "Request timed out.") -> None:
        super().__init__(message)


class RemoteProtocolError(APIConnectionError):
    """The server's answer broke HTTP/1.1: a malformed status line, header or chunk size, a
    conflicting Content-Length, a body cut short, an undecodable Content-Encoding.

    Retried like any connection error (the same body and idempotency key go again).
    """

    def __init__(self, message: str = "The server broke the HTTP protocol.") -> None:
        super().__init__(message)


class ResponseTooLargeError(APIError):
    """The answer was larger than ``Limits.max_response_bytes``; reading stopped there.

    Raised as soon as the cap is passed (at once when Content-Length says so), so a
    hostile or broken server cannot make the client buffer without bound. Not retried.
    """


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status code.

    ``body`` is the decoded JSON body when it was JSON, else the text (truncated).
    """

    status_code: int
    body: object
    request_id: str | None

    def __init__(
        self, message: str, *, status_code: int, body: object = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id


class BadRequestError(APIStatusError):
    """400: the server rejected the request as malformed."""


class AuthenticationError(APIStatusError):
    """401: the API key or token was not accepted."""


class BillingError(APIStatusError):
    """402: the account cannot be billed; raised once the billing pause window has passed."""


class PermissionDeniedError(APIStatusError):
    """403: the credential is valid but may not do this."""


class NotFoundError(APIStatusError):
    """404: no such resource (or it is not yours)."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's state."""


class PromiseExpiredError(APIStatusError):
    """410: the server no longer knows this future (expired or broken promise)."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well-formed but semantically invalid."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried with backoff before it reaches you."""


class InternalServerError(APIStatusError):
    """5xx: the server failed; retried with backoff before it reaches you."""


class RequestFailedError(APIError):
    """The server accepted and ran the request, and it failed.

    ``category`` says whose fault it was: ``"user"`` (bad input; never retried),
    ``"server"`` or ``"unknown"``.
    """

    category: RequestErrorCategory
    request_id: str | None

    def __init__(
        self,
        message: str,
        *,
        category: RequestErrorCategory = "unknown",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.request_id = request_id


class APIResponseValidationError(APIError):
    """A successful response's body does not match the expected type."""


class FutureTimeoutError(APIError, TimeoutError):
    """A future's result did not arrive within the time the caller allowed."""


class StuckRequestError(FutureTimeoutError):
    """The progress watchdog saw no progress on a request for too long."""
