"""HTTP transport: sends the client's requests, with the protocol's retries, to one server.

It owns one connection pool per traffic class (session, train, sample,
retrieve; :mod:`._pools` picks them), each behind a first-come-first-served
limit (:class:`._pools.Slots`) so that, e.g., a thousand held
``retrieve_future`` long polls queue among themselves and never starve a
submission. Each request is built by
:mod:`._request_builder` (URL, headers, framing), with the credential
:mod:`._auth` gives it (it also bootstraps ``client/config``); the transport
retries per protocol §6, waits out billing pauses, and lets only our exceptions
out: httpx's are translated at one place (:mod:`._errors`). httpx is used at run
time by this layer alone (here, ``_errors``, ``_pools``, ``_request_builder``,
``_response_body`` and the built-in pool ``_http11``); the clients name its types
in annotations only.

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
the package index); the default is the built-in HTTP/1.1 pool.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import msgspec

from . import _codec
from . import types as t
from ._auth import Credentials
from ._config import ClientConfig, TrafficClass
from ._errors import is_read_timeout as is_read_timeout
from ._errors import log_decision as log_decision
from ._errors import map_transport_errors
from ._errors import status_error as status_error
from ._exceptions import APIConnectionError, ClientClosedError
from ._http11 import DeadlinePassed, Http11Transport
from ._pools import Slots, open_pool
from ._pools import environment_proxy as environment_proxy
from ._redaction import redact_bytes
from ._request_builder import USER_AGENT as USER_AGENT
from ._request_builder import RequestBuilder
from ._response_body import RawHeaders, read_capped, read_raw_capped
from ._retry import BillingWindow, backoff_delay, should_retry_status
from ._retry import sleep as backoff_sleep

__all__ = [
    "Response",
    "Transport",
    "environment_proxy",
    "is_read_timeout",
    "log_decision",
    "status_error",
]

logger = logging.getLogger("mint_async")

_TRAFFIC: Final[tuple[TrafficClass, ...]] = ("session", "train", "sample", "retrieve")


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


class Transport:
    """Sends requests to one server; create one per ServiceClient and close it with ``aclose``."""

    def __init__(
        self, config: ClientConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._user_transport = transport
        self._pools: dict[TrafficClass, httpx.AsyncBaseTransport] = {}
        self._limiters = {tc: Slots(config.limits.for_class(tc)) for tc in _TRAFFIC}
        self._credentials = Credentials(config.api_key, self._session_post)
        self._closed = False
        self._billing = BillingWindow()
        self._requests = RequestBuilder(config)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.config.base_url!r}, closed={self._closed})"

    # -- lifecycle -----------------------------------------------------------------

    def _pool(self, traffic: TrafficClass) -> httpx.AsyncBaseTransport:
        """The connection pool of a traffic class (opened on first use)."""
        if self._closed:
            msg = "this client is closed"
            raise ClientClosedError(msg)
        pool = self._pools.get(traffic)
        if pool is None:
            pool = self._pools[traffic] = open_pool(
                self.config,
                traffic,
                base_url=self._requests.base,
                user_transport=self._user_transport,
                open_pools=self._pools.values(),
            )
        return pool

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
        return self._credentials.secrets

    # -- bootstrap and auth --------------------------------------------------------

    async def server_config(self) -> t.ClientConfigResponse:
        """``client/config`` (fetched once); a server without it (404) gets the defaults."""
        return await self._credentials.server_config()

    async def _session_post(self, path: str, body: bytes) -> bytes:
        """A bootstrap request (``client/config``, ``auth/token``): no credential, with retries."""
        resp = await self.request("POST", path, body=body, traffic="session", auth=False)
        return resp.content

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
        key = (
            credential
            if credential is not None
            else (await self._credentials.key() if auth else self.config.api_key)
        )
        request: httpx.Request | None = None
        direct: tuple[Http11Transport, httpx.URL, bytes] | None = None
        if isinstance(pool, Http11Transport):
            # The built-in pool takes the request's bytes and answers without httpx
            # objects (building them was a large share of a small request's CPU).
            url, payload = self._requests.wire(method, path, body=body, headers=headers, key=key)
            direct = (pool, url, payload)
        else:
            request = self._requests.api(
                method,
                path,
                body=body,
                headers=headers,
                key=key,
                timeout=timeout,
                deadline_only=False,
            )
        limit = timeout if timeout is not None else self.config.timeouts.request
        subject = f"{method} /{path.split('?', 1)[0]}"
        limiter = self._limiters[traffic]
        # A free slot is taken without a checkpoint (``async with`` yields to the
        # loop once per request, a large share of a small request's CPU).
        if not limiter.take_nowait():
            await limiter.take()
        try:
            with map_transport_errors(subject, self.secrets):
                # One deadline for the whole attempt: httpx's read timeout bounds each
                # wait for bytes, so a server dripping a byte per interval would
                # otherwise hold the call forever (issue 12). It starts once the
                # limiter admits the request: queueing behind our own traffic is not
                # the server's slowness.
                if direct is not None:
                    # The built-in pool bounds each of its waits by the deadline (an
                    # exchange that never waits costs no cancel scope).
                    deadline = anyio.current_time() + limit
                    try:
                        return await self._exchange_direct(
                            *direct, method.upper(), subject, deadline
                        )
                    except DeadlinePassed:
                        pass
                else:
                    assert request is not None
                    with anyio.move_on_after(limit):
                        return await self._exchange(pool, request, subject)
                # A deadline hit is reported as a read timeout (is_read_timeout): the
                # connect timeout, shorter, fires first inside the transport.
                msg = f"the response did not complete within {limit:g} s"
                raise httpx.ReadTimeout(msg, request=request)
        finally:
            limiter.release()

    async def _exchange_direct(
        self,
        pool: Http11Transport,
        url: httpx.URL,
        payload: bytes,
        method: str,
        subject: str,
        deadline: float,
    ) -> Response:
        # The pool gets only a connect timeout and the attempt's deadline, which covers
        # the whole exchange (a streamed body too: its reads wait on the connection).
        status, raw, body = await pool.send_raw(
            method, url, payload, connect_timeout=self.config.timeouts.connect, deadline=deadline
        )
        headers = RawHeaders(raw)
        content = await read_raw_capped(
            headers, body, self.config.limits.max_response_bytes, subject
        )
        if status >= 300:
            # Error bodies end up in exception messages and logs: no credentials there.
            content = redact_bytes(content, self.secrets)
        return Response(status, headers, content)

    async def _exchange(
        self, pool: httpx.AsyncBaseTransport, request: httpx.Request, subject: str
    ) -> Response:
        resp = await pool.handle_async_request(request)
        try:
            content = await read_capped(resp, self.config.limits.max_response_bytes, subject)
        finally:
            # An in-memory body holds nothing to release (and closing it costs a context
            # manager per request).
            if not isinstance(resp.stream, httpx.ByteStream):
                await resp.aclose()
        if resp.status_code >= 300:
            # Error bodies end up in exception messages and logs: no credentials there.
            content = redact_bytes(content, self.secrets)
        return Response(resp.status_code, resp.headers, content)

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
                    self._billing.end()
                    return resp
                if (
                    status == 401
                    and auth
                    and not replayed_auth
                    and self._credentials.tokens.current is not None
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
                    await self._credentials.key(force_refresh=True)
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
        self._billing.end()

    async def billing_pause(
        self, resp: Response, *, subject: str = "request", attempt: int = 1
    ) -> None:
        """Wait out a 402 within the billing window, or raise BillingError after it (see BillingWindow)."""
        config = await self.server_config()
        window = min(
            self.config.retry.billing_pause, float(config.billing_exception_max_pause_duration_sec)
        )
        await self._billing.pause(resp, window=window, subject=subject, attempt=attempt)

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
        target = self._requests.url(url)
        # The key goes to this server's origin only (scheme, host and port), never to
        # the storage a signed URL points at.
        key = await self._credentials.key() if self._requests.is_ours(target) else None
        request = self._requests.download(target, key=key, timeout=timeout)
        subject = f"GET {url.split('?', 1)[0]}"
        with map_transport_errors(subject, self.secrets):
            resp = await pool.handle_async_request(request)
            try:
                if resp.status_code >= 300:
                    content = await read_capped(
                        resp, self.config.limits.max_response_bytes, subject
                    )
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
