"""tinker's exception names, bound to mint_async's exceptions (the same classes).

``except tinker.TinkerError`` catches every mint_async error, ``except
tinker.BadRequestError`` a 400, and so on: the clients raise mint_async's
exceptions and these names are those very classes.
"""

from __future__ import annotations

from .._exceptions import APIConnectionError as APIConnectionError
from .._exceptions import APIError as APIError
from .._exceptions import APIResponseValidationError as APIResponseValidationError
from .._exceptions import APIStatusError as APIStatusError
from .._exceptions import APITimeoutError as APITimeoutError
from .._exceptions import AuthenticationError as AuthenticationError
from .._exceptions import BadRequestError as BadRequestError
from .._exceptions import BillingError as BillingError
from .._exceptions import ConflictError as ConflictError
from .._exceptions import InternalServerError as InternalServerError
from .._exceptions import MintError as TinkerError
from .._exceptions import NotFoundError as NotFoundError
from .._exceptions import PermissionDeniedError as PermissionDeniedError
from .._exceptions import RateLimitError as RateLimitError
from .._exceptions import RequestFailedError as RequestFailedError
from .._exceptions import UnprocessableEntityError as UnprocessableEntityError

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestFailedError",
    "TinkerError",
    "UnprocessableEntityError",
]
