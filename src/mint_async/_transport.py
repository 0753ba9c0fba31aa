"""HTTP transport: the only module that imports httpx.

It owns one ``httpx.AsyncClient`` per traffic class (session, train, sample,
retrieve), each behind an anyio ``CapacityLimiter`` so that, e.g., a thousand
held ``retrieve_future`` long polls queue among themselves and never starve a
submission. It adds the headers every request carries, bootstraps
``client/config`` and the JWT exchange, retries per protocol §6, and translates
httpx's errors into ours at exactly one place (:func:`_map_transport_errors`).

A hostile or broken server cannot hang, flood or leak through it (issue 12):

* every attempt has one deadline covering connect, send and the *whole* answer
  (a body dripped a byte at a time does not reset it), and retries stop within
  ``RetryPolicy.give_up_after``, so a call ends within that plus one attempt;
* bodies are capped by ``Limits.max_response_bytes`` (Content-Length checked up
  front, bytes counted as they stream);
* only our typed errors come out (garbage ``Retry-After`` is ignored, broken
  framing is a RemoteProtocolError, retried like a connection error);
* the API key and session tokens are redacted from error bodies and messages,
  and never sent to another origin (redirects are not followed).

Any ``httpx.AsyncBaseTransport`` can be plugged in (``MockTransport`` for fault
scripts, ``ASGITransport`` for an in-process server, a faster transport from
the package index); the default is httpx's own.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import platform
import time
import urllib.request
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import msgspec
import orjson

from . import _codec
from . import types as t
from ._config import PROTOCOL_SDK_VERSION, ClientConfig, TrafficClass
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ClientClosedError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    PromiseExpiredError,
    RateLimitError,
    RemoteProtocolError,
    ResponseTooLargeError,
    UnprocessableEntityError,
)
from ._http11 import STREAM_BODY, Http11Transport
from ._redaction import redact, redact_bytes, scrub_chain
from ._retry import backoff_delay, should_retry_status
from ._retry import sleep as backoff_sleep
from ._version import __version__

__all__ = [
    "Response",
    "Transport",
    "environment_proxy",
    "is_read_timeout",
    "log_decision",
    "status_error",
]

logger = logging.getLogger("mint_async")

USER_AGENT: Final = f"mint_async/{__version__} (Python {platform.python_version()}; tinker-protocol {PROTOCOL_SDK_VERSION})"
_TRAFFIC: Final[tuple[TrafficClass, ...]] = ("session", "train", "sample", "retrieve")
_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BillingError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: PromiseExpiredError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_BODY_PREVIEW: Final = 2000
_BILLING_STEP: Final = 5.0
_OLD_TOKENS: Final = 4
"""Session tokens remembered for redaction after a refresh (a server may echo an old one)."""


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer with the whole body read; header lookups are case-insensitive."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def content_type(self) -> str:
        """The Content-Type header (empty if absent)."""
        return self.headers.get("content-type", "")


def _body_of(response: Response) -> object:
    preview = response.content[:_BODY_PREVIEW]
    try:
        parsed: object = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return preview.decode("utf-8", "replace")
    return parsed


def status_error(response: Response, *, request_id: str | None = None) -> APIStatusError:
    """The APIStatusError subclass for an error response (message like the SDK's)."""
    body = _body_of(response)
    cls = _STATUS_ERRORS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIStatusError
    text = response.content[:_BODY_PREVIEW].decode("utf-8", "replace")
    message = f"Error code: {response.status_code} - {text}"
    return cls(message, status_code=response.status_code, body=body, request_id=request_id)


@contextlib.contextmanager
def _map_transport_errors(what: str, secrets: tuple[str, ...] = ()) -> Generator[None]:
    """Translate httpx's transport exceptions into ours (never mentioning credentials)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        msg = f"{what} timed out ({type(exc).__name__})"
        raise APITimeoutError(msg) from exc
    except (httpx.RemoteProtocolError, httpx.DecodingError) as exc:
        scrub_chain(exc, secrets)
        msg = redact(f"{what} failed: the server broke the protocol: {exc}", secrets)
        raise RemoteProtocolError(msg) from exc
    except httpx.RequestError as exc:
        scrub_chain(exc, secrets)
        msg = redact(f"{what} failed: {type(exc).__name__}: {exc}", secrets)
        raise APIConnectionError(msg) from exc


async def _read_raw(resp: httpx.Response, cap: int | None, subject: str) -> bytes:
    """The raw (still encoded) body, stopped as soon as it passes ``cap`` bytes.

    Stopping early must not abandon the stream's async generators half-way (the
    transport's and, with httpx, httpcore's): trio warns about each one, and their
    cleanup would run at garbage collection. So the read is cancelled instead: the
    next read inside the innermost layer raises, and every layer unwinds through it.
    """
    stream = resp.stream
    if not isinstance(stream, httpx.AsyncByteStream):  # pragma: no cover - sync-only stream
        return await resp.aread()
    parts: list[bytes] = []
    size = 0
    # The scope must enclose the stream's first read: the transport's generators open
    # cancel scopes of their own, which must nest inside this one.
    with anyio.CancelScope() as drain:
        async for part in stream:
            size += len(part)
            if cap is not None and size > cap:
                drain.cancel()  # data still buffered is drained and dropped
            else:
                parts.append(part)
    if cap is not None and size > cap:
        msg = f"{subject}: the response exceeded max_response_bytes={cap}"
        raise ResponseTooLargeError(msg)
    return b"".join(parts)


def _decode(headers: httpx.Headers, raw: bytes, cap: int | None, subject: str) -> bytes:
    """A body decoded per its Content-Encoding, counted against ``cap`` as it inflates.

    We never ask for an encoding, but a server may send one anyway. It is decoded
    by httpx in 64 KiB steps (sync, so nothing is left for trio's finalizers), so
    a compression bomb stops within one step (about 64 MiB) of the cap; a broken
    encoding raises httpx.DecodingError, a RemoteProtocolError at the boundary.
    """
    step = 65536
    pieces = (raw[i : i + step] for i in range(0, len(raw), step))
    encoded = httpx.Response(200, headers=headers, content=pieces)
    parts: list[bytes] = []
    size = 0
    for part in encoded.iter_bytes():
        size += len(part)
        if cap is not None and size > cap:
            msg = f"{subject}: the decoded response exceeded max_response_bytes={cap}"
            raise ResponseTooLargeError(msg)
        parts.append(part)
    return b"".join(parts)


def environment_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url``, as ``httpx.AsyncClient(trust_env=True)`` reads it.

    ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (either case) by the URL's
    scheme, none when ``NO_PROXY`` covers the host. Used by
    ``http_client="httpx"``; the built-in pool connects directly.
    """
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(url.host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def is_read_timeout(exc: BaseException) -> bool:
    """Whether a transport failure was a timeout *waiting for the response*.

    The connection was made and the request sent, so the server is alive and
    holding it (a long poll held past our read timeout). Connect, write and
    pool timeouts, refusals and resets are not: those are connection errors.
    """
    return isinstance(exc, APITimeoutError) and isinstance(exc.__cause__, httpx.ReadTimeout)


def log_decision(
    subject: str,
    *,
    attempt: int,
    status: int | None,
    action: str,
    reason: str,
    delay: float | None = None,
) -> None:
    """Log one retry decision at DEBUG: what was tried, how it ended, what happens next and why.

    ``action`` is one word: ``retry`` (after ``delay`` s), ``repoll`` (at once),
    ``refresh`` (the token, then replay), ``pause`` (billing), ``resubmit``,
    ``raise`` (not retryable) or ``give_up`` (retries exhausted). The record
    also carries the fields as ``retry_action``, ``retry_reason``,
    ``retry_attempt``, ``retry_status`` and ``retry_delay`` for structured handlers.
    """
    if not logger.isEnabledFor(logging.DEBUG):
        return
    outcome = f"status {status}" if status is not None else "no response"
    then = f"{action} in {delay:.2f} s" if delay is not None else action
    logger.debug(
        "%s: attempt %d got %s; %s: %s",
        subject,
        attempt,
        outcome,
        then,
        reason,
        extra={
            "retry_action": action,
            "retry_reason": reason,
            "retry_attempt": attempt,
            "retry_status": status,
            "retry_delay": delay,
        },
    )


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


class Transport:
    """Sends requests to one server; create one per ServiceClient and close it with ``aclose``."""

    def __init__(
        self, config: ClientConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._user_transport = transport
        self._pools: dict[TrafficClass, httpx.AsyncBaseTransport] = {}
        self._limiters = {tc: anyio.CapacityLimiter(config.limits.for_class(tc)) for tc in _TRAFFIC}
        self._server_config: t.ClientConfigResponse | None = None
        self._bootstrap_lock = anyio.Lock()
        self._jwt: str | None = None
        self._old_jwts: list[str] = []
        self._jwt_refresh_at = 0.0
        self._jwt_expires_at = 0.0
        self._jwt_lock = anyio.Lock()
        self._closed = False
        self._billing_started: float | None = None
        base = config.base_url.rstrip("/") + "/"
        self._base = base
        self._urls: dict[str, httpx.URL] = {}
        self._headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            **config.default_headers,
        }

    def __repr__(self) -> str:
        return f"Transport(base_url={self.config.base_url!r}, closed={self._closed})"

    # -- lifecycle -----------------------------------------------------------------

    def _pool(self, traffic: TrafficClass) -> httpx.AsyncBaseTransport:
        """The connection pool of a traffic class (created on first use)."""
        if self._closed:
            msg = "this client is closed"
            raise ClientClosedError(msg)
        pool = self._pools.get(traffic)
        if pool is None:
            if self._user_transport is not None:
                pool = self._user_transport
            elif self.config.http_client == "httpx" or self.config.http2:
                cap = self.config.limits.for_class(traffic)
                limits = httpx.Limits(
                    max_connections=cap + 16,
                    max_keepalive_connections=min(cap, self.config.limits.keepalive),
                )
                pool = httpx.AsyncHTTPTransport(
                    limits=limits,
                    http2=self.config.http2,
                    retries=0,
                    proxy=environment_proxy(self._base),
                )
            else:
                # One lean pool serves every class; the limiters keep the classes apart.
                shared = next(
                    (p for p in self._pools.values() if isinstance(p, Http11Transport)), None
                )
                most = self.config.limits.max_response_bytes
                pool = shared or Http11Transport(
                    max_idle=self.config.limits.keepalive,
                    max_inline=most if most is not None else 1 << 62,
                )
            self._pools[traffic] = pool
        return pool

    def _url(self, path: str) -> httpx.URL:
        """The URL of an API path (absolute URLs pass through), parsed once per path."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(path if path.startswith(("http://", "https://")) else self._base + path)
            if len(self._urls) < 1024:
                self._urls[path] = url
        return url

    def _timeout(self, seconds: float | None) -> dict[str, object]:
        """httpx's per-request timeout extension (connect from the config, the rest ``seconds``)."""
        limit = seconds if seconds is not None else self.config.timeouts.request
        timeouts = {
            "connect": self.config.timeouts.connect,
            "read": limit,
            "write": limit,
            "pool": limit,
        }
        return {"timeout": timeouts}

    async def aclose(self) -> None:
        """Close every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        pools = {id(p): p for p in self._pools.values()}
        self._pools = {}
        with anyio.CancelScope(shield=True):
            for pool in pools.values():
                await pool.aclose()
            if self._user_transport is not None and id(self._user_transport) not in pools:
                await self._user_transport.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` ran."""
        return self._closed

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials to redact from anything a server sends back: the key and its tokens."""
        jwt = (self._jwt,) if self._jwt is not None else ()
        return (self.config.api_key, *jwt, *self._old_jwts)

    # -- bootstrap and auth --------------------------------------------------------

    async def server_config(self) -> t.ClientConfigResponse:
        """``client/config`` (fetched once); a server without it (404) gets the defaults."""
        if self._server_config is not None:
            return self._server_config
        async with self._bootstrap_lock:
            if self._server_config is None:
                body = _codec.encode(t.ClientConfigRequest(sdk_version=PROTOCOL_SDK_VERSION))
                try:
                    resp = await self.request(
                        "POST", "api/v1/client/config", body=body, traffic="session", auth=False
                    )
                    self._server_config = _codec.decode(t.ClientConfigResponse, resp.content)
                except NotFoundError:
                    logger.debug("server has no client/config endpoint; using defaults")
                    self._server_config = t.ClientConfigResponse()
        return self._server_config

    async def _credential(self, *, force_refresh: bool = False) -> str:
        config = await self.server_config()
        if not config.pjwt_auth_enabled or self.config.api_key.startswith("eyJ"):
            return self.config.api_key
        now = time.time()
        if not force_refresh and self._jwt is not None and now < self._jwt_refresh_at:
            return self._jwt
        async with self._jwt_lock:
            now = time.time()
            if not force_refresh and self._jwt is not None and now < self._jwt_refresh_at:
                return self._jwt
            try:
                resp = await self.request(
                    "POST", "api/v1/auth/token", body=b"{}", traffic="session", auth=False
                )
                token = _codec.decode(t.AuthTokenResponse, resp.content).jwt
            except (APIConnectionError, APIStatusError) as exc:
                if self._jwt is not None and now < self._jwt_expires_at - 5:
                    logger.warning(
                        "JWT refresh failed (%s); using the current token", type(exc).__name__
                    )
                    return self._jwt
                raise
            exp, iat = _jwt_times(token)
            now = time.time()
            if exp is None:
                # Unparseable expiry: treat as short-lived and refresh soon.
                self._jwt_refresh_at, self._jwt_expires_at = now + 60, now + 120
            else:
                lifetime = exp - (iat if iat is not None else now)
                self._jwt_refresh_at = exp - max(60.0, 0.1 * lifetime)
                self._jwt_expires_at = exp
            if self._jwt is not None:
                self._old_jwts = [self._jwt, *self._old_jwts][:_OLD_TOKENS]
            self._jwt = token
            logger.debug("obtained a session token (expires in %.0f s)", self._jwt_expires_at - now)
            return token

    # -- sending ---------------------------------------------------------------------

    async def send_once(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        traffic: TrafficClass = "train",
        timeout: float | None = None,
        auth: bool = True,
        credential: str | None = None,
    ) -> Response:
        """One HTTP exchange: any status comes back as a Response; transport failures raise."""
        pool = self._pool(traffic)
        hdrs = dict(self._headers)
        if method != "GET":
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        key = (
            credential
            if credential is not None
            else (await self._credential() if auth else self.config.api_key)
        )
        hdrs["X-API-Key"] = key
        request = httpx.Request(
            method, self._url(path), content=body, headers=hdrs, extensions=self._timeout(timeout)
        )
        limit = timeout if timeout is not None else self.config.timeouts.request
        subject = f"{method} /{path.split('?', 1)[0]}"
        async with self._limiters[traffic]:
            with _map_transport_errors(subject, self.secrets):
                # One deadline for the whole attempt: httpx's read timeout bounds each
                # wait for bytes, so a server dripping a byte per interval would
                # otherwise hold the call forever (issue 12). It starts once the
                # limiter admits the request: queueing behind our own traffic is not
                # the server's slowness.
                with anyio.move_on_after(limit):
                    return await self._exchange(pool, request, subject)
                # A deadline hit is reported as a read timeout (is_read_timeout): the
                # connect timeout, shorter, fires first inside the transport.
                msg = f"the response did not complete within {limit:g} s"
                raise httpx.ReadTimeout(msg, request=request)

    async def _exchange(
        self, pool: httpx.AsyncBaseTransport, request: httpx.Request, subject: str
    ) -> Response:
        resp = await pool.handle_async_request(request)
        try:
            content = await self._read_capped(resp, subject)
        finally:
            await resp.aclose()
        if resp.status_code >= 300:
            # Error bodies end up in exception messages and logs: no credentials there.
            content = redact_bytes(content, self.secrets)
        return Response(resp.status_code, resp.headers, content)

    async def _read_capped(self, resp: httpx.Response, subject: str) -> bytes:
        """The body, refused as soon as it is known to exceed ``Limits.max_response_bytes``."""
        cap = self.config.limits.max_response_bytes
        declared = resp.headers.get("content-length", "")
        if cap is not None and declared.isdecimal() and int(declared) > cap:
            msg = (
                f"{subject}: the response announces {declared} bytes, over max_response_bytes={cap}"
            )
            raise ResponseTooLargeError(msg)
        raw = await _read_raw(resp, cap, subject)
        coding = resp.headers.get("content-encoding", "").strip().lower()
        return raw if coding in ("", "identity") else _decode(resp.headers, raw, cap, subject)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        traffic: TrafficClass = "train",
        timeout: float | None = None,
        max_retries: int | None = None,
        auth: bool = True,
        expect_redirect: bool = False,
        on_retry: Callable[[int | None], None] | None = None,
    ) -> Response:
        """Send with the protocol's HTTP-level retries; error statuses raise APIStatusError.

        ``on_retry(status)`` is called before each retry (``None`` for transport
        errors) — the pipeline uses it to shrink its window on 429s.

        The body (and so any ``seq_id`` in it) and the idempotency key stay the
        same on every retry, so a deduplicating server runs the request once.
        """
        policy = self.config.retry
        retries_allowed = policy.max_retries if max_retries is None else max_retries
        hdrs = dict(headers or {})
        if method != "GET":
            hdrs.setdefault("X-Idempotency-Key", f"mint-async-{uuid.uuid4()}")
        started = time.monotonic()
        retries = 0
        attempt = 0
        replayed_auth = False
        subject = f"{method} /{path.split('?', 1)[0]}"
        while True:
            attempt += 1
            reason: str
            delay_headers: Mapping[str, str] | None = None
            failed_status: int | None = None  # for on_retry: None means a transport failure
            answered: int | None = None  # for the log
            try:
                resp = await self.send_once(
                    method,
                    path,
                    body=body,
                    headers=hdrs,
                    traffic=traffic,
                    timeout=timeout,
                    auth=auth,
                )
            except APIConnectionError as exc:
                failure: BaseException = exc
                reason = f"connection error: {exc}"
            else:
                status = answered = resp.status_code
                if status < 300 or (expect_redirect and 300 <= status < 400):
                    self._billing_started = None
                    return resp
                if (
                    status == 401
                    and auth
                    and not replayed_auth
                    and self._jwt is not None
                    and "invalid_token" in resp.headers.get("www-authenticate", "")
                ):
                    replayed_auth = True
                    log_decision(
                        subject,
                        attempt=attempt,
                        status=status,
                        action="refresh",
                        reason="401 invalid_token: the token is refreshed once and the request replayed",
                    )
                    await self._credential(force_refresh=True)
                    continue
                if (
                    status == 400
                    and not resp.content
                    and resp.headers.get("content-length", "0") == "0"
                ):
                    failure = APIConnectionError(f"{subject}: empty 400 (proxy reset)")
                    reason = "empty 400 treated as a connection reset"
                elif status == 402:
                    await self.billing_pause(resp, subject=subject, attempt=attempt)
                    continue
                else:
                    retryable, reason = should_retry_status(status, resp.headers)
                    failure = status_error(resp)
                    failed_status = status
                    if not retryable:
                        log_decision(
                            subject, attempt=attempt, status=status, action="raise", reason=reason
                        )
                        raise failure
                    delay_headers = resp.headers
            elapsed = time.monotonic() - started
            if retries >= retries_allowed or elapsed >= policy.give_up_after:
                limit = (
                    f"{retries} of {retries_allowed} retries used"
                    if retries >= retries_allowed
                    else f"{elapsed:.1f} s of give_up_after={policy.give_up_after:g} s used"
                )
                log_decision(
                    subject,
                    attempt=attempt,
                    status=answered,
                    action="give_up",
                    reason=f"{reason} ({limit})",
                )
                raise failure
            # Never sleep past the budget: the last retry starts by give_up_after at the
            # latest, so the call ends within give_up_after plus one attempt's deadline.
            delay = min(
                backoff_delay(retries, policy, delay_headers), policy.give_up_after - elapsed
            )
            retries += 1
            if on_retry is not None:
                on_retry(failed_status)
            log_decision(
                subject,
                attempt=attempt,
                status=answered,
                action="retry",
                reason=f"{reason} (retry {retries} of {retries_allowed})",
                delay=delay,
            )
            await backoff_sleep(delay)

    def end_billing_pause(self) -> None:
        """Forget an earlier 402: the next one starts a new billing window (the server answered)."""
        self._billing_started = None

    async def billing_pause(
        self, resp: Response, *, subject: str = "request", attempt: int = 1
    ) -> None:
        """Wait out a 402 in 5 s steps within the billing window (protocol §5.5, §6.2).

        The window starts at the first 402 and ends with any successful answer
        (:meth:`end_billing_pause`); a 402 after it raises BillingError.
        """
        now = time.monotonic()
        if self._billing_started is None:
            self._billing_started = now
        config = await self.server_config()
        window = min(
            self.config.retry.billing_pause, float(config.billing_exception_max_pause_duration_sec)
        )
        waited = now - self._billing_started
        if waited >= window:
            self._billing_started = None
            log_decision(
                subject,
                attempt=attempt,
                status=resp.status_code,
                action="raise",
                reason=f"402 after the billing window ({waited:.0f} s of {window:g} s)",
            )
            raise status_error(resp)
        logger.warning("billing problem (402); pausing requests for 5 s")
        log_decision(
            subject,
            attempt=attempt,
            status=resp.status_code,
            action="pause",
            reason=f"402 within the billing window ({waited:.0f} s of {window:g} s)",
            delay=_BILLING_STEP,
        )
        await backoff_sleep(_BILLING_STEP)

    async def post_json(
        self, path: str, payload: msgspec.Struct, *, traffic: TrafficClass = "train", **kwargs: Any
    ) -> Response:
        """POST an encoded Struct with retries."""
        return await self.request(
            "POST", path, body=_codec.encode(payload), traffic=traffic, **kwargs
        )

    @contextlib.asynccontextmanager
    async def stream_get(
        self, url: str, *, timeout: float | None = None
    ) -> AsyncGenerator[tuple[AsyncIterator[bytes], int | None]]:
        """Stream the body of a GET to an absolute URL (or a path on this server).

        Yields the body's chunks and its Content-Length (None if not sent). The
        API key is sent only to this server, never to a third-party URL.
        """
        pool = self._pool("train")
        hdrs = dict(self._headers)
        target = self._url(url)
        base = httpx.URL(self._base)
        # The key goes to this server's origin only (scheme, host and port), never to
        # the storage a signed URL points at.
        if (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port):
            hdrs["X-API-Key"] = await self._credential()
        extensions = {**self._timeout(timeout), STREAM_BODY: True}
        request = httpx.Request("GET", target, headers=hdrs, extensions=extensions)
        subject = f"GET {url.split('?', 1)[0]}"
        with _map_transport_errors(subject, self.secrets):
            resp = await pool.handle_async_request(request)
            try:
                if resp.status_code >= 300:
                    content = await self._read_capped(resp, subject)
                    raise status_error(
                        Response(
                            resp.status_code,
                            resp.headers,
                            redact_bytes(content, self.secrets),
                        )
                    )
                length = resp.headers.get("content-length")
                yield resp.aiter_bytes(), int(length) if length and length.isdecimal() else None
            finally:
                await resp.aclose()
