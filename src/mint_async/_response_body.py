"""Reading an answer's body within ``Limits.max_response_bytes`` (issue 12), and its headers.

A body is refused as soon as it is known to be too large: up front when its
Content-Length says so, else while it streams, and again while it inflates if
the server compressed it unasked. A refused body raises ResponseTooLargeError;
the stream is always left cleanly (see :func:`_read_stream`).

Answers come from an httpx transport (:func:`read_capped`) or straight from the
built-in pool (:func:`read_raw_capped`, with :class:`RawHeaders`): the same
checks, in the same order, on both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar, overload

import anyio
import httpx

from ._exceptions import ResponseTooLargeError

__all__ = ["RawHeaders", "read_capped", "read_raw_capped"]

_T = TypeVar("_T")


class RawHeaders(Mapping[str, str]):
    """An answer's header fields as received, read like ``httpx.Headers`` (case-insensitive).

    Built per response by the direct path, where building an ``httpx.Headers``
    is a measurable share of a request's CPU: a lookup of a field that occurs
    once with an ASCII value (nearly every lookup) scans the list; anything
    else — repeated fields, other encodings, iteration — is answered by an
    ``httpx.Headers`` built on first need, so every answer is httpx's.
    """

    __slots__ = ("_full", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        self._full: httpx.Headers | None = None

    def _headers(self) -> httpx.Headers:
        if self._full is None:
            self._full = httpx.Headers(self.raw)
        return self._full

    @overload
    def get(self, key: str, /) -> str | None: ...
    @overload
    def get(self, key: str, /, default: str | _T) -> str | _T: ...
    def get(self, key: str, /, default: object = None) -> object:
        """The field's value (repeated fields joined with ``", "``), or ``default``."""
        if key.isascii():
            name = key.lower().encode("ascii")
            found: bytes | None = None
            for field, value in self.raw:
                if field.lower() == name:
                    if found is not None:
                        break  # repeated: httpx joins them
                    found = value
            else:
                if found is None:
                    return default
                if found.isascii():
                    return found.decode("ascii")
        return self._headers().get(key, default)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers())

    def __len__(self) -> int:
        return len(self._headers())

    def __repr__(self) -> str:
        return f"RawHeaders({self.raw!r})"


async def read_capped(resp: httpx.Response, cap: int | None, subject: str) -> bytes:
    """The decoded body, refused as soon as it is known to exceed ``cap`` bytes (None: no cap)."""
    stream = resp.stream
    if isinstance(stream, httpx.ByteStream):
        # Already in memory (the built-in pool's small answers): measured exactly, no
        # cancel scope to pay for (a large share of a small request's CPU).
        raw = _in_memory(b"".join(stream), cap, subject)
    else:
        _check_declared(resp.headers.get("content-length", ""), cap, subject)
        if not isinstance(stream, httpx.AsyncByteStream):  # pragma: no cover - sync-only stream
            raw = await resp.aread()
        else:
            raw = await _read_stream(stream, cap, subject)
    return _decoded(resp.headers, resp.headers, raw, cap, subject)


async def read_raw_capped(
    headers: RawHeaders, body: bytes | httpx.AsyncByteStream, cap: int | None, subject: str
) -> bytes:
    """:func:`read_capped` for an answer of ``Http11Transport.send_raw``; closes a streamed body."""
    if isinstance(body, bytes):
        raw = _in_memory(body, cap, subject)
    else:
        try:
            _check_declared(headers.get("content-length", ""), cap, subject)
            raw = await _read_stream(body, cap, subject)
        finally:
            await body.aclose()
    return _decoded(headers, headers.raw, raw, cap, subject)


def _in_memory(raw: bytes, cap: int | None, subject: str) -> bytes:
    if cap is not None and len(raw) > cap:
        msg = f"{subject}: the response exceeded max_response_bytes={cap}"
        raise ResponseTooLargeError(msg)
    return raw


def _check_declared(declared: str, cap: int | None, subject: str) -> None:
    if cap is not None and declared.isdecimal() and int(declared) > cap:
        msg = f"{subject}: the response announces {declared} bytes, over max_response_bytes={cap}"
        raise ResponseTooLargeError(msg)


def _decoded(
    headers: Mapping[str, str],
    raw_headers: httpx.Headers | list[tuple[bytes, bytes]],
    raw: bytes,
    cap: int | None,
    subject: str,
) -> bytes:
    coding = headers.get("content-encoding", "").strip().lower()
    return raw if coding in ("", "identity") else _decode(raw_headers, raw, cap, subject)


async def _read_stream(stream: httpx.AsyncByteStream, cap: int | None, subject: str) -> bytes:
    """The raw (still encoded) body, stopped as soon as it passes ``cap`` bytes.

    Stopping early must not abandon the stream's async generators half-way (the
    transport's and, with httpx, httpcore's): trio warns about each one, and their
    cleanup would run at garbage collection. So the read is cancelled instead: the
    next read inside the innermost layer raises, and every layer unwinds through it.
    """
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


def _decode(
    headers: httpx.Headers | list[tuple[bytes, bytes]], raw: bytes, cap: int | None, subject: str
) -> bytes:
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
