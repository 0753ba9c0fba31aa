"""Serving the app with uvicorn (asyncio; uvloop and httptools when installed).

Shared by ``mint-async serve`` and the loopback helpers of
:mod:`mint_async.testing`. Adjustments to plain uvicorn:

* shutdown first releases every held long poll (otherwise uvicorn waits up to
  ``poll_hold`` for them to finish);
* with fault injection on, uvicorn's error line for a deliberately dropped
  connection is filtered out (it is the point of the fault, not a bug);
* hostile clients (issue 12). uvicorn bounds idle keep-alive connections
  (``timeout_keep_alive``, armed after a response) and the number served
  (``limit_concurrency``: 503 beyond, once a head arrives), but nothing bounds
  a request head that never finishes: a new connection has no timer at all,
  and any byte cancels the keep-alive one (measured: 3,000 partial heads still
  open after 80 s). Our protocol subclasses give every head ``head_timeout``
  from its first byte (or from the connection's start) and at most
  ``_MAX_HEAD_BYTES`` (httptools itself has no cap), and close connections at
  accept beyond twice ``max_connections`` (or the file-descriptor limit), so a
  flood of idle sockets cannot starve ``/healthz`` of descriptors.
"""

from __future__ import annotations

# uvicorn runs on asyncio: its protocols hand us asyncio transports and timers, and
# the guard mixes into them as an asyncio.Protocol. (Server-only: the client never loads this.)
import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # uvicorn[standard] has it

from ._app import MintServerApp

__all__ = [
    "ConnectionLimits",
    "GuardedH11Protocol",
    "GuardedHttpToolsProtocol",
    "MintUvicornServer",
    "ThreadedServer",
    "bind_socket",
    "connection_limits",
    "uvicorn_config",
]

_MAX_HEAD_BYTES: Final = 64 << 10
"""A request head (line and headers) larger than this closes the connection."""
_FD_RESERVE: Final = 64
"""File descriptors kept free for the process itself (log files, checkpoints, the listener)."""

_DROP_MESSAGE = "ASGI callable returned without completing response"


class _DropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _DROP_MESSAGE not in record.getMessage()


_DROP_FILTER = _DropFilter()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0`` picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    """What the protocol subclasses enforce per connection (see the module docstring)."""

    head_timeout: float
    """Seconds from a head's first byte (or the connection's start) to its end."""
    max_head_bytes: int = _MAX_HEAD_BYTES
    served: int | None = None
    """uvicorn's ``limit_concurrency``: connections (or requests) beyond it answer 503."""
    max_open: int | None = None
    """Connections beyond this are closed at accept, unanswered (file descriptors)."""


def _fd_limit() -> int | None:
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_limits(app: MintServerApp) -> ConnectionLimits:
    """The limits of ``app.config``, clamped to this process's file-descriptor limit."""
    config = app.config
    cap = config.max_connections
    if cap is None:
        return ConnectionLimits(head_timeout=config.head_timeout)
    max_open = 2 * cap
    fds = _fd_limit()
    if fds is not None:
        max_open = max(1, min(max_open, fds - _FD_RESERVE))
    return ConnectionLimits(
        head_timeout=config.head_timeout, served=min(cap, max_open), max_open=max_open
    )


class _HeadGuard:
    """The request-head deadline and size cap of one connection."""

    __slots__ = ("_bytes", "_limits", "_loop", "_timer", "_transport")

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        limits: ConnectionLimits,
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._limits = limits
        self._timer: asyncio.TimerHandle | None = None
        self._bytes = 0
        self._arm()  # a fresh connection owes us its first head

    def _arm(self) -> None:
        self._bytes = 0
        self._timer = self._loop.call_later(self._limits.head_timeout, self._close)

    def disarm(self) -> None:
        """Stop the clock (head complete, or connection gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self) -> None:
        self._timer = None
        if not self._transport.is_closing():
            self._transport.close()

    def after_data(self, size: int, *, idle: bool, head_done: bool) -> None:
        """Account for ``size`` bytes just parsed.

        ``idle``: no request was being served when they arrived, so they start
        (or continue) a head; otherwise they are a body, whose deadline is the
        app's (``body_timeout``). ``head_done``: they completed a head.
        """
        if head_done:
            self.disarm()
            return
        if self._timer is None:
            if not idle:
                return
            self._arm()  # the first bytes of the next head on a kept-alive connection
        self._bytes += size
        if self._bytes > self._limits.max_head_bytes:
            self.disarm()
            self._close()


def _limits_of(config: uvicorn.Config) -> ConnectionLimits:
    limits = getattr(config, "mint_limits", None)
    assert isinstance(limits, ConnectionLimits), "serve through uvicorn_config()"
    return limits


def _over_cap(limits: ConnectionLimits, connections: int, transport: asyncio.Transport) -> bool:
    if limits.max_open is not None and connections > limits.max_open:
        transport.close()
        return True
    return False


class _Cycle(Protocol):
    response_complete: bool


def _idle(cycle: _Cycle | None) -> bool:
    """Whether no request is being served (the next bytes start a head)."""
    return cycle is None or cycle.response_complete


class _HeadGuarded(asyncio.Protocol):
    """The head deadline and the accept cap, mixed into either of uvicorn's HTTP protocols."""

    # Provided by uvicorn's protocol class this is mixed into.
    config: uvicorn.Config
    connections: set[Any]
    loop: asyncio.AbstractEventLoop
    cycle: Any
    _mint_guard: _HeadGuard | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Register the connection; close it at once beyond the cap, else start its head clock."""
        super().connection_made(transport)
        limits = _limits_of(self.config)
        if not _over_cap(limits, len(self.connections), transport):
            self._mint_guard = _HeadGuard(transport, self.loop, limits)

    def data_received(self, data: bytes) -> None:
        """Parse, then tell the guard whether a head is pending or done."""
        cycle = self.cycle
        idle = _idle(cycle)
        super().data_received(data)
        if self._mint_guard is not None:
            self._mint_guard.after_data(len(data), idle=idle, head_done=self.cycle is not cycle)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head clock, then let uvicorn clean up."""
        if self._mint_guard is not None:
            self._mint_guard.disarm()
        super().connection_lost(exc)


