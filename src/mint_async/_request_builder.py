"""What one request to the server looks like on the wire: URL, headers, framing, timeouts.

The transport decides *when* to send and what to do with the answer; this module
builds the ``httpx.Request`` itself. URLs are parsed once per path and their
Host header once per URL; the framing headers (Host, Content-Length) are set
here and the body handed over as a ready stream, because letting
``httpx.Request(content=...)`` derive them costs about three times as much CPU
(a large share of a small request's, measured in ``benchmarks/profile_client.py``).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Final

import httpx

from ._config import PROTOCOL_SDK_VERSION, ClientConfig
from ._http11 import STREAM_BODY
from ._version import __version__

__all__ = ["USER_AGENT", "RequestBuilder"]

USER_AGENT: Final = f"mint_async/{__version__} (Python {platform.python_version()}; tinker-protocol {PROTOCOL_SDK_VERSION})"
_CACHED: Final = 1024
"""Paths (and URLs) whose parsed form is kept; more are parsed per request."""


class RequestBuilder:
    """Builds the requests of one transport (one server, one configuration)."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self.base = config.base_url.rstrip("/") + "/"
        """The server's base URL, ending in ``/``."""
        self._base_url = httpx.URL(self.base)
        self._urls: dict[str, httpx.URL] = {}
        self._hosts: dict[int, tuple[httpx.URL, str]] = {}
        self._targets: dict[tuple[str, str], tuple[httpx.URL, str]] = {}
        self._connect_only = {
            "connect": config.timeouts.connect,
            "read": None,
            "write": None,
            "pool": None,
        }
        self._headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            **config.default_headers,
        }

    def url(self, path: str) -> httpx.URL:
        """The URL of an API path (absolute URLs pass through), parsed once per path."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(path if path.startswith(("http://", "https://")) else self.base + path)
            if len(self._urls) < _CACHED:
                self._urls[path] = url
        return url

    def _host(self, url: httpx.URL) -> str:
        """The Host header of a URL, cached by URL object (``url`` reuses them)."""
        known = self._hosts.get(id(url))
        if known is not None and known[0] is url:
            return known[1]
        host = url.netloc.decode("ascii")
        if len(self._hosts) >= _CACHED:
            self._hosts.clear()
        self._hosts[id(url)] = (url, host)
        return host

    def timeouts(self, seconds: float | None) -> dict[str, object]:
        """httpx's per-request timeout extension (connect from the config, the rest ``seconds``)."""
        limit = seconds if seconds is not None else self._config.timeouts.request
        timeouts = {
            "connect": self._config.timeouts.connect,
            "read": limit,
            "write": limit,
            "pool": limit,
        }
        return {"timeout": timeouts}

    def _fields(
        self,
        method: str,
        url: httpx.URL,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        key: str,
    ) -> dict[str, str]:
        """The header fields of an API request, in the order they are sent."""
        hdrs = dict(self._headers)
        if method != "GET":
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        hdrs["X-API-Key"] = key
        hdrs["Host"] = self._host(url)
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        elif method in ("POST", "PUT", "PATCH"):
            hdrs["Content-Length"] = "0"
        return hdrs

    def api(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        key: str,
        timeout: float | None,
        deadline_only: bool,
    ) -> httpx.Request:
        """An API request carrying ``key`` as ``X-API-Key``.

        ``deadline_only``: the pool gets only a connect timeout, because the
        caller's deadline covers the whole attempt and always ends first (the
        built-in pool needs no read or write timeouts of its own).
        """
        url = self.url(path)
        hdrs = self._fields(method, url, body, headers, key)
        extensions = {"timeout": self._connect_only} if deadline_only else self.timeouts(timeout)
        request = httpx.Request(
            method, url, stream=httpx.ByteStream(body or b""), headers=hdrs, extensions=extensions
        )
        # A plugged-in transport may read ``request.content`` without ``aread()`` first;
        # reading a ready ByteStream only joins its one chunk.
        request.read()
        return request

    def wire(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        key: str,
    ) -> tuple[httpx.URL, bytes]:
        """The URL and the bytes on the wire of the request :meth:`api` would build.

        For the built-in pool (``Http11Transport.send_raw``): the same request
        line, header fields (in the same order, ASCII as httpx encodes them) and
        body, without building an ``httpx.Request`` (a large share of a small
        request's CPU). tests/test_transport.py checks the two byte for byte.
        """
        target = self._targets.get((method, path))
        if target is None:
            url = self.url(path)
            # httpx upper-cases the method on the request line (the fields use it as given).
            start = f"{method.upper()} {url.raw_path.decode('ascii')} HTTP/1.1\r\n"
            target = (url, start)
            if len(self._targets) < _CACHED:
                self._targets[method, path] = target
        url, start = target
        hdrs = self._fields(method, url, body, headers, key)
        head = start + "".join([f"{name}: {value}\r\n" for name, value in hdrs.items()]) + "\r\n"
        return url, head.encode("ascii") + body if body else head.encode("ascii")

    def is_ours(self, url: httpx.URL) -> bool:
        """Whether ``url`` is on this server's origin (scheme, host and port)."""
        base = self._base_url
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)

    def download(self, url: httpx.URL, *, key: str | None, timeout: float | None) -> httpx.Request:
        """A GET whose body is streamed to the caller; ``key`` is sent only if given."""
        hdrs = dict(self._headers)
        if key is not None:
            hdrs["X-API-Key"] = key
        extensions = {**self.timeouts(timeout), STREAM_BODY: True}
        return httpx.Request("GET", url, headers=hdrs, extensions=extensions)
