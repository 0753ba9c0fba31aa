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
"""

from __future__ import annotations

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

    async def read_head(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                status, headers = _parse_head(head)
                if 100 <= status < 200 and status != 101:
                    continue  # 100 Continue and friends: the real answer follows
                return status, headers
            if len(self.buffer) > _MAX_HEAD:
                msg = "response head too large"
                raise _ProtocolError(msg)
            await self._fill()

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > _MAX_HEAD:
                msg = "chunk header too large"
                raise _ProtocolError(msg)
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    async def read_some(self) -> bytes:
        """Whatever is buffered, or the next chunk from the socket (b"" at EOF)."""
        if not self.buffer:
            try:
                chunk = await self.stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return b""
            self.buffer += chunk
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


def _parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        msg = f"malformed status line {lines[0][:80]!r}"
        raise _ProtocolError(msg)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name:
            msg = f"malformed header line {line[:80]!r}"
            raise _ProtocolError(msg)
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


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

    async def __aiter__(self) -> AsyncIterator[bytes]:
        kind, remaining = self._framing
        conn = self._conn
        if conn is None:
            return
        try:
            with _ReadErrors(self._timeout) as scope:
                while True:
                    scope.deadline = anyio.current_time() + (self._timeout or float("inf"))
                    if kind == "length":
                        if remaining <= 0:
                            break
                        chunk = await conn.read_some()
                        if not chunk:
                            msg = "the server closed the connection mid-body"
                            raise _ProtocolError(msg)
                        if len(chunk) > remaining:  # pipelined bytes must not exist; keep them
                            conn.buffer[:0] = chunk[remaining:]
                            chunk = chunk[:remaining]
                        remaining -= len(chunk)
                        yield chunk
                    elif kind == "chunked":
                        size_line = await conn.read_line()
                        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                        if size == 0:
                            while await conn.read_line():
                                pass  # trailers
                            break
                        data = await conn.read_exactly(size)
                        await conn.read_exactly(2)
                        yield data
                    else:  # delimited by connection close
                        chunk = await conn.read_some()
                        if not chunk:
                            break
                        yield chunk
            self._done = True
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._framing[0] != "close" and conn.reusable:
            await self._transport.release(conn)
        else:
            with anyio.CancelScope(shield=True):
                await conn.aclose()


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
    """HTTP/1.1 keep-alive pool on anyio (asyncio and trio). ``max_idle`` connections are kept per host."""

    def __init__(self, *, max_idle: int = 512, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._max_idle = max_idle
        self._ssl_context = ssl_context
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
        except OSError as exc:
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
            status, headers = await conn.read_head()
        connection = (_header(headers, b"connection") or b"").lower()
        conn.reusable = connection != b"close"
        encoding = (_header(headers, b"transfer-encoding") or b"").lower()
        length = _header(headers, b"content-length")
        if request.method == "HEAD" or status in (204, 304):
            framing: tuple[str, int] = ("length", 0)
        elif b"chunked" in encoding:
            framing = ("chunked", 0)
        elif length is not None and length.strip().isdigit():
            framing = ("length", int(length))
        else:
            framing = ("close", 0)
            conn.reusable = False
        if framing[0] == "length" and framing[1] <= _INLINE_BODY:
            with _ReadErrors(read_timeout):
                content = await conn.read_exactly(framing[1])
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
