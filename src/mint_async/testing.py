"""Helpers for testing code that talks to MinT: the local reference server, three ways.

* :func:`serve_in_process` — the server runs in your event loop (asyncio or
  trio); requests go through :class:`ASGIServerTransport`, an
  ``httpx.AsyncBaseTransport`` that calls the app directly (no sockets).
* :func:`serve_loopback` — uvicorn on ``127.0.0.1`` in a background thread
  with its own event loop; any HTTP client (the official SDK included) works.
* :func:`serve_subprocess` — ``python -m mint_async.server`` in its own process
  (for benchmarks: the server gets its own CPU and GIL).

The first two give access to the server's counters — per-request execution
counts for exactly-once assertions, and :class:`ServerStatistics` snapshots.

Example::

    from mint_async.server import FaultConfig, ServerConfig
    from mint_async.testing import serve_in_process

    async def test_my_code() -> None:
        config = ServerConfig(faults=FaultConfig.parse("drop_after_accept=0.3,seed=1"))
        async with serve_in_process(config) as server:
            async with server.client() as http:  # an httpx.AsyncClient with the API key set
                ...
            assert all(n == 1 for n in server.execution_counts().values())
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import msgspec

from .server import DEFAULT_API_KEY, MintServerApp, ServerConfig, ServerStatistics, create_app
from .server.backends import Backend

__all__ = [
    "DEFAULT_API_KEY",
    "ASGIServerTransport",
    "InProcessServer",
    "LocalServer",
    "LoopbackServer",
    "SubprocessServer",
    "serve_in_process",
    "serve_loopback",
    "serve_subprocess",
]


class ASGIServerTransport(httpx.AsyncBaseTransport):
    """An httpx transport that runs each request through an ASGI app in the calling task.

    Unlike ``httpx.ASGITransport`` it reproduces a dropped connection: an app
    that starts an answer and never finishes it raises
    ``httpx.RemoteProtocolError``, as a real server closing the socket would.
    Client timeouts do not apply (nothing waits on a socket).
    """

    def __init__(
        self, app: MintServerApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)
    ) -> None:
        self._app = app
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Run the app for ``request`` and collect its complete answer."""
        body = await request.aread()
        url = request.url
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": self._client,
            "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
        }
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await anyio.sleep_forever()  # the client stays connected until the answer
            raise AssertionError  # pragma: no cover

        status: int | None = None
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        complete = False

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)

        await self._app(scope, receive, send)
        if status is None or not complete:
            msg = "Server disconnected without sending a complete response."
            raise httpx.RemoteProtocolError(msg, request=request)
        return httpx.Response(status, headers=headers, content=b"".join(chunks), request=request)


@dataclass(frozen=True, kw_only=True)
class SubprocessServer:
    """A server running in a child process."""

    base_url: str
    """``http://host:port`` (set ``MINT_BASE_URL`` / ``TINKER_BASE_URL`` to it)."""
    api_key: str
    """A key the server accepts."""
    process: subprocess.Popen[str]

    def statistics(self) -> ServerStatistics:
        """The server's counters (``GET /api/v1/local/statistics``; blocking)."""
        return self._stats_call("GET", "/api/v1/local/statistics")

    def reset_peaks(self) -> ServerStatistics:
        """Start the ``peak_*`` counters afresh; returns the statistics after the reset."""
        return self._stats_call("POST", "/api/v1/local/statistics/reset_peaks")

    def _stats_call(self, method: str, path: str) -> ServerStatistics:
        headers = {"X-API-Key": self.api_key}
        r = httpx.request(method, f"{self.base_url}{path}", headers=headers, timeout=30)
        r.raise_for_status()
        return msgspec.json.decode(r.content, type=ServerStatistics)


