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
response; the client's total deadline per attempt lives in ``_transport``.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
import anyio.abc
import httpx

__all__ = ["Http11Transport"]

_READ_SIZE: Final = 65536
_MAX_HEAD: Final = 64 * 1024
_INLINE_BODY: Final = 8 * 1024 * 1024
"""Bodies up to this size (with a Content-Length) are read before returning; larger ones stream."""

STREAM_BODY: Final = "mint_async.stream_body"
"""A request extension: when true, the body always streams (never read inline)."""

# RFC 9112 §4 (status line), §5 (field lines, obs-fold), §7.1 (chunks), as h11 reads them.
_TOKEN: Final = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_CONTENT: Final = rb"[^\x00\s]+(?:[ \t]+[^\x00\s]+)*"
_STATUS_LINE: Final = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: (?:[ \t]|[^\x00\s])*)?")
_FIELD_LINE: Final = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(" + _FIELD_CONTENT + rb")?[ \t]*")
_OBS_FOLD: Final = re.compile(rb"[ \t]+")
_CHUNK_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
_BLANK_LINE: Final = re.compile(rb"\n\r?\n")
_DIGITS: Final = re.compile(rb"[0-9]{1,20}")
_QUOTE: Final = 12
"""Bytes of a rejected line quoted in an error: enough to tell HTML or HTTP/2, too few to leak a key."""


class _ProtocolError(Exception):
    pass


class _Connection:
    """One HTTP/1.1 connection: write a request, read an answer, report reusability."""

    def __init__(self, stream: anyio.abc.ByteStream, key: tuple[str, str, int]) -> None:
        self.stream = stream
        self.key = key
        self.buffer = bytearray()
        self.reusable = False
        self.answered = False
        """Whether any byte of the current answer arrived (decides whether a retry is safe)."""

    async def _fill(self) -> None:
        try:
            chunk = await self.stream.receive(_READ_SIZE)
        except (
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
        ) as exc:
            msg = "the server closed the connection"
            raise _ProtocolError(msg) from exc
        if chunk:
            self.answered = True
        self.buffer += chunk

    async def read_block(self) -> list[bytes]:
        """The lines up to the first empty one (a head or trailers), without their line ends.

        Lines may end in CRLF or a bare LF (RFC 9112 §2.2, as h11 reads them).
        The search resumes where the last one stopped, so a head dripped a byte
        at a time costs linear, not quadratic, time.
        """
        scanned = 0
        while True:
            if self.buffer.startswith((b"\n", b"\r\n")):
                del self.buffer[: self.buffer.index(b"\n") + 1]
                return []
            match = _BLANK_LINE.search(self.buffer, scanned)
            if match is not None:
                block = bytes(self.buffer[: match.end()])
                del self.buffer[: match.end()]
                lines = block.split(b"\n")[:-2]
                return [line[:-1] if line.endswith(b"\r") else line for line in lines]
            if len(self.buffer) > _MAX_HEAD:
                msg = "response head too large"
                raise _ProtocolError(msg)
            scanned = max(0, len(self.buffer) - 2)
            await self._fill()

    async def read_head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The final status line and header fields: ``(status, http_version, headers)``."""
        while True:
            status, version, headers = _parse_head(await self.read_block())
            if status == 101:
                # h11 refuses an upgrade nobody asked for; so do we (we never ask).
                msg = "unexpected 101 Switching Protocols"
                raise _ProtocolError(msg)
            if status >= 200:
                return status, version, headers
            # 100 Continue and friends: the real answer follows.

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_line(self) -> bytes:
        """One CRLF-terminated line (a chunk-size line), without the CRLF."""
        scanned = 0
        while (end := self.buffer.find(b"\r\n", scanned)) < 0:
            if len(self.buffer) > _MAX_HEAD:
                msg = "chunk header too large"
                raise _ProtocolError(msg)
            scanned = max(0, len(self.buffer) - 1)
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    async def read_some(self, limit: int | None = None) -> bytes:
        """Up to ``limit`` buffered bytes, or the next chunk from the socket (b"" at EOF).

        Only a clean close is an end: a reset raises, so that a body delimited by
        the connection's close is never taken as complete when it was cut off.
        """
        if not self.buffer:
            try:
                chunk = await self.stream.receive(_READ_SIZE)
            except anyio.EndOfStream:
                return b""
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                msg = "the connection was reset mid-body"
                raise _ProtocolError(msg) from exc
            self.buffer += chunk
        if limit is None or limit >= len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:limit])
            del self.buffer[:limit]
        return data

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


def _parse_head(lines: list[bytes]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    if not lines:
        msg = "no status line"
        raise _ProtocolError(msg)
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        msg = f"malformed status line {lines[0][:_QUOTE]!r}"
        raise _ProtocolError(msg)
    status = int(match[2])
    if status < 100:
        msg = f"status code {status} out of range"
        raise _ProtocolError(msg)
    return status, match[1], _parse_fields(lines[1:])


def _parse_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Header (or trailer) field lines; obsolete line folding joins a line to the one before."""
    unfolded: list[bytes] = []
    for line in lines:
        fold = _OBS_FOLD.match(line)
        if fold is None:
            unfolded.append(line)
        elif not unfolded:
            msg = "continuation line at start of headers"
            raise _ProtocolError(msg)
        else:
            unfolded[-1] += b" " + line[fold.end() :]
    headers: list[tuple[bytes, bytes]] = []
    for number, line in enumerate(unfolded, 1):
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            # Not quoted: a server may echo a credential there, and a cut-off quote
            # would slip past the client's redaction of whole secrets.
            msg = f"malformed header line (field {number}, {len(line)} bytes)"
            raise _ProtocolError(msg)
        headers.append((match[1], match[2] or b""))
    return headers


