"""The session token (JWT) a server may exchange for the API key (protocol §2.3).

When ``client/config`` says ``pjwt_auth_enabled``, requests carry a short-lived
token from ``auth/token`` instead of the key. :class:`SessionTokens` holds it:
it is fetched on first use, refreshed ahead of its expiry (a tenth of its
lifetime, at least a minute), shared by concurrent callers (one refresh at a
time), kept a little longer when a refresh fails, and remembered after a
refresh so an old token a server echoes back is still redacted. The transport
decides *when* a token is needed and how to ask for one; this module only keeps
the state right.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import orjson

from ._exceptions import APIConnectionError, APIStatusError

__all__ = ["SessionTokens"]

logger = logging.getLogger("mint_async")

_OLD_TOKENS: Final = 4
"""Session tokens remembered for redaction after a refresh (a server may echo an old one)."""


def _jwt_times(token: str) -> tuple[float | None, float | None]:
    """``(exp, iat)`` claims of a JWT, without verifying it (protocol §2.3)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp, iat = claims.get("exp"), claims.get("iat")
        return (
            float(exp) if isinstance(exp, int | float) else None,
            float(iat) if isinstance(iat, int | float) else None,
        )
    except (IndexError, ValueError, AttributeError, orjson.JSONDecodeError):
        return None, None


class SessionTokens:
    """The current session token, its refresh schedule and the tokens it replaced."""

    def __init__(self) -> None:
        self._jwt: str | None = None
        self._old: list[str] = []
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._lock = anyio.Lock()

    @property
    def current(self) -> str | None:
        """The token in use (None before the first exchange)."""
        return self._jwt

    @property
    def secrets(self) -> tuple[str, ...]:
        """The current token and the last few it replaced, for redaction."""
        jwt = (self._jwt,) if self._jwt is not None else ()
        return (*jwt, *self._old)

    async def get(self, fetch: Callable[[], Awaitable[str]], *, force_refresh: bool = False) -> str:
        """A valid token: the current one, or a new one from ``fetch()`` when it is due.

        ``force_refresh`` fetches even if the current one looks valid (the server
        answered 401 ``invalid_token``). A failed refresh keeps the current token
        while it has more than 5 s left; otherwise the error propagates.
        """
        now = time.time()
        if not force_refresh and self._jwt is not None and now < self._refresh_at:
            return self._jwt
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            now = time.time()
            if not force_refresh and self._jwt is not None and now < self._refresh_at:
                return self._jwt
            try:
                token = await fetch()
            except (APIConnectionError, APIStatusError) as exc:
                if self._jwt is not None and now < self._expires_at - 5:
                    logger.warning(
                        "JWT refresh failed (%s); using the current token", type(exc).__name__
                    )
                    return self._jwt
                raise
            self._store(token)
            return token

    def _store(self, token: str) -> None:
        exp, iat = _jwt_times(token)
        now = time.time()
        if exp is None:
            # Unparseable expiry: treat as short-lived and refresh soon.
            self._refresh_at, self._expires_at = now + 60, now + 120
        else:
            lifetime = exp - (iat if iat is not None else now)
            self._refresh_at = exp - max(60.0, 0.1 * lifetime)
            self._expires_at = exp
        if self._jwt is not None:
            self._old = [self._jwt, *self._old][:_OLD_TOKENS]
        self._jwt = token
        logger.debug("obtained a session token (expires in %.0f s)", self._expires_at - now)
