"""The transport: headers, bootstrap, JWT auth, HTTP-level retries (protocol §6) and error mapping."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import anyio
import anyio.abc
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
from mint_async._config import ClientConfig
from mint_async._retry import backoff_delay, retry_after, should_retry_status
from mint_async._transport import Transport, environment_proxy, is_read_timeout

from .mock_server import API_KEY, MockServer, json_response

pytestmark = pytest.mark.anyio


class FakeClock:
    """A monotonic clock for the transport and the poll loop that moves only when told.

    Backoff sleeps are recorded (``sleeps``) and advance it; a mock server
    simulates holding a request with :meth:`advance`.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The simulated monotonic time."""
        return self.now

    def time(self) -> float:
        """Wall-clock time (JWT expiry checks), shifted with the simulated clock."""
        return time.time() + self.now - 1000.0

    def advance(self, seconds: float) -> None:
        """Let simulated time pass (a server holding a request)."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """A backoff sleep: recorded, taken in simulated time."""
        self.sleeps.append(round(seconds, 6))
        self.now += max(0.0, seconds)
        await anyio.sleep(0)


def install_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Run the transport's and the poll loop's clocks and backoff sleeps on a FakeClock."""
    clock = FakeClock()
    for module in ("mint_async._transport", "mint_async._polling"):
        monkeypatch.setattr(f"{module}.time", clock)
        monkeypatch.setattr(f"{module}.backoff_sleep", clock.sleep)
    # The billing pause (_retry) and the session token's expiry (_auth) read the clock too.
    monkeypatch.setattr("mint_async._retry.time", clock)
    monkeypatch.setattr("mint_async._retry.sleep", clock.sleep)
    monkeypatch.setattr("mint_async._auth.time", clock)
    return clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake clock recording every backoff sleep."""
    return install_clock(monkeypatch)


def decisions(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int | None, str]]:
    """``(action, status, reason)`` of every retry decision logged so far."""
    out: list[tuple[str, int | None, str]] = []
    for record in caplog.records:
        action = getattr(record, "retry_action", None)
        if action is not None:
            assert record.levelno == logging.DEBUG and record.name == "mint_async"
            assert isinstance(getattr(record, "retry_attempt", None), int)
            reason: str = getattr(record, "retry_reason", "")
            assert reason and reason in record.getMessage()
            out.append((action, getattr(record, "retry_status", None), reason))
    return out


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


async def test_retry_on_transport_errors_then_give_up(caplog: pytest.LogCaptureFixture) -> None:
    """Connection errors are retried up to max_retries, then APIConnectionError; each decision logged."""
    caplog.set_level(logging.DEBUG, logger="mint_async")
    mock = MockServer()
    mock.script("weights_info", httpx.ConnectError("refused"))
    transport = Transport(mock.config(retry=mint_async.RetryPolicy(max_retries=3)), mock.transport)
    try:
        with pytest.raises(APIConnectionError, match="ConnectError"):
            await transport.request("POST", "api/v1/weights_info", body=b"{}")
    finally:
        await transport.aclose()
    assert len(mock.calls("weights_info")) == 4
    logged = decisions(caplog)
    assert [action for action, _, _ in logged] == ["retry", "retry", "retry", "give_up"]
    assert all(status is None and "ConnectError" in reason for _, status, reason in logged)
    assert [reason.rsplit("(", 1)[1] for _, _, reason in logged] == [
        "retry 1 of 3)",
        "retry 2 of 3)",
        "retry 3 of 3)",
        "3 of 3 retries used)",
    ]


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
        (403, mint_async.PermissionDeniedError),
        (404, NotFoundError),
        (422, mint_async.UnprocessableEntityError),
    ],
)
async def test_non_retryable_statuses_raise_at_once(
    status: int, exc: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    """4xx answers (other than 408/409/429) raise their APIStatusError subclass without retry, logged."""
    caplog.set_level(logging.DEBUG, logger="mint_async")
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
    assert decisions(caplog) == [("raise", status, f"status {status} is not retryable")]


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
    assert all(API_KEY not in text for text in texts)
    logged = decisions(caplog)
    assert [(action, status) for action, status, _ in logged] == [
        ("retry", None),
        ("retry", 500),
        ("raise", 401),
    ]
    assert logged[0][2].startswith("connection error: POST /api/v1/a failed: ConnectError")
    assert logged[1][2] == "server error 500 (retry 2 of 10)"
    assert logged[2][2] == "status 401 is not retryable"


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


@pytest.mark.parametrize(
    "value",
    [
        "garbage-date",
        "",
        "Fri, 31 Dec 99999 23:59:59 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "nan",
        "1e400",
    ],
)
def test_garbage_retry_after_is_ignored(value: str) -> None:
    """A Retry-After that is no number and no usable HTTP-date gives normal backoff, never an error."""
    policy = mint_async.RetryPolicy(initial_delay=0.5)
    assert retry_after({"retry-after": value}) is None
    assert retry_after({"retry-after-ms": value}) is None
    assert 0.375 <= backoff_delay(0, policy, {"retry-after": value}) <= 0.5


async def test_give_up_after_bounds_the_total_retry_time(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """RetryPolicy.give_up_after stops retrying once that much time has passed, retries left or not."""
    caplog.set_level(logging.DEBUG, logger="mint_async")
    mock = MockServer()
    mock.script("a", json_response(429, {"detail": "slow down"}, {"retry-after": "1"}))
    policy = mint_async.RetryPolicy(max_retries=10, give_up_after=2.5)
    transport = Transport(mock.config(retry=policy), mock.transport)
    try:
        with pytest.raises(RateLimitError):
            await transport.request("POST", "api/v1/a", body=b"{}")
    finally:
        await transport.aclose()
    # Attempts at t = 0, 1, 2 are retried (Retry-After: 1, the last sleep cut to the 0.5 s
    # left of the budget); at t = 2.5 the budget is used up.
    assert clock.sleeps == [1.0, 1.0, 0.5]
    assert len(mock.calls("a")) == 4
    action, status, reason = decisions(caplog)[-1]
    assert (action, status) == ("give_up", 429)
    assert reason == "status 429 is retryable (2.5 s of give_up_after=2.5 s used)"


async def test_every_decision_is_logged_with_its_reason(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Retries, the empty-400 reset, billing pauses, token refreshes and the final refusal are logged."""
    caplog.set_level(logging.DEBUG, logger="mint_async")
    mock = MockServer()
    mock.script("client/config", {"pjwt_auth_enabled": True})
    now = time.time()
    mock.script("auth/token", {"jwt": _jwt(now + 3600, now)})
    mock.script(
        "a",
        json_response(503, {}),
        httpx.Response(400, content=b""),
        json_response(402, {"detail": "pay"}),
        json_response(401, {}, {"www-authenticate": 'Bearer error="invalid_token"'}),
        json_response(404, {"detail": "gone"}),
    )
    transport = Transport(mock.config(), mock.transport)
    try:
        with pytest.raises(NotFoundError):
            await transport.request("POST", "api/v1/a", body=b"{}")
    finally:
        await transport.aclose()
    assert decisions(caplog) == [
        ("retry", 503, "server error 503 (retry 1 of 10)"),
        ("retry", 400, "empty 400 treated as a connection reset (retry 2 of 10)"),
        ("pause", 402, "402 within the billing window (0 s of 3600 s)"),
        (
            "refresh",
            401,
            "401 invalid_token: the token is refreshed once and the request replayed",
        ),
        ("raise", 404, "status 404 is not retryable"),
    ]
    assert clock.sleeps[2] == 5.0  # the billing pause


