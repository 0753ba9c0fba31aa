"""API keys and the JWTs the server issues in exchange (HS256, ``sub``/``kid``/``iat``/``exp``).

Every configured API key is a user; its owner id is a hash of the key, so keys
never appear in state, listings or logs. A JWT names the owner in ``sub`` and
the key it was issued for in ``kid``: a keyed fingerprint (HMAC of the key
under the JWT secret, so a token reveals nothing that helps guess the key).

A JWT is only as good as its key. Every request and every refresh checks that
``kid`` is one of the keys accepted *now*, so a key removed from the
configuration (a restart without it, same data directory, same secret) takes
its JWTs and their refreshes with it, instead of living on through
``/auth/token`` forever. Tokens without ``kid`` (issued before this rule) are
refused as ``invalid_token``; clients exchange their key for a fresh one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Final

from ._config import DEFAULT_API_KEYS

__all__ = ["AuthError", "Authenticator", "owner_of_key"]

_HEADER: Final = (
    base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    .rstrip(b"=")
    .decode()
)
_CACHE_MAX: Final = 4096


def owner_of_key(key: str) -> str:
    """The user id of an API key (a hash: keys are never stored or shown).

    The documented default keys (``sk-`` and ``tml-`` spellings of one local
    credential) are one user, so checkpoints saved through one SDK load through the other.
    """
    if key in DEFAULT_API_KEYS:
        key = DEFAULT_API_KEYS[0]
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
    """Checks ``X-API-Key`` values and issues JWTs bound to the key they were issued for."""

    def __init__(self, api_keys: tuple[str, ...], secret: bytes, jwt_ttl: float) -> None:
        self._owners = {key: owner_of_key(key) for key in api_keys}
        self._secret = secret
        self._ttl = jwt_ttl
        # kid -> owner of every accepted key; owner -> kid for issuing.
        self._kid_owner = {self._kid(key): owner for key, owner in self._owners.items()}
        self._owner_kid = {owner: kid for kid, owner in self._kid_owner.items()}
        # Verified JWTs: token -> (owner, exp). Skips the HMAC on hot paths; only
        # tokens whose kid was accepted get in, and the key set is fixed per instance.
        self._cache: dict[str, tuple[str, float]] = {}

    def _kid(self, key: str) -> str:
        digest = hmac.new(self._secret, b"mint-async kid\0" + key.encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

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
        """A fresh JWT for ``owner``, bound to its key; AuthError if no accepted key is theirs."""
        kid = self._owner_kid.get(owner)
        if kid is None:
            raise AuthError("the API key of this credential is no longer accepted")
        now = int(time.time())
        payload = {
            "sub": owner,
            "kid": kid,
            "iat": now,
            "exp": now + int(self._ttl),
            "iss": "mint-async",
        }
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
            owner, exp, kid = str(claims["sub"]), float(claims["exp"]), claims.get("kid")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuthError("malformed JWT", invalid_token=True) from exc
        if exp <= time.time():
            raise AuthError("expired JWT", invalid_token=True)
        # The signature proves we issued it; kid proves its key is still accepted.
        if not isinstance(kid, str) or self._kid_owner.get(kid) != owner:
            raise AuthError("the JWT's API key is no longer accepted", invalid_token=True)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (owner, exp)
        return owner
