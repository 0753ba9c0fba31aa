"""One HTTP/1.1 connection of the built-in pool, and the readers of a response body.

:class:`Connection` buffers what the socket gave and hands out lines, heads
and byte counts; :class:`BodyReader` walks one body's framing over it (pure
reads, no deadlines); :class:`BodyStream` is the ``httpx.AsyncByteStream``
of a body that streams, one read deadline per piece (httpx's ``read``
timeout semantics). Deadlines are cancel scopes, which cost CPU on every
request: :func:`read_scope` opens one only when no enclosing scope already
ends sooner (the client's per-attempt deadline usually does).

A plain TCP connection (POSIX) is read and written through a duplicate of its
socket (:func:`_direct_socket`), not through the anyio stream: on asyncio the
stream resumes and pauses the transport's reading around every wait (two
system calls) and adds checkpoints to every send; TLS keeps the stream.
"""

from __future__ import annotations

import glob
import math
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import anyio
import anyio.abc
import anyio.lowlevel
import httpx

from ._http11_parse import MAX_HEAD, Framing, ProtocolError, chunk_size, parse_fields, parse_head

__all__ = [
    "BodyReader",
    "BodyStream",
    "Connection",
    "DeadlinePassed",
    "ReadErrors",
    "WouldWait",
    "read_scope",
]

_READ_SIZE: Final = 65536
_BLANK_LINE: Final = re.compile(rb"\n\r?\n")
_POSIX: Final = os.name == "posix"


def _anyio_version() -> tuple[int, int]:
    """anyio's (major, minor) from its dist-info folder beside it ((0, 0) if not found).

    Not ``importlib.metadata.version``: that costs ~150 ms on first use here."""
    site = os.path.dirname(os.path.dirname(anyio.__file__))
    found: list[tuple[int, int]] = []
    for path in glob.glob(os.path.join(site, "anyio-*.dist-info")):
        match = re.match(r"anyio-(\d+)\.(\d+)", os.path.basename(path))
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return max(found) if len(found) == 1 else (0, 0)


_DIRECT_IO: Final = _anyio_version() >= (4, 16)
"""Direct socket I/O runs on the anyio it is tested with (4.16 and later); older anyio serves
through the stream. (With anyio 4.13-4.15 a cancelled exchange could leave a socket unclosed
for the collector to find, seen as a ResourceWarning in the pipeline's fail-fast test.)"""
_STREAM_ERRORS: Final = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)


class DeadlinePassed(Exception):  # noqa: N818 - a signal, like WouldWait
    """A wait for the socket reached :attr:`Connection.deadline` (the exchange is over).

    The pool's caller sets the deadline of a whole attempt; a wait past it is
    cancelled and this raised, which the caller reports as its timeout. Waits
    are the only places an exchange can stall, so bounding each of them bounds
    the exchange — and one that never waits costs no cancel scope.
    """


class WouldWait(Exception):  # noqa: N818 - a signal, named like anyio.WouldBlock
    """A read needed the socket while :attr:`Connection.waits` allowed no more waits."""