@dataclass(frozen=True, kw_only=True)
class LocalServer:
    """A server in this process: its address, a key, and its counters."""

    app: MintServerApp
    base_url: str
    api_key: str

    @property
    def config(self) -> ServerConfig:
        """The server's configuration."""
        return self.app.config

    def statistics(self) -> ServerStatistics:
        """A snapshot of the server's counters."""
        return self.app.statistics()

    def reset_peaks(self) -> None:
        """Start the ``peak_*`` counters afresh from the current values."""
        self.app.reset_peaks()

    def executions(self, request_id: str) -> int:
        """How many times ``request_id`` was executed (1 when exactly-once held)."""
        return self.app.executions(request_id)

    def execution_counts(self) -> dict[str, int]:
        """Executions per request id, for every request executed so far."""
        return self.app.execution_counts()

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` for this server, with ``X-API-Key`` set."""
        headers = {"X-API-Key": self.api_key, **kwargs.pop("headers", {})}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, **kwargs)


@dataclass(frozen=True, kw_only=True)
class InProcessServer(LocalServer):
    """A server running in the current event loop; reach it through :attr:`transport`."""

    transport: ASGIServerTransport

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` wired to :attr:`transport`, with ``X-API-Key`` set."""
        return super().client(transport=self.transport, **kwargs)


@dataclass(frozen=True, kw_only=True)
class LoopbackServer(LocalServer):
    """A server listening on a loopback port, served by uvicorn in a background thread."""

    _stop: Callable[[], None]

    def stop(self) -> None:
        """Stop serving now (held polls answer try_again first); blocking, idempotent.

        :func:`serve_loopback` stops the server at the end of its block anyway;
        this is for tests of what clients do when the server goes away.
        """
        self._stop()


@asynccontextmanager
async def serve_in_process(
    config: ServerConfig | None = None,
    *,
    backend: Backend[Any, Any] | None = None,
    base_url: str = "http://mint.local",
) -> AsyncGenerator[InProcessServer]:
    """Run the server in the current event loop (asyncio or trio) for the block.

    ``base_url`` is only a name: requests reach the app through the transport.
    """
    app = create_app(config, backend=backend)
    async with app.running():
        yield InProcessServer(
            app=app,
            base_url=base_url,
            api_key=app.config.api_keys[0],
            transport=ASGIServerTransport(app),
        )


@contextmanager
def serve_loopback(
    config: ServerConfig | None = None,
    *,
    backend: Backend[Any, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Generator[LoopbackServer]:
    """Serve on ``host:port`` (``0``: a free port) with uvicorn in a background thread.

    Usable from sync and async code (start-up blocks the caller briefly). Needs
    the ``server`` extra (uvicorn).
    """
    from .server._uvicorn import ThreadedServer  # noqa: PLC0415 - uvicorn is optional

    app = create_app(config, backend=backend)
    server = ThreadedServer(app, host, port)
    server.start()
    try:
        yield LoopbackServer(
            app=app, base_url=server.base_url, api_key=app.config.api_keys[0], _stop=server.stop
        )
    finally:
        server.stop()


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@contextmanager
def serve_subprocess(
    args: Sequence[str] = (),
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str = DEFAULT_API_KEY,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 120.0,
) -> Generator[SubprocessServer]:
    """Run ``python -m mint_async.server`` (``args``: more ``serve`` options) for the block.

    The server's own output goes to this process's stderr; it is stopped with
    SIGTERM (then killed if it does not exit within 30 s).
    """
    from .server._cli import READY_LINE  # noqa: PLC0415

    cmd = [
        python,
        "-m",
        "mint_async.server",
        "--host",
        host,
        "--port",
        str(port),
        "--api-key",
        api_key,
        *args,
    ]
    proc = subprocess.Popen(  # noqa: S603 - our own module, arguments from the caller
        cmd, stdout=subprocess.PIPE, stderr=None, text=True, env={**os.environ, **(env or {})}
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    base_url = None
    try:
        while True:
            line = lines.get(timeout=startup_timeout)
            if line is None:
                msg = f"the server process exited during start-up (status {proc.wait()})"
                raise RuntimeError(msg)
            if line.startswith("MINT_BASE_URL="):
                base_url = line.strip().partition("=")[2]
            elif line.startswith(READY_LINE) and base_url is not None:
                break
        yield SubprocessServer(base_url=base_url, api_key=api_key, process=proc)
    except queue.Empty:
        msg = f"the server process did not become ready within {startup_timeout} s"
        raise RuntimeError(msg) from None
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            if proc.stdout is not None:
                proc.stdout.close()
