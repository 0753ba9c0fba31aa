"""Bootstrap and credentials: the server's ``client/config``, and what ``X-API-Key`` carries.

:class:`Credentials` fetches ``client/config`` once (a server without it gets
the defaults) and answers, per request, with the API key itself or — when the
server says ``pjwt_auth_enabled`` — a short-lived session token from
``auth/token`` instead (protocol §2.3). :class:`SessionTokens` holds the token:
it is fetched on first use, refreshed ahead of its expiry (a tenth of its
lifetime, at least a minute), shared by concurrent callers (one refresh at a
time), kept a little longer when a refresh fails, and remembered after a
refresh so an old token a server echoes back is still redacted. The transport
sends the two bootstrap requests (unauthenticated, with its retries) for them.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import orjson

from . import _codec
from . import types as t
from ._config import PROTOCOL_SDK_VERSION
from ._exceptions import APIConnectionError, APIStatusError, NotFoundError

__all__ = ["Credentials", "SessionTokens"]

SessionPost = Callable[[str, bytes], Awaitable[bytes]]
"""POST ``body`` to an API path without credentials (with retries); the answer's body."""

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


class Credentials:
    """The server's ``client/config`` and the credential each request carries."""

    def __init__(self, api_key: str, post: SessionPost) -> None:
        self._api_key = api_key
        self._post = post
        self._server_config: t.ClientConfigResponse | None = None
        self._bootstrap_lock = anyio.Lock()
        self.tokens = SessionTokens()
        """The session token, when the server issues them."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials to redact from anything a server sends back: the key and its tokens."""
        return (self._api_key, *self.tokens.secrets)

    async def server_config(self) -> t.ClientConfigResponse:
        """``client/config`` (fetched once); a server without it (404) gets the defaults."""
        if self._server_config is not None:
            return self._server_config
        async with self._bootstrap_lock:
            if self._server_config is None:
                body = _codec.encode(t.ClientConfigRequest(sdk_version=PROTOCOL_SDK_VERSION))
                try:
                    content = await self._post("api/v1/client/config", body)
                    self._server_config = _codec.decode(t.ClientConfigResponse, content)
                except NotFoundError:
                    logger.debug("server has no client/config endpoint; using defaults")
                    self._server_config = t.ClientConfigResponse()
        return self._server_config

    async def key(self, *, force_refresh: bool = False) -> str:
        """What ``X-API-Key`` carries: the key itself, or a session token when the server wants one."""
        config = await self.server_config()
        if not config.pjwt_auth_enabled or self._api_key.startswith("eyJ"):
            return self._api_key
        return await self.tokens.get(self._fetch_token, force_refresh=force_refresh)

    async def _fetch_token(self) -> str:
        """Exchange the API key for a new session token (``auth/token``, protocol §2.3)."""
        content = await self._post("api/v1/auth/token", b"{}")
        return _codec.decode(t.AuthTokenResponse, content).jwt
