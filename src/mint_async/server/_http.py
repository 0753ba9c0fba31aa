"""Requests, responses and HTTP errors of the raw ASGI app (no framework).

Every error answer is JSON ``{"detail": ...}`` with an explicit, non-zero
``Content-Length`` (tinker treats a 400 without one as a Cloudflare artefact
and retries it, protocol §1/§6.5).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs

from mint_async import _codec

__all__ = [
    "DropConnection",
    "HTTPError",
    "Request",
    "Response",
    "StreamResponse",
    "error_response",
    "json_response",
]

JSON: Final = b"application/json"

Headers = list[tuple[bytes, bytes]]


class DropConnection(Exception):  # noqa: N818 - a control signal, not an error condition
    """Close the connection without an answer (fault injection: the work was accepted)."""


@dataclass(eq=False)
class HTTPError(Exception):
    """An error answer: status, a human-readable detail, extra headers."""

    status: int
    detail: str
    headers: Headers = field(default_factory=list[tuple[bytes, bytes]])
    body: bytes | None = None
    """A JSON body to send instead of ``{"detail": ...}`` (e.g. a 408's try_again)."""


@dataclass(eq=False, slots=True)
class Request:
    """One HTTP request; its body is read after the credential check."""

    method: str
    path: str
    query_string: bytes
    headers: dict[bytes, bytes]
    body: bytes
    scheme: str = "http"
    server: tuple[str, int] | None = None
    """The local address the client connected to (ASGI ``scope["server"]``)."""
    owner: str = ""
    """The authenticated user (set by the app after the credential check)."""
    complete: bool = False
    """Whether the body has been read whole (set by the app)."""

    def header(self, name: bytes) -> str | None:
        """A header value (name in lower case), decoded as latin-1."""
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    def query(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = parse_qs(self.query_string.decode("latin-1")).get(name)
        return values[0] if values else default

    def query_int(self, name: str, default: int, *, minimum: int = 0) -> int:
        """An integer query parameter; 400 when malformed or below ``minimum``."""
        raw = self.query(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise HTTPError(400, f"query parameter {name} must be an integer") from None
        if value < minimum:
            raise HTTPError(400, f"query parameter {name} must be >= {minimum}")
        return value

    def base_url(self) -> str:
        """``scheme://host[:port]`` of the address the client connected to.

        Never the ``Host`` header: a client chooses that freely, and links built
        from it (archive redirects) would point wherever the client said.
        """
        if self.server is None:
            return f"{self.scheme}://localhost"
        host, port = self.server
        host = f"[{host}]" if ":" in host else host
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{host}" if port == default else f"{self.scheme}://{host}:{port}"


@dataclass(eq=False, slots=True)
class Response:
    """A complete answer."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: Headers = field(default_factory=list[tuple[bytes, bytes]])

    def raw_headers(self) -> Headers:
        """Headers to send, with Content-Type and Content-Length."""
        base = [(b"content-type", self.content_type), (b"content-length", b"%d" % len(self.body))]
        return base + self.headers if self.headers else base


@dataclass(eq=False, slots=True)
class StreamResponse:
    """An answer whose body is produced in chunks."""

    status: int
    chunks: AsyncIterator[bytes]
    content_type: bytes
    headers: Headers = field(default_factory=list[tuple[bytes, bytes]])
    length: int | None = None

    def raw_headers(self) -> Headers:
        """Headers to send."""
        base = [(b"content-type", self.content_type)]
        if self.length is not None:
            base.append((b"content-length", b"%d" % self.length))
        return base + self.headers


def json_response(
    value: object, status: int = 200, headers: Iterable[tuple[bytes, bytes]] = ()
) -> Response:
    """A JSON answer of a wire Struct (or plain data) or pre-encoded bytes."""
    body = value if isinstance(value, bytes) else _codec.encode(value)
    return Response(status, body, JSON, list(headers))


def error_response(err: HTTPError) -> Response:
    """The answer for an HTTPError (never an empty body)."""
    body = err.body if err.body is not None else _codec.encode({"detail": err.detail})
    return Response(err.status, body, JSON, err.headers)
