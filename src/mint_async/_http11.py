"""A lean HTTP/1.1 keep-alive connection pool on anyio streams, behind ``httpx.AsyncBaseTransport``.

httpx's default transport (httpcore) spends most of a request's CPU time in
pool bookkeeping that grows with concurrency (encode/httpcore#1035): against a
local server it managed ~76 sample requests/s at 512 in flight, where a bare
aiohttp loop does ~1,000 (PERFORMANCE_NOTES.md, benchmarks/bench_client.py).
This transport does only what the Tinker API needs — requests with a
``bytes`` body, responses with ``Content-Length``, chunked or close-delimited
bodies, keep-alive, TLS — on anyio, so it runs on asyncio *and* trio.

It does not do HTTP/2, proxies or request-body streaming; choose httpx's
transport for those (``ClientConfig(http_client="httpx")``).

Errors are httpx's (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``, …)
so callers translate them exactly as for httpx's own transport. A request on a
reused keep-alive connection that fails before any byte of the answer arrived
(the server closed the idle connection) is retried once on a new connection.

The parser accepts what h11 (httpx's parser) accepts and rejects what it
rejects: the grammar below is RFC 9112's as h11 applies it (bare-LF line ends,
obsolete line folding, an optional reason phrase, one Transfer-Encoding that
must be ``chunked``, Content-Length lists that must agree). A hypothesis test
(tests/test_http11_fuzz.py) checks the two against each other byte for byte.
Timeouts are httpx's too: ``read`` bounds each wait for bytes, not the whole
response; the client's total deadline per attempt lives in ``_transport``. A
deadline that an enclosing cancel scope already enforces sooner is not set
again (a cancel scope is a large share of a small request's CPU).

The client's own transport calls :meth:`Http11Transport.send_raw` with the
request's bytes and gets ``(status, fields, body)`` back — no httpx Request,
Response or Headers per exchange; ``handle_async_request`` (the httpx
interface, for downloads and for users who plug the pool in) wraps it. On a
plain TCP connection the bytes go straight to and from the socket, waiting
with ``anyio.wait_readable`` only when none is there (:mod:`._http11_conn`).

Modules: the grammar in :mod:`._http11_parse`, the connection and body readers
in :mod:`._http11_conn`, the pool here.
"""

from __future__ import annotations

import math
import ssl
from typing import Final, NamedTuple

import anyio
import anyio.abc
import httpx

from ._http11_conn import (
    BodyReader,
    BodyStream,
    Connection,
    DeadlinePassed,
    ReadErrors,
    WouldWait,
    read_scope,
)
from ._http11_parse import framing as _framing

__all__ = ["STREAM_BODY", "DeadlinePassed", "Http11Transport", "RawAnswer"]

_INLINE_BODY: Final = 8 * 1024 * 1024
"""Bodies up to this size (with a Content-Length) are read before returning; larger ones stream."""
_INLINE_CHUNKED: Final = 1024 * 1024
"""Chunked bodies are read before returning while they stay under this size (then they stream)."""

STREAM_BODY: Final = "mint_async.stream_body"
"""A request extension: when true, the body always streams (never read inline)."""

_Connection = Connection
"""The connection class under its old name (tests script connections through ``_connect``)."""

Key = tuple[str, str, int]