async def test_billing_error_after_the_window_is_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """402s are paused in 5 s steps until the billing window is used up, then raised (and logged)."""
    caplog.set_level(logging.DEBUG, logger="mint_async")
    mock = MockServer()
    mock.script("a", json_response(402, {"detail": "pay"}))
    policy = mint_async.RetryPolicy(billing_pause=12.0)
    transport = Transport(mock.config(retry=policy), mock.transport)
    try:
        with pytest.raises(BillingError):
            await transport.request("POST", "api/v1/a", body=b"{}")
    finally:
        await transport.aclose()
    assert clock.sleeps == [5.0, 5.0, 5.0]
    assert decisions(caplog)[-1] == ("raise", 402, "402 after the billing window (15 s of 12 s)")


async def _hold_forever(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        await stream.receive()
        await anyio.sleep_forever()


@pytest.mark.parametrize("http_client", ["builtin", "httpx"])
async def test_read_timeout_is_told_from_connection_errors(http_client: str) -> None:
    """A server holding the request past the read timeout is a read timeout; a refused connect is not."""
    mock = MockServer()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    url = f"http://127.0.0.1:{port}"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _hold_forever)
        transport = Transport(mock.config(base_url=url, http_client=http_client))
        try:
            with pytest.raises(mint_async.APITimeoutError) as held:
                await transport.send_once("POST", "api/v1/x", body=b"{}", auth=False, timeout=0.2)
            assert is_read_timeout(held.value)
        finally:
            await transport.aclose()
        tg.cancel_scope.cancel()
    # The listener is closed now: connecting is refused.
    transport = Transport(mock.config(base_url=url, http_client=http_client))
    try:
        with pytest.raises(APIConnectionError) as refused:
            await transport.send_once("POST", "api/v1/x", body=b"{}", auth=False, timeout=0.2)
    finally:
        await transport.aclose()
    assert not is_read_timeout(refused.value)
    assert not is_read_timeout(mint_async.APITimeoutError("connect timed out"))


@pytest.mark.parametrize(
    ("env", "base_url", "expected"),
    [
        ({}, "https://mint.example/", None),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "https://mint.example/", "http://proxy:3128"),
        ({"https_proxy": "proxy:3128"}, "https://mint.example/", "http://proxy:3128"),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "http://mint.example/", None),
        ({"HTTP_PROXY": "http://p:1"}, "http://mint.example/", "http://p:1"),
        ({"ALL_PROXY": "socks5://s:1080"}, "https://mint.example/", "socks5://s:1080"),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "localhost,.example"},
            "https://mint.example/",
            None,
        ),
    ],
)
def test_environment_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], base_url: str, expected: str | None
) -> None:
    """http_client="httpx" takes its proxy from the environment, by scheme, minus NO_PROXY hosts."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert environment_proxy(base_url) == expected


async def test_httpx_client_goes_through_the_environment_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With HTTP_PROXY set, http_client="httpx" sends its requests to the proxy (absolute-form)."""
    seen: list[bytes] = []
    statuses: list[int] = []

    async def proxy(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            seen.append(head.split(b"\r\n", 1)[0])
            body = b'{"detail": "from the proxy"}'
            await stream.send(
                b"HTTP/1.1 418 I'm a teapot\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        for name in ("HTTP_PROXY", "NO_PROXY", "http_proxy", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, proxy)
            config = ClientConfig.resolve(
                base_url="http://mint.invalid:9/", api_key=API_KEY, http_client="httpx"
            )
            transport = Transport(config)
            try:
                with pytest.raises(mint_async.APIStatusError) as caught:
                    await transport.request("GET", "api/v1/healthz", auth=False)
                statuses.append(caught.value.status_code)
            finally:
                await transport.aclose()
            tg.cancel_scope.cancel()
    assert statuses == [418]
    assert seen == [b"GET http://mint.invalid:9/api/v1/healthz HTTP/1.1"]
