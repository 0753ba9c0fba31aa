"""Serving the app with uvicorn (asyncio; uvloop and httptools when installed).

Shared by ``mint-async serve`` and the loopback helpers of
:mod:`mint_async.testing`. Two adjustments to plain uvicorn:

* shutdown first releases every held long poll (otherwise uvicorn waits up to
  ``poll_hold`` for them to finish);
* with fault injection on, uvicorn's error line for a deliberately dropped
  connection is filtered out (it is the point of the fault, not a bug).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from ._app import MintServerApp

__all__ = ["MintUvicornServer", "ThreadedServer", "bind_socket", "uvicorn_config"]

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


def uvicorn_config(
    app: MintServerApp, *, log_level: str = "warning", configure_logging: bool = True, **kwargs: Any
) -> uvicorn.Config:
    """uvicorn settings for the app: lifespan on, no access log, a large backlog.

    ``configure_logging=False`` leaves the process's logging configuration alone
    (embedded servers); otherwise uvicorn sets up its usual console logging.
    """
    error_log = logging.getLogger("uvicorn.error")
    if app.config.faults.drop_after_accept > 0 and _DROP_FILTER not in error_log.filters:
        error_log.addFilter(_DROP_FILTER)
    if not configure_logging:
        kwargs["log_config"] = None
    return uvicorn.Config(
        app,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        backlog=2048,
        timeout_keep_alive=60,
        timeout_graceful_shutdown=10,
        **kwargs,
    )


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

    def __init__(self, app: MintServerApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._sock = bind_socket(host, port)
        bound = self._sock.getsockname()
        self.host, self.port = host, int(bound[1])
        self._ready = threading.Event()
        config = uvicorn_config(app, configure_logging=False)
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