def _framing(
    method: str, status: int, version: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[tuple[str, int], bool]:
    """How the body is delimited (RFC 9112 §6.3) and whether the connection stays open.

    Conflicting or malformed framing headers are errors, never guesses: a
    request smuggled past one reading of them must not be read another way.
    """
    length: bytes | None = None
    chunked = False
    close = version < b"1.1"
    for name, value in headers:
        match name.lower():
            case b"content-length":
                values = {v.strip() for v in value.split(b",")}
                single = values.pop() if len(values) == 1 else None
                if single is None or not _DIGITS.fullmatch(single):
                    msg = f"bad Content-Length {value[:_QUOTE]!r}"
                    raise _ProtocolError(msg)
                if length is not None and length != single:
                    msg = "conflicting Content-Length headers"
                    raise _ProtocolError(msg)
                length = single
            case b"transfer-encoding":
                if chunked or value.lower() != b"chunked":
                    msg = f"unsupported Transfer-Encoding {value[:_QUOTE]!r}"
                    raise _ProtocolError(msg)
                chunked = True
            case b"connection":
                if b"close" in (v.strip().lower() for v in value.split(b",")):
                    close = True
            case _:
                pass
    if method == "HEAD" or status in (204, 304):
        return ("length", 0), not close
    if chunked:
        return ("chunked", 0), not close
    if length is not None:
        return ("length", int(length)), not close
    return ("close", 0), False


class _BodyStream(httpx.AsyncByteStream):
    """A response body read from the connection as it is consumed; releases it at the end."""

    def __init__(
        self,
        transport: Http11Transport,
        conn: _Connection,
        framing: tuple[str, int],
        read_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._framing = framing
        self._timeout = read_timeout
        self._done = False
        self._remaining = framing[1]  # "length": bytes still to come
        self._chunk_left = -1  # "chunked": bytes left in this chunk; -1 before the first

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._conn is None:
            return
        try:
            while (chunk := await self._next_chunk()) is not None:
                # Never yield inside a cancel scope: a consumer that stops early (an
                # exception, a break) would leave the scope open and corrupt its task's
                # scope stack. Each read has its own scope instead.
                yield chunk
            self._done = True
        finally:
            await self.aclose()

    async def _next_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end (one read deadline per call)."""
        conn = self._conn
        assert conn is not None
        kind = self._framing[0]
        # httpx's read timeout bounds each wait for bytes, not the whole body (the
        # client's per-attempt deadline does that, in _transport).
        with _ReadErrors(self._timeout):
            if kind == "length":
                if self._remaining <= 0:
                    return None
                chunk = await conn.read_some(self._remaining)
                if not chunk:
                    msg = "the server closed the connection mid-body"
                    raise _ProtocolError(msg)
                self._remaining -= len(chunk)
                return chunk
            if kind == "chunked":
                if self._chunk_left <= 0:
                    if self._chunk_left == 0 and await conn.read_exactly(2) != b"\r\n":
                        msg = "malformed chunk: no CRLF after its data"
                        raise _ProtocolError(msg)
                    self._chunk_left = _chunk_size(await conn.read_line())
                    if self._chunk_left == 0:
                        _parse_fields(await conn.read_block())  # trailers
                        return None
                # A chunk is passed on as it arrives, never buffered whole:
                # its size line may announce far more than will ever come.
                chunk = await conn.read_some(self._chunk_left)
                if not chunk:
                    msg = "the server closed the connection mid-chunk"
                    raise _ProtocolError(msg)
                self._chunk_left -= len(chunk)
                return chunk
            # Delimited by the connection's close.
            chunk = await conn.read_some()
            return chunk or None

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._framing[0] != "close" and conn.reusable:
            await self._transport.release(conn)
        else:
            with anyio.CancelScope(shield=True):
                await conn.aclose()


def _chunk_size(line: bytes) -> int:
    match = _CHUNK_LINE.fullmatch(line)
    if match is None:
        msg = f"malformed chunk size line {line[:_QUOTE]!r}"
        raise _ProtocolError(msg)
    return int(match[1], 16)


class _ReadErrors:
    """``with _ReadErrors(t) as scope``: a cancel scope with a deadline, errors translated."""

    def __init__(self, timeout: float | None) -> None:
        deadline = anyio.current_time() + timeout if timeout is not None else float("inf")
        self._scope = anyio.CancelScope(deadline=deadline)

    def __enter__(self) -> anyio.CancelScope:
        return self._scope.__enter__()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        timed_out = self._scope.__exit__(exc_type, exc, tb) and exc_type is not None
        if timed_out:
            raise httpx.ReadTimeout("timed out reading the response") from None
        if isinstance(exc, _ProtocolError):
            raise httpx.RemoteProtocolError(str(exc)) from exc


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None, float | None]:
    raw: dict[str, float | None] = request.extensions.get("timeout", {})
    return raw.get("connect"), raw.get("read"), raw.get("write")


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive pool on anyio (asyncio and trio). ``max_idle`` connections are kept per host.

    Bodies with a Content-Length up to ``max_inline`` bytes (at most 8 MiB) are read
    before the response is returned; larger ones stream, so a caller capping the
    size can refuse them from the header before a byte of the body is read.
    """

    def __init__(
        self,
        *,
        max_idle: int = 512,
        ssl_context: ssl.SSLContext | None = None,
        max_inline: int = _INLINE_BODY,
    ) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._max_idle = max_idle
        self._ssl_context = ssl_context
        self._max_inline = min(max_inline, _INLINE_BODY)
        self._closed = False

    async def _connect(self, key: tuple[str, str, int], timeout: float | None) -> _Connection:
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
        return _Connection(stream, key)

    async def release(self, conn: _Connection) -> None:
        """Return a connection whose answer was fully read to the idle pool (or close it)."""
        idle = self._idle.setdefault(conn.key, [])
        if self._closed or len(idle) >= self._max_idle:
            await _discard(conn)
            return
        idle.append(conn)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its answer (the body is read unless it is large or chunked)."""
        if self._closed:
            msg = "transport is closed"
            raise httpx.ConnectError(msg, request=request)
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        connect_timeout, read_timeout, write_timeout = _timeouts(request)
        body = (
            request.content
            if isinstance(request.stream, httpx.ByteStream)
            else await request.aread()
        )
        head = [f"{request.method} ".encode(), url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        payload = b"".join(head) + body
        for attempt in range(2):
            idle = self._idle.get(key)
            reused = bool(idle)
            conn = idle.pop() if idle else await self._connect(key, connect_timeout)
            conn.answered = False
            try:
                return await self._exchange(conn, request, payload, read_timeout, write_timeout)
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
        conn: _Connection,
        request: httpx.Request,
        payload: bytes,
        read_timeout: float | None,
        write_timeout: float | None,
    ) -> httpx.Response:
        try:
            with anyio.fail_after(write_timeout if write_timeout is not None else float("inf")):
                await conn.stream.send(payload)
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request") from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise httpx.WriteError(f"sending the request failed: {exc}") from exc
        with _ReadErrors(read_timeout):
            status, version, headers = await conn.read_head()
            framing, conn.reusable = _framing(request.method, status, version, headers)
            content: bytes | None = None
            # STREAM_BODY (downloads) always streams: a per-read timeout and the caller's
            # own rate floor bound it, not one deadline for the whole body.
            inline = not request.extensions.get(STREAM_BODY)
            if inline and framing[0] == "length" and framing[1] <= self._max_inline:
                # One deadline for the head and a small body (one cancel scope: speed).
                content = await conn.read_exactly(framing[1])
        if content is not None:
            if conn.reusable:
                await self.release(conn)
            else:
                await _discard(conn)
            return httpx.Response(status, headers=headers, content=content, request=request)
        stream = _BodyStream(self, conn, framing, read_timeout)
        return httpx.Response(status, headers=headers, stream=stream, request=request)

    async def aclose(self) -> None:
        """Close every idle connection."""
        self._closed = True
        idle, self._idle = self._idle, {}
        with anyio.CancelScope(shield=True):
            for conns in idle.values():
                for conn in conns:
                    await conn.aclose()


async def _discard(conn: _Connection) -> None:
    with anyio.CancelScope(shield=True):
        await conn.aclose()