class Connection:
    """One HTTP/1.1 connection: write a request, read an answer, report reusability."""

    __slots__ = (
        "_sent",
        "_socket",
        "answered",
        "buffer",
        "deadline",
        "key",
        "reusable",
        "stream",
        "waits",
    )

    def __init__(self, stream: anyio.abc.ByteStream, key: tuple[str, str, int]) -> None:
        self.stream = stream
        self.key = key
        self._socket = _direct_socket(stream)
        self._sent = False
        self.deadline = math.inf
        """When the current exchange must end (``anyio.current_time()``; see DeadlinePassed)."""
        self.buffer = bytearray()
        self.reusable = False
        self.answered = False
        """Whether any byte of the current answer arrived (decides whether a retry is safe)."""
        self.waits: int | None = None
        """How many more reads may wait for the socket (None: any); past that, WouldWait.

        A read that raises WouldWait consumed nothing, so it can be repeated later.
        """

    def _may_wait(self) -> None:
        if self.waits is not None:
            if self.waits <= 0:
                raise WouldWait
            self.waits -= 1

    async def send(self, data: bytes) -> None:
        """Write ``data`` (a whole request).

        On a plain TCP stream the bytes are written straight to the socket (see
        :func:`_direct_socket`): a request fits in the kernel's send buffer, and
        the stream's ``send`` would add two checkpoints (one a yield to the event
        loop) per request. The stream is idle here — a previous ``send`` returned
        only once its bytes were written (on asyncio anyio waits for the
        transport's buffer to drain; a send cut short discards the connection) —
        so nothing queued can be overtaken. What the socket did not take goes
        through the stream, which waits for room.
        """
        sock = self._socket
        if sock is not None:
            self._sent = True
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        if self.deadline == math.inf:
            await self.stream.send(data)
            return
        with anyio.CancelScope(deadline=self.deadline) as scope:
            await self.stream.send(data)
        if scope.cancelled_caught:
            raise DeadlinePassed

    async def _receive(self) -> bytes:
        """The next bytes from the server, b"" at a clean end of stream (errors raise)."""
        sock = self._socket
        if sock is None:
            if self.deadline == math.inf:
                try:
                    return await self.stream.receive(_READ_SIZE)
                except anyio.EndOfStream:
                    return b""
            with anyio.CancelScope(deadline=self.deadline):
                try:
                    return await self.stream.receive(_READ_SIZE)
                except anyio.EndOfStream:
                    return b""
            raise DeadlinePassed  # reached only when the deadline cancelled the receive
        if self._sent:
            # Let the event loop run once first: the answer is then often in already
            # (a busy client is behind its server), and a read that needs no wait
            # skips registering the socket with the loop and unregistering it
            # (two system calls, and on asyncio a future).
            self._sent = False
            await anyio.lowlevel.checkpoint()
        while True:
            try:
                return sock.recv(_READ_SIZE)
            except BlockingIOError:
                pass
            # Only a read that must wait pays for the deadline's cancel scope.
            if self.deadline == math.inf:
                await anyio.wait_readable(sock)
                continue
            with anyio.CancelScope(deadline=self.deadline) as scope:
                await anyio.wait_readable(sock)
            if scope.cancelled_caught:
                raise DeadlinePassed

    async def _fill(self) -> None:
        self._may_wait()
        try:
            chunk = await self._receive()
        except _STREAM_ERRORS as exc:
            msg = "the server closed the connection"
            raise ProtocolError(msg) from exc
        if not chunk:
            msg = "the server closed the connection"
            raise ProtocolError(msg)
        self.answered = True
        self.buffer += chunk

    async def read_block(self) -> list[bytes]:
        """The lines up to the first empty one (a head or trailers), without their line ends.

        Lines may end in CRLF or a bare LF (RFC 9112 §2.2, as h11 reads them).
        The search resumes where the last one stopped, so a head dripped a byte
        at a time costs linear, not quadratic, time.
        """
        scanned = 0
        buffer = self.buffer
        while True:
            if buffer.startswith((b"\n", b"\r\n")):
                del buffer[: buffer.index(b"\n") + 1]
                return []
            match = _BLANK_LINE.search(buffer, scanned)
            if match is not None:
                end = match.end()
                block = bytes(buffer[:end])
                del buffer[:end]
                lines = block.split(b"\n")[:-2]
                return [line[:-1] if line.endswith(b"\r") else line for line in lines]
            if len(buffer) > MAX_HEAD:
                msg = "response head too large"
                raise ProtocolError(msg)
            scanned = max(0, len(buffer) - 2)
            await self._fill()

    async def read_head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The final status line and header fields: ``(status, http_version, headers)``."""
        while True:
            status, version, headers = parse_head(await self.read_block())
            if status == 101:
                # h11 refuses an upgrade nobody asked for; so do we (we never ask).
                msg = "unexpected 101 Switching Protocols"
                raise ProtocolError(msg)
            if status >= 200:
                return status, version, headers
            # 100 Continue and friends: the real answer follows.

    async def read_exactly(self, n: int) -> bytes:
        """``n`` bytes (waiting for them)."""
        while len(self.buffer) < n:
            await self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_line(self) -> bytes:
        """One CRLF-terminated line (a chunk-size line), without the CRLF."""
        scanned = 0
        while (end := self.buffer.find(b"\r\n", scanned)) < 0:
            if len(self.buffer) > MAX_HEAD:
                msg = "chunk header too large"
                raise ProtocolError(msg)
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
            self._may_wait()
            try:
                chunk = await self._receive()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                msg = "the connection was reset mid-body"
                raise ProtocolError(msg) from exc
            if not chunk:
                return b""
            self.buffer += chunk
        if limit is None or limit >= len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:limit])
            del self.buffer[:limit]
        return data

    async def aclose(self) -> None:
        """Close the socket at once (never waits for the peer)."""
        sock, self._socket = self._socket, None
        if sock is not None:
            anyio.notify_closing(sock)  # trio must forget it before it is closed
            sock.close()
            _duplicates.live -= 1
        await anyio.aclose_forcefully(self.stream)


def _direct_socket(stream: anyio.abc.ByteStream) -> socket.socket | None:
    """A second handle on the socket of a plain TCP stream, for direct reads and writes.

    The built-in pool reads and writes a plain TCP connection through this
    duplicate (non-blocking, like the original: they share one open file),
    waiting with ``anyio.wait_readable`` only when no byte is there: anyio's
    asyncio stream instead resumes and pauses the transport's reading around
    every wait. anyio pauses reading as it connects, and the stream is never
    read, so no byte goes to it. None for TLS, for other streams (tests' scripted
    ones), off POSIX (where waiting on a socket is not the event loop's own) and
    with anyio older than 4.16 (see ``_DIRECT_IO``).
    """
    if not (_POSIX and _DIRECT_IO and isinstance(stream, anyio.abc.SocketStream)):
        return None
    # A duplicate is a second file descriptor per connection: at most a quarter of the
    # process's limit goes to them, so that a low limit still leaves room for as many
    # connections as before (past it, or if dup fails, the stream serves).
    if _duplicates.live >= _duplicates.budget:
        return None
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610 - anyio, not Django
    try:
        dup = socket.socket(fileno=os.dup(raw.fileno()))
        dup.setblocking(False)
    except OSError:
        return None
    _duplicates.live += 1
    return dup


class _Duplicates:
    """How many socket duplicates are open, and how many may be (per process: the fd limit is)."""

    __slots__ = ("budget", "live")

    def __init__(self) -> None:
        self.live = 0
        self.budget = 0
        if _POSIX:
            import resource  # noqa: PLC0415 - POSIX only

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            self.budget = 1 << 30 if soft == resource.RLIM_INFINITY else soft // 4


_duplicates: Final = _Duplicates()


class BodyReader:
    """The pieces of one body, framed per RFC 9112 §6.3, read from a connection (no deadlines)."""

    __slots__ = ("_chunk_left", "_remaining", "conn", "kind")

    def __init__(self, conn: Connection, framing: Framing) -> None:
        self.conn = conn
        self.kind = framing[0]
        self._remaining = framing[1]  # "length": bytes still to come
        self._chunk_left = -1  # "chunked": bytes left in this chunk; -1 before the first

    async def next(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        conn = self.conn
        if self.kind == "length":
            if self._remaining <= 0:
                return None
            chunk = await conn.read_some(self._remaining)
            if not chunk:
                msg = "the server closed the connection mid-body"
                raise ProtocolError(msg)
            self._remaining -= len(chunk)
            return chunk
        if self.kind == "chunked":
            # States: > 0 data left in a chunk; 0 its CRLF next; -1 a size line next;
            # -2 the trailers next. Each read either completes or consumes nothing
            # (WouldWait), so the state is always where the bytes are.
            if self._chunk_left <= 0:
                if self._chunk_left == 0:
                    if await conn.read_exactly(2) != b"\r\n":
                        msg = "malformed chunk: no CRLF after its data"
                        raise ProtocolError(msg)
                    self._chunk_left = -1
                if self._chunk_left == -1:
                    size = chunk_size(await conn.read_line())
                    self._chunk_left = size if size else -2
                if self._chunk_left == -2:
                    parse_fields(await conn.read_block())  # trailers
                    self._chunk_left = -3
                    return None
                if self._chunk_left == -3:
                    return None
            # A chunk is passed on as it arrives, never buffered whole:
            # its size line may announce far more than will ever come.
            chunk = await conn.read_some(self._chunk_left)
            if not chunk:
                msg = "the server closed the connection mid-chunk"
                raise ProtocolError(msg)
            self._chunk_left -= len(chunk)
            return chunk
        # Delimited by the connection's close.
        chunk = await conn.read_some()
        return chunk or None


class BodyStream(httpx.AsyncByteStream):
    """A response body read from the connection as it is consumed; releases it at the end.

    ``prefix`` holds pieces already read (a chunked body that outgrew the inline size).
    """

    def __init__(
        self,
        reader: BodyReader,
        release: Callable[[Connection], Awaitable[None]],
        read_timeout: float | None,
        prefix: list[bytes] | None = None,
    ) -> None:
        self._reader = reader
        self._conn: Connection | None = reader.conn
        self._release = release
        self._timeout = read_timeout
        self._prefix = prefix or []
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._conn is None:
            return
        try:
            prefix, self._prefix = self._prefix, []
            for piece in prefix:
                yield piece
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
        # httpx's read timeout bounds each wait for bytes, not the whole body (the
        # client's per-attempt deadline does that, in _transport).
        with ReadErrors(read_scope(self._timeout)):
            return await self._reader.next()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._reader.kind != "close" and conn.reusable:
            await self._release(conn)
        else:
            with anyio.CancelScope(shield=True):
                await conn.aclose()


def read_scope(timeout: float | None, enclosing: float | None = None) -> anyio.CancelScope | None:
    """A cancel scope ending ``timeout`` s from now, or None when none is needed.

    None when there is no timeout, or when an enclosing scope already ends by
    then (the transport's per-attempt deadline, of the same length, started
    earlier): the inner deadline could never fire first, and entering and
    leaving a scope is a large share of a small request's CPU time.
    ``enclosing`` is ``anyio.current_effective_deadline()`` if the caller has it.
    """
    if timeout is None:
        return None
    deadline = anyio.current_time() + timeout
    if enclosing is None:
        enclosing = anyio.current_effective_deadline()
    if enclosing <= deadline:
        return None
    return anyio.CancelScope(deadline=deadline)


class ReadErrors:
    """``with ReadErrors(scope)``: enters ``scope`` (if any), a timeout and a protocol error translated."""

    __slots__ = ("_scope",)

    def __init__(self, scope: anyio.CancelScope | None) -> None:
        self._scope = scope

    def __enter__(self) -> None:
        if self._scope is not None:
            self._scope.__enter__()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        scope = self._scope
        if scope is not None and scope.__exit__(exc_type, exc, tb) and exc_type is not None:
            raise httpx.ReadTimeout("timed out reading the response") from None
        if isinstance(exc, ProtocolError):
            raise httpx.RemoteProtocolError(str(exc)) from exc
