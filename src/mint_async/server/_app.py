"""The raw ASGI application: read the request, authenticate, route, answer.

No web framework: one dict lookup routes the fixed paths, a few prefixes route
the REST resources whose ids contain ``:`` and ``/``. Failures map to JSON
error answers here and only here: ``DecodeError`` → 400, ``HTTPError`` → its
status, anything else → 500 (logged). ``DropConnection`` starts an answer and
never finishes it, so the server closes the connection (the fault
"connection dropped after the request was accepted").

The app serves HTTP only while :meth:`MintServerApp.running` is active; an
ASGI server's lifespan protocol drives that, and in-process users (tests,
``mint_async.testing``) enter it themselves.

Hostile clients (issue 12): the credential is checked from the headers, so a
request without a valid key answers 401 before one byte of its body is read.
Bodies are capped per route (``max_body_bytes`` for the training-data routes,
``max_small_body_bytes`` for the rest, 64 KiB for the routes that need no
key): a declared ``Content-Length`` over the cap answers 413 at once, a
chunked body when its running count passes it. A body must arrive within
``body_timeout`` (then 408). An answer sent before the body was read whole
carries ``Connection: close``, so the server never parses the rest. The
request head's deadline and the connection cap are the HTTP server's
(:mod:`._uvicorn`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio

from mint_async._exceptions import DecodeError, InvalidInputError

from . import _copy, _mint, _rest, _retrieve, _runs, _sampling, _service, _training
from ._auth import AuthError
from ._config import ServerConfig
from ._core import ServerCore
from ._http import (
    DropConnection,
    HTTPError,
    Request,
    Response,
    StreamResponse,
    error_response,
)
from ._stats import ServerStatistics, reset_peaks, snapshot
from .backends import Backend

__all__ = ["MintServerApp"]

logger = logging.getLogger("mint_async.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[ServerCore, Request], Awaitable[Response]]

# (method, path) -> (handler, submission fault class: None | "submit" | "sample")
_ROUTES: Final[dict[tuple[str, str], tuple[Handler, str | None]]] = {
    ("POST", "/api/v1/client/config"): (_service.client_config, None),
    ("POST", "/api/v1/client/dynamic_config"): (_service.dynamic_config, None),
    ("POST", "/api/v1/auth/token"): (_service.auth_token, None),
    ("POST", "/api/v1/create_session"): (_service.create_session, None),
    ("POST", "/api/v1/session_heartbeat"): (_service.heartbeat, None),
    ("POST", "/api/v1/telemetry"): (_service.telemetry, None),
    ("GET", "/api/v1/get_server_capabilities"): (_service.capabilities, None),
    ("POST", "/api/v1/create_model"): (_runs.create_model, "submit"),
    ("POST", "/api/v1/get_info"): (_training.get_info, None),
    ("POST", "/api/v1/unload_model"): (_training.unload_model, "submit"),
    ("POST", "/api/v1/forward"): (_training.forward, "submit"),
    ("POST", "/api/v1/forward_backward"): (_training.forward_backward, "submit"),
    ("POST", "/api/v1/optim_step"): (_training.optim_step, "submit"),
    ("POST", "/api/v1/save_weights"): (_training.save_weights, "submit"),
    ("POST", "/api/v1/save_weights_for_sampler"): (_training.save_weights_for_sampler, "submit"),
    ("POST", "/api/v1/load_weights"): (_training.load_weights, "submit"),
    ("POST", "/api/v1/mint/forward_backward_reverse_kl"): (_mint.reverse_kl, "submit"),
    ("POST", "/api/v1/mint/checkpoints/interpolate"): (_mint.interpolate_checkpoints, "submit"),
    ("POST", "/api/v1/create_sampling_session"): (_sampling.create_sampling_session, None),
    ("POST", "/api/v1/asample"): (_sampling.asample, "sample"),
    ("POST", "/api/v1/retrieve_future"): (_retrieve.retrieve_future, None),
    ("POST", "/api/v1/retrieve_futures"): (_retrieve.retrieve_futures, None),
    ("POST", "/api/v1/cancel_future"): (_retrieve.cancel_future, None),
    ("POST", "/api/v1/weights_info"): (_rest.weights_info, None),
    ("POST", "/api/v1/copy_weights"): (_copy.copy_weights, None),
    ("GET", "/api/v1/training_runs"): (_rest.list_training_runs, None),
    ("GET", "/api/v1/checkpoints"): (_rest.list_checkpoints, None),
    ("GET", "/api/v1/sessions"): (_rest.list_sessions, None),
    ("GET", "/api/v1/audit"): (_rest.audit_log, None),
    ("GET", "/api/v1/local/statistics"): (_service.statistics, None),
    ("POST", "/api/v1/local/statistics/reset_peaks"): (_service.reset_statistics_peaks, None),
}
_PATHS: Final = {path for _, path in _ROUTES}

_HEALTHZ: Final = "/api/v1/healthz"
_LONG_POLLS: Final = frozenset({"/api/v1/retrieve_future", "/api/v1/retrieve_futures"})
"""Requests that only wait: they end as soon as their client disconnects."""
_DOWNLOADS: Final = "/api/v1/archive_downloads/"
_DATA_ROUTES: Final = frozenset(
    {"/api/v1/forward", "/api/v1/forward_backward", "/api/v1/mint/forward_backward_reverse_kl"}
)
"""Routes whose bodies carry training data (capped by ``max_body_bytes``)."""
_PUBLIC_BODY_CAP: Final = 64 << 10
"""Body cap of the routes that need no key (healthz, archive downloads), which use no body."""
_CLOSE: Final = (b"connection", b"close")


class MintServerApp:
    """The local MinT / tinker server as an ASGI 3 application.

    Example (in-process, any anyio backend)::

        app = MintServerApp(ServerConfig())
        async with app.running():
            ...  # talk to it through an ASGI transport (see mint_async.testing)
    """

    def __init__(
        self, config: ServerConfig | None = None, *, backend: Backend[Any, Any] | None = None
    ) -> None:
        self._core = ServerCore(config or ServerConfig(), backend)

    @property
    def config(self) -> ServerConfig:
        """The server's configuration."""
        return self._core.config

    @asynccontextmanager
    async def running(self) -> AsyncGenerator[MintServerApp]:
        """Serve while inside the block (starts the backend and background work)."""
        async with self._core.running():
            yield self

    def begin_shutdown(self) -> None:
        """Release every held long poll now (call before stopping the HTTP server).

        Call it on the server's event loop (``MintUvicornServer`` and the ASGI
        lifespan do); from another thread, stop the server instead.
        """
        self._core.begin_shutdown()

    def statistics(self) -> ServerStatistics:
        """An immutable snapshot of the server's counters (safe from any thread)."""
        return snapshot(self._core)

    def reset_peaks(self) -> None:
        """Start the ``peak_*`` statistics afresh from the current values."""
        reset_peaks(self._core)

    def executions(self, request_id: str) -> int:
        """How many times the request ``request_id`` was executed (0, or 1 when exactly-once holds)."""
        return self._core.state.executions(request_id)

    def execution_counts(self) -> dict[str, int]:
        """Executions per request id (needs ``ServerConfig.track_executions``)."""
        return self._core.state.execution_counts()

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        started = False
        try:
            async with self.running():
                started = True
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
                self.begin_shutdown()
        except Exception as exc:
            logger.exception("server start-up or shutdown failed")
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._core.state
        state.http_in_flight += 1
        state.peak_http_in_flight = max(state.peak_http_in_flight, state.http_in_flight)
        request: Request | None = None
        try:
            try:
                request = self._head(scope)
                public = self._public(request)
                if not public:
                    self._authenticate(request)  # from the headers: 401 before the body
                await self._read_body(request, receive, self._body_cap(request, public=public))
                if request.path in _LONG_POLLS:
                    maybe = await self._dispatch_until_disconnect(request, receive)
                    if maybe is None:
                        return  # the client went away; nobody to answer
                    response = maybe
                else:
                    response = await self._dispatch(request)
            except HTTPError as err:
                if err.status >= 400:
                    state.rejected += 1
                response = error_response(err)
                if request is None or not request.complete:
                    # The body was not read (whole): close rather than parse the rest of it.
                    response.headers = [*response.headers, _CLOSE]
            except DropConnection:
                # Start an answer and never finish it: the server closes the connection.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", b"2")],
                    }
                )
                return
            except Exception:
                logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
                response = error_response(HTTPError(500, "internal server error"))
            await self._send(send, response)
        finally:
            state.http_in_flight -= 1

    async def _dispatch_until_disconnect(
        self, request: Request, receive: Receive
    ) -> Response | StreamResponse | None:
        """Dispatch a long poll, abandoning it (None) if the client disconnects meanwhile.

        A client that cancels a poll closes its connection; without this a held
        poll would sit until the hold expires (30 s), for every abandoned future.
        """
        outcome: list[Response | StreamResponse | Exception] = []
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                message = await receive()
                if message["type"] == "http.disconnect":
                    tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                outcome.append(await self._dispatch(request))
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group
                outcome.append(exc)
            tg.cancel_scope.cancel()
        if not outcome:
            return None
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]

    @staticmethod
    def _head(scope: Scope) -> Request:
        """The request as far as its head tells (the body is read after the credential check)."""
        server = scope.get("server")
        return Request(
            method=scope["method"],
            path=scope["path"],
            query_string=scope.get("query_string", b""),
            headers=dict(scope["headers"]),
            body=b"",
            scheme=scope.get("scheme", "http"),
            server=(str(server[0]), int(server[1])) if server else None,
        )

    @staticmethod
    def _public(request: Request) -> bool:
        """Whether the route is served without a key (health, signed archive links)."""
        return request.path == _HEALTHZ or (
            request.path.startswith(_DOWNLOADS) and request.method == "GET"
        )

    def _body_cap(self, request: Request, *, public: bool) -> int:
        config = self._core.config
        if public:
            return _PUBLIC_BODY_CAP
        if request.path in _DATA_ROUTES:
            return config.max_body_bytes
        return config.max_small_body_bytes

    async def _read_body(self, request: Request, receive: Receive, limit: int) -> None:
        """Read the body, at most ``limit`` bytes and within ``body_timeout`` (413 / 408)."""
        declared = request.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPError(413, f"request body larger than {limit} bytes")
        timeout = self._core.config.body_timeout
        # A list joined once: ``body += chunk`` would copy the body for every chunk.
        chunks: list[bytes] = []
        size = 0
        more = True
        with anyio.move_on_after(timeout) as deadline:
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    raise HTTPError(400, "client disconnected")
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:  # chunked bodies declare no length: count as they arrive
                    raise HTTPError(413, f"request body larger than {limit} bytes")
                if chunk:
                    chunks.append(chunk)
                more = message.get("more_body", False)
        if deadline.cancelled_caught:
            raise HTTPError(408, f"the request body did not arrive within {timeout:g} s")
        request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        request.complete = True

    def _authenticate(self, request: Request) -> None:
        auth = self._core.auth
        if auth is None:
            raise HTTPError(503, "the server is starting or stopping")
        try:
            request.owner = auth.owner(request.header(b"x-api-key"))
        except AuthError as exc:
            headers: list[tuple[bytes, bytes]] = []
            if exc.invalid_token:
                challenge = f'Bearer error="invalid_token", error_description="{exc.message}"'
                headers.append((b"www-authenticate", challenge.encode()))
            raise HTTPError(401, exc.message, headers) from None

    async def _dispatch(self, request: Request) -> Response | StreamResponse:
        core = self._core
        path = request.path
        if path == _HEALTHZ:
            return await _service.healthz(core, request)
        if path.startswith(_DOWNLOADS) and request.method == "GET":
            return await _rest.download_archive(core, request, path.removeprefix(_DOWNLOADS))
        route = _ROUTES.get((request.method, path))
        try:
            if route is not None:
                handler, faults = route
                if faults is not None:
                    core.submission_faults(sample=faults == "sample")
                return await handler(core, request)
            return await self._dispatch_prefix(request)
        except (DecodeError, InvalidInputError) as exc:
            # InvalidInputError: a check a handler runs at submission (the caller's error).
            raise HTTPError(400, str(exc)) from None
        except RecursionError:
            # Hostile nesting ('{"a":' * 1000) in a body some handler parses itself.
            raise HTTPError(400, "request body is nested too deeply") from None

    async def _dispatch_prefix(self, request: Request) -> Response:
        core, path, method = self._core, request.path, request.method
        if path.startswith("/api/v1/training_runs/"):
            return await _rest.checkpoint_route(
                core, request, path.removeprefix("/api/v1/training_runs/")
            )
        if path.startswith("/api/v1/sessions/"):
            rest = path.removeprefix("/api/v1/sessions/")
            if rest.endswith("/finish") and method == "POST":
                return await _service.finish_session(core, request, rest.removesuffix("/finish"))
            return await _rest.session_route(core, request, rest)
        if path.startswith("/api/v1/samplers/") and method == "GET":
            return await _sampling.get_sampler(
                core, request, path.removeprefix("/api/v1/samplers/")
            )
        if path in _PATHS:
            raise HTTPError(405, f"{method} is not allowed on {path}")
        raise HTTPError(404, f"no such endpoint: {method} {path}")

    @staticmethod
    async def _send(send: Send, response: Response | StreamResponse) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": response.raw_headers(),
            }
        )
        if isinstance(response, Response):
            await send({"type": "http.response.body", "body": response.body})
            return
        async for chunk in response.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
