"""Reading an answer's body within ``Limits.max_response_bytes`` (issue 12).

A body is refused as soon as it is known to be too large: up front when its
Content-Length says so, else while it streams, and again while it inflates if
the server compressed it unasked. A refused body raises ResponseTooLargeError;
the stream is always left cleanly (see :func:`_read_raw`).
"""

from __future__ import annotations

import anyio
import httpx

from ._exceptions import ResponseTooLargeError

__all__ = ["read_capped"]


async def read_capped(resp: httpx.Response, cap: int | None, subject: str) -> bytes:
    """The decoded body, refused as soon as it is known to exceed ``cap`` bytes (None: no cap)."""
    # An in-memory body is measured exactly below; a header lookup costs a few µs a request.
    in_memory = isinstance(resp.stream, httpx.ByteStream)
    declared = "" if in_memory else resp.headers.get("content-length", "")
    if cap is not None and declared.isdecimal() and int(declared) > cap:
        msg = f"{subject}: the response announces {declared} bytes, over max_response_bytes={cap}"
        raise ResponseTooLargeError(msg)
    raw = await _read_raw(resp, cap, subject)
    coding = resp.headers.get("content-encoding", "").strip().lower()
    return raw if coding in ("", "identity") else _decode(resp.headers, raw, cap, subject)


async def _read_raw(resp: httpx.Response, cap: int | None, subject: str) -> bytes:
    """The raw (still encoded) body, stopped as soon as it passes ``cap`` bytes.

    Stopping early must not abandon the stream's async generators half-way (the
    transport's and, with httpx, httpcore's): trio warns about each one, and their
    cleanup would run at garbage collection. So the read is cancelled instead: the
    next read inside the innermost layer raises, and every layer unwinds through it.
    """
    stream = resp.stream
    if isinstance(stream, httpx.ByteStream):
        # Already in memory (the built-in pool's small answers): nothing to stop early,
        # and no cancel scope to pay for (a large share of a small request's CPU).
        raw = b"".join(stream)
        if cap is not None and len(raw) > cap:
            msg = f"{subject}: the response exceeded max_response_bytes={cap}"
            raise ResponseTooLargeError(msg)
        return raw
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
