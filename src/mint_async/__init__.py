"""mint_async: an async-first, fully typed client for MinT and the Tinker training API."""

from __future__ import annotations

from . import types as types
from ._exceptions import APIConnectionError as APIConnectionError
from ._exceptions import APIError as APIError
from ._exceptions import APIResponseValidationError as APIResponseValidationError
from ._exceptions import APIStatusError as APIStatusError
from ._exceptions import APITimeoutError as APITimeoutError
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import BadRequestError as BadRequestError
from ._exceptions import BillingError as BillingError
from ._exceptions import ClientClosedError as ClientClosedError
from ._exceptions import ConflictError as ConflictError
from ._exceptions import DecodeError as DecodeError
from ._exceptions import FutureTimeoutError as FutureTimeoutError
from ._exceptions import InternalServerError as InternalServerError
from ._exceptions import InvalidInputError as InvalidInputError
from ._exceptions import MintError as MintError
from ._exceptions import NotFoundError as NotFoundError
from ._exceptions import PermissionDeniedError as PermissionDeniedError
from ._exceptions import PromiseExpiredError as PromiseExpiredError
from ._exceptions import RateLimitError as RateLimitError
from ._exceptions import RequestFailedError as RequestFailedError
from ._exceptions import StuckRequestError as StuckRequestError
from ._exceptions import UnprocessableEntityError as UnprocessableEntityError
from ._version import __version__ as __version__

__all__ = [
    "__version__",
    "types",
    # errors
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
    "FutureTimeoutError",
    "InternalServerError",
    "InvalidInputError",
    "MintError",
    "NotFoundError",
    "PermissionDeniedError",
    "PromiseExpiredError",
    "RateLimitError",
    "RequestFailedError",
    "StuckRequestError",
    "UnprocessableEntityError",
]