class GuardedH11Protocol(_HeadGuarded, H11Protocol):
    """uvicorn's h11 protocol with the head deadline and the accept cap."""


class GuardedHttpToolsProtocol(_HeadGuarded, HttpToolsProtocol):
    """uvicorn's httptools protocol with the head deadline, the head cap and the accept cap."""


def uvicorn_config(
    app: MintServerApp, *, log_level: str = "warning", configure_logging: bool = True, **kwargs: Any
) -> uvicorn.Config:
    """uvicorn settings for the app: lifespan on, no access log, a large backlog, the limits.

    ``configure_logging=False`` leaves the process's logging configuration alone
    (embedded servers); otherwise uvicorn sets up its usual console logging.
    ``http="h11"`` picks the h11 parser (default: httptools when installed).
    """
    error_log = logging.getLogger("uvicorn.error")
    if app.config.faults.drop_after_accept > 0 and _DROP_FILTER not in error_log.filters:
        error_log.addFilter(_DROP_FILTER)
    if not configure_logging:
        kwargs["log_config"] = None
    protocol: type[H11Protocol | HttpToolsProtocol] = (
        GuardedH11Protocol if kwargs.pop("http", None) == "h11" else GuardedHttpToolsProtocol
    )
    limits = connection_limits(app)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        backlog=2048,
        timeout_keep_alive=60,
        timeout_graceful_shutdown=10,
        limit_concurrency=limits.served,
        http=protocol,
        # The API has no websocket routes; "none" also keeps uvicorn from importing
        # `websockets` (uvicorn 0.30 with websockets >= 14 warns on that import).
        ws="none",
        h11_max_incomplete_event_size=_MAX_HEAD_BYTES,
        **kwargs,
    )
    config.mint_limits = limits  # type: ignore[attr-defined]  # read by the protocols
    return config


class MintUvicornServer(uvicorn.Server):
    """uvicorn's server, releasing held polls before it waits for connections to finish."""

    def __init__(
        self, config: uvicorn.Config, app: MintServerApp, on_ready: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self._mint_app = app
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then report readiness."""
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Release held polls, then shut down as uvicorn does."""
        self._mint_app.begin_shutdown()
        await super().shutdown(sockets)


class ThreadedServer:
    """uvicorn in a background thread with its own event loop (for tests and embedding)."""

    def __init__(
        self, app: MintServerApp, host: str = "127.0.0.1", port: int = 0, **kwargs: Any
    ) -> None:
        self.app = app
        self._sock = bind_socket(host, port)
        bound = self._sock.getsockname()
        self.host, self.port = host, int(bound[1])
        self._ready = threading.Event()
        config = uvicorn_config(app, configure_logging=False, **kwargs)
        self._server = MintUvicornServer(config, app, on_ready=self._ready.set)
        self._thread = threading.Thread(
            target=self._run, name=f"mint-async-server-{self.port}", daemon=True
        )
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
        finally:
            self._ready.set()

    def start(self, timeout: float = 60.0) -> None:
        """Start serving; returns once the server accepts requests."""
        self._thread.start()
        if not self._ready.wait(timeout) or not self._server.started:
            self.stop()
            msg = "the local server did not start"
            raise RuntimeError(msg) from self._error

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving (held polls are released first) and join the thread; idempotent."""
        # uvicorn's loop notices should_exit and runs shutdown() in its own thread.
        self._server.should_exit = True
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._sock.close()
