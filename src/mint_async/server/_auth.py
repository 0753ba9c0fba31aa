"""API keys and the JWTs the server issues in exchange (HS256, ``sub``/``iat``/``exp``).

Every configured API key is a user; its owner id is a hash of the key, so keys
never appear in state, listings or logs. A JWT names the owner in ``sub``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Final

__all__ = ["AuthError", "Authenticator", "owner_of_key"]

_HEADER: Final = (
    base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    .rstrip(b"=")
    .decode()
)
_CACHE_MAX: Final = 4096


def owner_of_key(key: str) -> str:
    """The user id of an API key (a hash: keys are never stored or shown)."""
    return "user-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class AuthError(Exception):
    """A credential was refused; ``invalid_token`` marks a bad or expired JWT."""

    message: str
    invalid_token: bool = False


class Authenticator:
    """Checks ``X-API-Key`` values and issues JWTs."""

    def __init__(self, api_keys: tuple[str, ...], secret: bytes, jwt_ttl: float) -> None:
        self._owners = {key: owner_of_key(key) for key in api_keys}
        self._secret = secret
        self._ttl = jwt_ttl
        # Verified JWTs: token -> (owner, exp). Skips the HMAC on hot paths.
        self._cache: dict[str, tuple[str, float]] = {}

    def owner(self, credential: str | None) -> str:
        """The owner a credential (API key or our JWT) belongs to; raises AuthError."""
        if not credential:
            raise AuthError("missing X-API-Key header")
        owner = self._owners.get(credential)
        if owner is not None:
            return owner
        cached = self._cache.get(credential)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        if credential.startswith("eyJ"):
            return self._verify(credential)
        raise AuthError("invalid API key")

    def issue(self, owner: str) -> str:
        """A fresh JWT for ``owner``."""
        now = int(time.time())
        payload = {"sub": owner, "iat": now, "exp": now + int(self._ttl), "iss": "mint-async"}
        signing_input = f"{_HEADER}.{_b64(json.dumps(payload).encode())}"
        sig = hmac.new(self._secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(sig)}"

    def _verify(self, token: str) -> str:
        try:
            header, payload, sig = token.split(".")
            expected = hmac.new(
                self._secret, f"{header}.{payload}".encode(), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(expected, _unb64(sig)):
                raise AuthError("invalid JWT signature", invalid_token=True)
            claims = json.loads(_unb64(payload))
            owner, exp = str(claims["sub"]), float(claims["exp"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError("malformed JWT", invalid_token=True) from exc
        if exp <= time.time():
            raise AuthError("expired JWT", invalid_token=True)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (owner, exp)
        return owner
