"""JWTs are bound to their API key: removing the key (a restart without it) revokes its JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest

from mint_async.server import ServerConfig
from mint_async.server._auth import Authenticator, AuthError, owner_of_key

from ._support import running

pytestmark = pytest.mark.anyio


def _token(client: httpx.AsyncClient, credential: str) -> httpx.Request:
    """An auth/token request made with ``credential``."""
    return client.build_request(
        "POST", "/api/v1/auth/token", json={}, headers={"X-API-Key": credential}
    )


def test_jwt_of_a_removed_key_is_refused() -> None:
    """A JWT issued under a key the next Authenticator (same secret) lacks is invalid_token."""
    before = Authenticator(("sk-a", "sk-b"), b"secret", jwt_ttl=60)
    token_a, token_b = before.issue(owner_of_key("sk-a")), before.issue(owner_of_key("sk-b"))
    after = Authenticator(("sk-b",), b"secret", jwt_ttl=60)
    assert after.owner(token_b) == owner_of_key("sk-b")
    with pytest.raises(AuthError) as exc:
        after.owner(token_a)
    assert exc.value.invalid_token
    with pytest.raises(AuthError):
        after.issue(owner_of_key("sk-a"))


def test_signed_jwt_without_a_key_binding_is_refused() -> None:
    """A correctly signed token whose claims name no accepted key (no or a foreign kid) is refused."""
    auth = Authenticator(("sk-a",), b"secret", jwt_ttl=60)
    owner = owner_of_key("sk-a")
    kid = json.loads(base64.urlsafe_b64decode(auth.issue(owner).split(".")[1] + "=="))["kid"]
    header = auth.issue(owner).split(".")[0]
    for claims in (
        {"sub": owner, "exp": 2**40},
        {"sub": owner, "exp": 2**40, "kid": "0" * 32},
        {"sub": owner_of_key("sk-other"), "exp": 2**40, "kid": kid},
    ):
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        sig = hmac.new(b"secret", f"{header}.{payload}".encode(), hashlib.sha256).digest()
        forged = f"{header}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
        with pytest.raises(AuthError) as exc:
            auth.owner(forged)
        assert exc.value.invalid_token


async def test_restart_without_a_key_revokes_its_jwts(tmp_path: Path) -> None:
    """After a restart (same data dir) without sk-a, its JWT is 401 on requests and on refresh; sk-b's JWT lives on."""
    async with running(ServerConfig(api_keys=("sk-a", "sk-b"), data_dir=tmp_path)) as (_, api):
        http = api.http
        jwts: dict[str, str] = {}
        for key in ("sk-a", "sk-b"):
            r = await http.send(_token(http, key))
            assert r.status_code == 200, r.text
            jwts[key] = r.json()["jwt"]
        refreshed = await http.send(_token(http, jwts["sk-a"]))
        assert refreshed.status_code == 200  # a JWT of an accepted key refreshes
    async with running(ServerConfig(api_keys=("sk-b",), data_dir=tmp_path)) as (_, api):
        http = api.http
        for credential in ("sk-a", jwts["sk-a"], refreshed.json()["jwt"]):
            listed = await http.get("/api/v1/checkpoints", headers={"X-API-Key": credential})
            assert listed.status_code == 401, listed.text
            again = await http.send(_token(http, credential))
            assert again.status_code == 401, again.text
        gone = await http.get("/api/v1/checkpoints", headers={"X-API-Key": jwts["sk-a"]})
        assert "invalid_token" in gone.headers["www-authenticate"]
        kept = await http.get("/api/v1/checkpoints", headers={"X-API-Key": jwts["sk-b"]})
        assert kept.status_code == 200, kept.text
        assert (await http.send(_token(http, jwts["sk-b"]))).status_code == 200