class RawAnswer(NamedTuple):
    """An answer as the pool read it: no httpx objects (see :meth:`Http11Transport.send_raw`)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    """The header fields as received (names in the server's case)."""
    body: bytes | BodyStream
    """The whole body, or a stream of it (large, slow, or ``stream_body``)."""


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None, float | None]:
    raw: dict[str, float | None] = request.extensions.get("timeout", {})
    return raw.get("connect"), raw.get("read"), raw.get("write")


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive pool on anyio (asyncio and trio). ``max_idle`` connections are kept per host.

    Bodies with a Content-Length up to ``max_inline`` bytes (at most 8 MiB) are read
    before the response is returned; larger ones stream, so a caller capping the
    size can refuse them from the header before a byte of the body is read.
    Chunked bodies are read before returning while they stay under 1 MiB (and
    ``max_inline``) and arrive with, or right after, the head; otherwise the rest streams.
    """

    def __init__(
        self,
        *,
        max_idle: int = 512,
        ssl_context: ssl.SSLContext | None = None,
        max_inline: int = _INLINE_BODY,
    ) -> None:
        self._idle: dict[Key, list[Connection]] = {}
        self._max_idle = max_idle
        self._ssl_context = ssl_context
        self._max_inline = min(max_inline, _INLINE_BODY)
        self._max_chunked = min(self._max_inline, _INLINE_CHUNKED)
        self._closed = False
        # The pool key of a URL object, by identity: callers reuse their parsed URLs,
        # and reading scheme, host and port off an httpx.URL costs more than the lookup.
        self._keys: dict[int, tuple[httpx.URL, Key]] = {}

    async def _connect(self, key: Key, timeout: float | None) -> Connection:
        scheme, host, port = key
        try:
            with anyio.fail_after(timeout if timeout is not None else float("inf")):
                if scheme == "https":
                    context = self._ssl_context or ssl.create_default_context()
                    context.set_alpn_protocols(["http/1.1"])
                    stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                        host,
                        port,
                        tls=True,
                        ssl_context=context,
                        tls_hostname=host,
                        tls_standard_compatible=False,
                    )
                else:
                    stream = await anyio.connect_tcp(host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, anyio.BrokenResourceError) as exc:
            # BrokenResourceError: a TLS handshake the server broke off.
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return Connection(stream, key)

    async def _connect_by(self, key: Key, timeout: float | None, deadline: float) -> Connection:
        """:meth:`_connect`, cut off at ``deadline`` (DeadlinePassed) as well as by ``timeout``."""
        if deadline == math.inf:
            return await self._connect(key, timeout)
        with anyio.CancelScope(deadline=deadline):
            return await self._connect(key, timeout)
        raise DeadlinePassed  # reached only when the deadline cancelled the connect

    def _key(self, url: httpx.URL) -> Key:
        known = self._keys.get(id(url))
        if known is not None and known[0] is url:
            return known[1]
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        if len(self._keys) >= 1024:
            self._keys.clear()
        self._keys[id(url)] = (url, key)
        return key

    async def release(self, conn: Connection) -> None:
        """Return a connection whose answer was fully read to the idle pool (or close it)."""
        if not self._keep(conn):
            await _discard(conn)

    def _keep(self, conn: Connection) -> bool:
        """Put ``conn`` in the idle pool; False when it must be closed instead."""
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        if self._closed or len(idle) >= self._max_idle:
            return False
        idle.append(conn)
        return True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its answer (the body is read unless it is large)."""
        if self._closed:
            msg = "transport is closed"
            raise httpx.ConnectError(msg, request=request)
        connect_timeout, read_timeout, write_timeout = _timeouts(request)
        # A ByteStream is in memory (read it without httpx's bookkeeping); others are read.
        body = (
            b"".join(request.stream)
            if isinstance(request.stream, httpx.ByteStream)
            else await request.aread()
        )
        head = [f"{request.method} ".encode(), request.url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        head.append(body)
        status, headers, content = await self.send_raw(
            request.method,
            request.url,
            b"".join(head),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            stream_body=bool(request.extensions.get(STREAM_BODY)),
        )
        # stream=, not content=: httpx would decode a Content-Encoding (unbounded)
        # and re-derive headers; the caller reads (and caps) the raw body.
        stream = httpx.ByteStream(content) if isinstance(content, bytes) else content
        return httpx.Response(status, headers=headers, stream=stream, request=request)

    async def send_raw(
        self,
        method: str,
        url: httpx.URL,
        payload: bytes,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        stream_body: bool = False,
        deadline: float = math.inf,
    ) -> RawAnswer:
        """Send a request already on the wire format (head and body) and return its answer.

        The direct path of the client's own transport: no httpx Request or
        Response is built. The answer's body is bytes when it was read inline,
        else a :class:`BodyStream` the caller must read to its end or close.
        ``stream_body``: always stream the body (downloads). ``deadline``
        (``anyio.current_time()``) ends the exchange, connecting and a streamed
        body included: a wait past it raises :class:`DeadlinePassed`.
        """
        if self._closed:
            msg = "transport is closed"
            raise httpx.ConnectError(msg)
        key = self._key(url)
        for attempt in range(2):
            idle = self._idle.get(key)
            reused = bool(idle)
            conn = idle.pop() if idle else await self._connect_by(key, connect_timeout, deadline)
            conn.deadline = deadline
            conn.answered = False
            try:
                return await self._exchange(
                    conn, method, payload, read_timeout, write_timeout, stream_body
                )
            except (httpx.RemoteProtocolError, httpx.WriteError) as exc:
                await _discard(conn)
                # A keep-alive connection the server had closed: nothing was answered, retry once.
                if not (reused and attempt == 0 and not conn.answered):
                    raise
                del exc
            except BaseException:
                await _discard(conn)
                raise
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)

    async def _exchange(
        self,
        conn: Connection,
        method: str,
        payload: bytes,
        read_timeout: float | None,
        write_timeout: float | None,
        stream_body: bool,
    ) -> RawAnswer:
        enclosing = (
            float("inf")
            if read_timeout is None and write_timeout is None
            else anyio.current_effective_deadline()
        )
        scope = read_scope(write_timeout, enclosing)
        try:
            if scope is None:
                await conn.send(payload)
            else:
                with scope:
                    await conn.send(payload)
                if scope.cancelled_caught:
                    raise httpx.WriteTimeout("timed out sending the request")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise httpx.WriteError(f"sending the request failed: {exc}") from exc
        content: bytes | None = None
        reader: BodyReader | None = None
        parts: list[bytes] = []
        # One deadline for the head and a small body (one cancel scope, if any: speed).
        with ReadErrors(read_scope(read_timeout, enclosing)):
            status, version, headers = await conn.read_head()
            framing, conn.reusable = _framing(method, status, version, headers)
            kind, length = framing
            # STREAM_BODY (downloads) always streams: a per-read timeout and the caller's
            # own rate floor bound it, not one deadline for the whole body.
            if stream_body:
                reader = BodyReader(conn, framing)
            elif kind == "length" and length <= self._max_inline:
                content = await conn.read_exactly(length) if length else b""
            elif kind == "chunked":
                # Read inline while small and arriving: a server usually writes the
                # head, then the whole body, so the body's first bytes are waited for
                # (once), the rest only read if it is already here. A body still
                # incomplete then, or past the inline size, streams (the pieces read
                # so far first): a chunked answer may be a slow stream.
                reader = BodyReader(conn, framing)
                size = 0
                conn.waits = 0 if conn.buffer else 1
                try:
                    while size <= self._max_chunked:
                        piece = await reader.next()
                        if piece is None:
                            content, reader = b"".join(parts), None
                            break
                        parts.append(piece)
                        size += len(piece)
                except WouldWait:
                    pass
                finally:
                    conn.waits = None
            else:
                reader = BodyReader(conn, framing)
        if content is not None:
            if not (conn.reusable and self._keep(conn)):
                await _discard(conn)
            return RawAnswer(status, headers, content)
        assert reader is not None
        return RawAnswer(status, headers, BodyStream(reader, self.release, read_timeout, parts))

    async def aclose(self) -> None:
        """Close every idle connection."""
        self._closed = True
        idle, self._idle = self._idle, {}
        self._keys.clear()
        with anyio.CancelScope(shield=True):
            for conns in idle.values():
                for conn in conns:
                    await conn.aclose()


async def _discard(conn: Connection) -> None:
    with anyio.CancelScope(shield=True):
        await conn.aclose()
