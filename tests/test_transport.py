"""The transport: headers, bootstrap, JWT auth, HTTP-level retries (protocol §6) and error mapping."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import httpx
import orjson
import pytest

import mint_async
from mint_async import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from mint_async._retry import backoff_delay, retry_after, should_retry_status
from mint_async._transport import Transport

from .mock_server import API_KEY, MockServer, json_response

pytestmark = pytest.mark.anyio


def _jwt(exp: float, iat: float) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part({'exp': exp, 'iat': iat, 'sub': 'u'})}.sig"


async def test_headers_and_idempotency_key_stable_across_retries() -> None:
    """Every request carries X-API-Key and User-Agent; retries reuse one X-Idempotency-Key."""
    mock = MockServer()
    mock.script(
        "weights_info", json_response(503, {"detail": "busy"}), {"base_model": "b", "is_lora": True}
    )
    transport = Transport(mock.config(), mock.transport)
    try:
        resp = await transport.request("POST", "api/v1/weights_info", body=b"{}")
    finally:
        await transport.aclose()
    assert resp.status_code == 200
    calls = mock.calls("weights_info")
    assert len(calls) == 2
    keys = {c.headers["x-idempotency-key"] for c in calls}
    assert len(keys) == 1 and next(iter(keys)).startswith("mint-async-")
    for call in calls:
        assert call.headers["x-api-key"] == API_KEY
        assert call.headers["user-agent"].startswith(f"mint_async/{mint_async.__version__}")
        assert call.headers["content-type"] == "application/json"


async def test_client_config_404_uses_defaults() -> None:
    """A server without client/config still works, with the default flags."""
    mock = MockServer()
    mock.script("client/config", json_response(404, {"detail": "not found"}))
    transport = Transport(mock.config(), mock.transport)
    try:
        cfg = await transport.server_config()
        assert cfg.pjwt_auth_enabled is False and cfg.fwdbwd_max_chunk_len == 1024
        assert (await transport.server_config()) is cfg  # fetched once
    finally:
        await transport.aclose()
    assert len(mock.calls("client/config")) == 1


async def test_jwt_exchange_refresh_and_invalid_token_replay() -> None:
    """With pjwt_auth_enabled the key is exchanged for a JWT, refreshed near expiry and on 401 invalid_token."""
    mock = MockServer()
    mock.script("client/config", {"pjwt_auth_enabled": True})
    now = time.time()
    tokens = [_jwt(now + 30, now), _jwt(now + 3600, now), _jwt(now + 7200, now)]
    issued: list[str] = []

    def token(request: httpx.Request) -> dict[str, str]:
        assert request.headers["x-api-key"] == API_KEY  # exchange uses the raw key
        issued.append(tokens[len(issued)])
        return {"jwt": issued[-1]}

    mock.routes["auth/token"] = token
    seen: list[str] = []

    def info(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["x-api-key"])
        if len(seen) == 2:
            return json_response(
                401, {"detail": "expired"}, {"www-authenticate": 'Bearer error="invalid_token"'}
            )
        return json_response(200, {"base_model": "b", "is_lora": True})

    mock.routes["weights_info"] = info
    transport = Transport(mock.config(), mock.transport)
    try:
        # The first token expires in 30 s (inside the 60 s margin): used once, then refreshed.
        await transport.request("POST", "api/v1/weights_info", body=b"{}")
        await transport.request("POST", "api/v1/weights_info", body=b"{}")
        # The second token has an hour left: reused without an exchange.
        await transport.request("POST", "api/v1/weights_info", body=b"{}")
    finally:
        await transport.aclose()
    # Second request: 401 invalid_token with tokens[1] → one refresh and a replay with tokens[2].
    assert seen == [tokens[0], tokens[1], tokens[2], tokens[2]]
    assert len(issued) == 3


async def test_retry_on_transport_errors_then_give_up() -> None:
    """Connection errors are retried up to max_retries, then APIConnectionError."""
    mock = MockServer()
    mock.script("weights_info", httpx.ConnectError("refused"))
    transport = Transport(mock.config(retry=mint_async.RetryPolicy(max_retries=3)), mock.transport)
    try:
        with pytest.raises(APIConnectionError, match="ConnectError"):
            await transport.request("POST", "api/v1/weights_info", body=b"{}")
    finally:
        await transport.aclose()
    assert len(mock.calls("weights_info")) == 4


async def test_timeout_maps_to_api_timeout_error() -> None:
    """httpx timeouts become APITimeoutError (a retryable APIConnectionError)."""
    mock = MockServer()
    mock.script("weights_info", httpx.ReadTimeout("slow"))
    transport = Transport(mock.config(retry=mint_async.RetryPolicy(max_retries=0)), mock.transport)
    try:
        with pytest.raises(mint_async.APITimeoutError):
            await transport.request("POST", "api/v1/weights_info", body=b"{}")
    finally:
        await transport.aclose()


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (422, mint_async.UnprocessableEntityError),
    ],
)
async def test_non_retryable_statuses_raise_at_once(status: int, exc: type[Exception]) -> None:
    """4xx answers (other than 408/409/429) raise their APIStatusError subclass without retry."""
    mock = MockServer()
    mock.script("weights_info", json_response(status, {"detail": "nope"}))
    transport = Transport(mock.config(), mock.transport)
    try:
        with pytest.raises(exc) as info:
            await transport.request("POST", "api/v1/weights_info", body=b"{}")
    finally:
        await transport.aclose()
    assert len(mock.calls("weights_info")) == 1
    err = info.value
    assert isinstance(err, mint_async.APIStatusError)
    assert err.status_code == status and err.body == {"detail": "nope"}
    assert str(err).startswith(f"Error code: {status}")


async def test_retryable_statuses_and_x_should_retry() -> None:
    """408/409/429/5xx are retried; x-should-retry overrides the decision both ways."""
    mock = MockServer()
    mock.script(
        "a",
        json_response(408, {}),
        json_response(409, {}),
        json_response(429, {}, {"retry-after": "1"}),
        json_response(500, {}),
        json_response(400, {"detail": "retry me"}, {"x-should-retry": "true"}),
        {"ok": 1},
    )
    mock.script("b", json_response(503, {"detail": "down"}, {"x-should-retry": "false"}))
    transport = Transport(mock.config(), mock.transport)
    try:
        assert (await transport.request("POST", "api/v1/a", body=b"{}")).status_code == 200
        with pytest.raises(InternalServerError):
            await transport.request("POST", "api/v1/b", body=b"{}")
    finally:
        await transport.aclose()
    assert len(mock.calls("a")) == 6
    assert len(mock.calls("b")) == 1


async def test_empty_400_is_a_connection_reset() -> None:
    """A 400 with an empty body and no Content-Length is retried as a connection error."""
    mock = MockServer()
    mock.script("a", httpx.Response(400, content=b""), {"ok": 1})
    transport = Transport(mock.config(), mock.transport)
    try:
        assert (await transport.request("POST", "api/v1/a", body=b"{}")).status_code == 200
    finally:
        await transport.aclose()
    assert len(mock.calls("a")) == 2


async def test_billing_pause_then_billing_error() -> None:
    """402s are waited out within the billing window, then raise BillingError."""
    mock = MockServer()
    mock.script("a", json_response(402, {"detail": "pay"}), json_response(402, {}), {"ok": 1})
    transport = Transport(mock.config(), mock.transport)
    try:
        assert (await transport.request("POST", "api/v1/a", body=b"{}")).status_code == 200
    finally:
        await transport.aclose()
    mock.script("client/config", {"billing_exception_max_pause_duration_sec": 0})
    mock.script("b", json_response(402, {"detail": "pay"}))
    transport = Transport(mock.config(), mock.transport)
    try:
        with pytest.raises(BillingError):
            await transport.request("POST", "api/v1/b", body=b"{}")
    finally:
        await transport.aclose()


async def test_rate_limit_gives_up_with_rate_limit_error() -> None:
    """Persistent 429s end in RateLimitError after the retries."""
    mock = MockServer()
    mock.script("a", json_response(429, {"detail": "slow down"}))
    transport = Transport(mock.config(retry=mint_async.RetryPolicy(max_retries=2)), mock.transport)
    try:
        with pytest.raises(RateLimitError):
            await transport.request("POST", "api/v1/a", body=b"{}")
    finally:
        await transport.aclose()
    assert len(mock.calls("a")) == 3


async def test_closed_transport_refuses_requests() -> None:
    """A closed transport raises ClientClosedError."""
    mock = MockServer()
    transport = Transport(mock.config(), mock.transport)
    await transport.aclose()
    with pytest.raises(mint_async.ClientClosedError):
        await transport.request("GET", "api/v1/healthz")


async def test_api_key_never_logged_or_in_errors(caplog: pytest.LogCaptureFixture) -> None:
    """The API key appears in no log line, repr or exception message, even at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="mint_async")
    caplog.set_level(logging.DEBUG, logger="httpx")
    mock = MockServer()
    mock.script(
        "a",
        httpx.ConnectError("down"),
        json_response(500, {}),
        json_response(401, {"detail": "bad key"}),
    )
    async with mock.service() as svc:
        transport = Transport(mock.config(), mock.transport)
        with pytest.raises(AuthenticationError) as info:
            await transport.request("POST", "api/v1/a", body=b"{}")
        await transport.aclose()
        texts = [repr(svc), repr(svc.config), str(info.value), repr(info.value), repr(transport)]
        texts += [r.getMessage() for r in caplog.records]
    assert caplog.records  # the retries were logged
    assert all(API_KEY not in text for text in texts)


def test_should_retry_and_backoff() -> None:
    """The retry decision and backoff follow protocol §6.1."""
    assert should_retry_status(503, {})[0]
    assert should_retry_status(409, {})[0]
    assert not should_retry_status(404, {})[0]
    assert not should_retry_status(503, {"x-should-retry": "false"})[0]
    policy = mint_async.RetryPolicy(initial_delay=0.5, max_delay=10)
    for n in range(8):
        d = backoff_delay(n, policy)
        assert 0.75 * min(0.5 * 2**n, 10) <= d <= min(0.5 * 2**n, 10)
    assert backoff_delay(3, policy, {"retry-after": "2"}) == 2.0
    assert backoff_delay(3, policy, {"retry-after-ms": "250"}) == 0.25
    assert retry_after({"retry-after": "120"}) is None  # beyond 60 s: ignored
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None  # in the past
