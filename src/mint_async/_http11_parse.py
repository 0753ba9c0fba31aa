"""The HTTP/1.1 response grammar of the built-in pool (:mod:`._http11`), as h11 applies it.

RFC 9112 §4 (status line), §5 (field lines, obsolete line folding), §6.3
(message body length) and §7.1 (chunked coding), read the way h11 (httpx's
parser) reads them: bare-LF line ends, an optional reason phrase, one
Transfer-Encoding that must be ``chunked``, Content-Length lists that must
agree. Pure functions on bytes; the connection that feeds them is in
:mod:`._http11_conn`. tests/test_http11_fuzz.py checks the pool against h11
byte for byte.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "MAX_HEAD",
    "ProtocolError",
    "chunk_size",
    "framing",
    "parse_fields",
    "parse_head",
]

MAX_HEAD: Final = 64 * 1024
"""The longest head (or chunk-size line, or trailer block) accepted."""

_TOKEN: Final = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_CONTENT: Final = rb"[^\x00\s]+(?:[ \t]+[^\x00\s]+)*"
_STATUS_LINE: Final = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: (?:[ \t]|[^\x00\s])*)?")
_FIELD_LINE: Final = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(" + _FIELD_CONTENT + rb")?[ \t]*")
_OBS_FOLD: Final = re.compile(rb"[ \t]+")
_CHUNK_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
_DIGITS: Final = re.compile(rb"[0-9]{1,20}")
_QUOTE: Final = 12
"""Bytes of a rejected line quoted in an error: enough to tell HTML or HTTP/2, too few to leak a key."""

Framing = tuple[str, int]
"""How a body is delimited: ``("length", n)``, ``("chunked", 0)`` or ``("close", 0)``."""


class ProtocolError(Exception):
    """The server broke HTTP/1.1 (the pool raises it as ``httpx.RemoteProtocolError``)."""


def parse_head(lines: list[bytes]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """``(status, http_version, headers)`` of a head's lines (line ends removed)."""
    if not lines:
        msg = "no status line"
        raise ProtocolError(msg)
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        msg = f"malformed status line {lines[0][:_QUOTE]!r}"
        raise ProtocolError(msg)
    status = int(match[2])
    if status < 100:
        msg = f"status code {status} out of range"
        raise ProtocolError(msg)
    return status, match[1], parse_fields(lines[1:])


def parse_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Header (or trailer) field lines; obsolete line folding joins a line to the one before."""
    unfolded: list[bytes] = []
    for line in lines:
        if line[:1] not in (b" ", b"\t"):
            unfolded.append(line)
            continue
        fold = _OBS_FOLD.match(line)
        assert fold is not None
        if not unfolded:
            msg = "continuation line at start of headers"
            raise ProtocolError(msg)
        unfolded[-1] += b" " + line[fold.end() :]
    headers: list[tuple[bytes, bytes]] = []
    for number, line in enumerate(unfolded, 1):
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            # Not quoted: a server may echo a credential there, and a cut-off quote
            # would slip past the client's redaction of whole secrets.
            msg = f"malformed header line (field {number}, {len(line)} bytes)"
            raise ProtocolError(msg)
        headers.append((match[1], match[2] or b""))
    return headers


def framing(
    method: str, status: int, version: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[Framing, bool]:
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
                    raise ProtocolError(msg)
                if length is not None and length != single:
                    msg = "conflicting Content-Length headers"
                    raise ProtocolError(msg)
                length = single
            case b"transfer-encoding":
                if chunked or value.lower() != b"chunked":
                    msg = f"unsupported Transfer-Encoding {value[:_QUOTE]!r}"
                    raise ProtocolError(msg)
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


def chunk_size(line: bytes) -> int:
    """The size announced by a chunk-size line (RFC 9112 §7.1; extensions ignored)."""
    match = _CHUNK_LINE.fullmatch(line)
    if match is None:
        msg = f"malformed chunk size line {line[:_QUOTE]!r}"
        raise ProtocolError(msg)
    return int(match[1], 16)
