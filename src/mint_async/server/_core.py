"""The server's shared core: everything a handler needs, and its lifetime.

:meth:`ServerCore.running` is the server's whole life as one ``async with``:
it builds the backend (in a thread), opens the checkpoint store, starts the
task group that runs background work (model workers, samples, the sweeper),
and on exit releases held polls, cancels all work and removes a temporary
data directory. Nothing here is asyncio-specific, so the same core runs
in-process under trio.
"""

from __future__ import annotations

import functools
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from mint_async import _codec
from mint_async.types import UntypedAPIFuture

from ._auth import Authenticator
from ._batched import CompletionLogs
from ._config import ServerConfig
from ._executor import Executor
from ._faults import FaultInjector
from ._futures import FutureRecord, FutureRegistry
from ._http import DropConnection, HTTPError, Response, json_response
from ._latency import LatencyModel
from ._state import Model, Sampler, ServerState, Session
from ._store import CheckpointMeta, CheckpointStore
from .backends import Backend, BackendOptions, ModelSpec, create_backend

__all__ = ["ServerCore"]

logger = logging.getLogger("mint_async.server")


class ServerCore:
    """Configuration, registries, backend and background machinery of one server."""

    def __init__(self, config: ServerConfig, backend: Backend[Any, Any] | None = None) -> None:
        self.config = config
        self.faults = FaultInjector(config.faults)
        self.latency = LatencyModel(config.latency)
        self.state = ServerState(track_executions=config.track_executions)
        self.batched = CompletionLogs()
        self.futures = FutureRegistry(
            result_retention=config.result_retention,
            unretrieved_retention=config.unretrieved_retention,
            on_finish=self.batched.record,
        )
        self._given_backend = backend
        self.backend: Backend[Any, Any] | None = backend
        self.specs: dict[str, ModelSpec] = {}
        self.store: CheckpointStore | None = None
        self.executor: Executor | None = None
        self.auth: Authenticator | None = None
        self.running_since: float | None = None
        self.archive_secret = secrets.token_bytes(32)
        self.idempotent: dict[str, str] = {}
        """X-Idempotency-Key -> request id of session-less submissions (interpolate)."""
        self.batched.enabled = config.enable_retrieve_futures
        self._started = False

    # -- lifetime --------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncGenerator[None]:
        """Run the server's background machinery for the duration of the block (once)."""
        if self._started:
            msg = "a server runs once; create a new app to serve again"
            raise RuntimeError(msg)
        self._started = True
        config = self.config
        backend = self._given_backend
        if backend is None:
            options = BackendOptions(seed=config.seed, model_names=config.model_names)
            backend = await anyio.to_thread.run_sync(create_backend, config.backend, options)
        self.backend = backend
        self.specs = {spec.name: spec for spec in backend.models()}
        temp_dir = None
        if config.data_dir is None:
            temp_dir = Path(tempfile.mkdtemp(prefix="mint-async-data-"))
        root = config.data_dir or temp_dir
        assert root is not None
        store = CheckpointStore(root)
        await anyio.to_thread.run_sync(store.open)
        self.store = store
        secret = config.jwt_secret
        if secret is None:
            secret = await anyio.to_thread.run_sync(store.jwt_secret)
        self.auth = Authenticator(config.api_keys, secret, config.jwt_ttl)
        executor = Executor(
            backend=backend,
            futures=self.futures,
            state=self.state,
            faults=self.faults,
            latency=self.latency,
            capacity=config.capacity,
            binary_results=config.binary_results,
        )
        self.executor = executor
        try:
            async with anyio.create_task_group() as tg:
                executor.attach(tg)
                tg.start_soon(self._sweeper)
                self.running_since = time.time()
                try:
                    yield
                finally:
                    self.futures.close()
                    self.batched.close()
                    executor.attach(None)
                    tg.cancel_scope.cancel()
        finally:
            self.running_since = None
            self.store = self.executor = self.auth = None
            await anyio.to_thread.run_sync(backend.close)
            if temp_dir is not None:
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(temp_dir, ignore_errors=True))

    def begin_shutdown(self) -> None:
        """Answer every held poll now and hold no new ones (before the HTTP server stops)."""
        self.futures.close()
        self.batched.close()

    async def _sweeper(self) -> None:
        """Expire sessions without heartbeats (purging finished ones after
        ``finished_session_retention``), checkpoints past their TTL, old results and
        replaced checkpoint versions (after ``SUPERSEDED_GRACE``)."""
        while True:
            await anyio.sleep(self.config.sweep_interval)
            now = time.monotonic()
            retention = self.config.finished_session_retention
            for session in list(self.state.sessions.values()):
                if session.finished is None:
                    if now - session.last_heartbeat > self.config.session_expiry:
                        self.finish_session(
                            session,
                            f"no heartbeat for {self.config.session_expiry:g} s",
                        )
                elif session.finished_at is not None and now - session.finished_at > retention:
                    # Purged: a finished session answers 410 for a while, then is forgotten
                    # (404), so sessions nobody ends do not pile up (issue 12).
                    del self.state.sessions[session.session_id]
                    # Its stability records go with it: they belong to the session.
                    self.state.stability.drop_session(session.session_id)
            self.futures.purge_expired(now)
            store = self.store
            if store is not None:
                if store.superseded():
                    await anyio.to_thread.run_sync(store.prune)
                for meta in store.expired():
                    await anyio.to_thread.run_sync(
                        functools.partial(store.delete, meta, expired=True)
                    )

    def finish_session(self, session: Session, reason: str) -> None:
        """End a session: fail its unanswered requests, cancel its work, drop its models."""
        session.finished = reason
        session.finished_at = time.monotonic()
        message = f"session {session.session_id} finished ({reason}); request cancelled"
        for rec in self.futures.unfinished_of_session(session.session_id):
            self.futures.fail(rec, message, "server")
        self.futures.forget_session(session.session_id)
        for scope in list(session.scopes):
            scope.cancel()
        for model_id in session.model_ids:
            model = self.state.models.get(model_id)
            if model is not None and not model.unloaded:
                # The model's worker unloads it once its current call has returned.
                model.unloaded = True
                if model.scope is not None:
                    model.scope.cancel()
        for sampler_id in session.sampler_ids:
            self.state.samplers.pop(sampler_id, None)
        logger.info("session %s finished: %s", session.session_id, reason)

    # -- lookups (raise HTTPError) ---------------------------------------------

    def require_running(self) -> tuple[Backend[Any, Any], CheckpointStore, Executor]:
        """The backend, store and executor; 503 before start-up completed."""
        if self.backend is None or self.store is None or self.executor is None:
            raise HTTPError(503, "the server is starting or stopping")
        return self.backend, self.store, self.executor

    def session(self, owner: str, session_id: str) -> Session:
        """A live session of ``owner``; 404 if unknown, 410 if it finished."""
        session = self.state.sessions.get(session_id)
        if session is None or session.owner != owner:
            raise HTTPError(404, f"session {session_id!r} not found")
        if session.finished is not None:
            raise HTTPError(410, f"session {session_id} finished: {session.finished}")
        return session

    def model(self, owner: str, model_id: str) -> Model:
        """A loaded model of ``owner``; 404 otherwise."""
        model = self.state.models.get(model_id)
        if model is None or model.owner != owner:
            raise HTTPError(404, f"model {model_id!r} not found")
        if model.unloaded:
            raise HTTPError(404, f"model {model_id!r} was unloaded (or its session finished)")
        return model

    def sampler(self, owner: str, sampler_id: str) -> Sampler:
        """A sampler of ``owner``; 404 otherwise."""
        sampler = self.state.samplers.get(sampler_id)
        if sampler is None or sampler.owner != owner:
            raise HTTPError(404, f"sampler {sampler_id!r} not found")
        return sampler

    def spec(self, base_model: str) -> ModelSpec:
        """The spec of a served base model; 400 otherwise."""
        spec = self.specs.get(base_model)
        if spec is None:
            raise HTTPError(
                400, f"unsupported base model {base_model!r}; served: {sorted(self.specs)}"
            )
        return spec

    def readable_checkpoint(
        self, owner: str, meta: CheckpointMeta | None, path: str
    ) -> CheckpointMeta:
        """A checkpoint ``owner`` may read (their own or a public one); 404 otherwise."""
        if meta is None or (meta.owner != owner and not meta.public):
            raise HTTPError(404, f"checkpoint {path!r} not found")
        return meta

    # -- submissions ---------------------------------------------------------

    def submission_faults(self, *, sample: bool = False) -> None:
        """Injected rejections of a submission, before anything is enqueued."""
        if self.faults.fires("submit_5xx"):
            status = (500, 502, 503)[self.faults.counts()["submit_5xx"] % 3]
            raise HTTPError(status, "injected fault: server error before accepting the request")
        if sample and self.faults.fires("sample_429"):
            raise HTTPError(
                429,
                "injected fault: sampling backpressure",
                headers=[(b"retry-after-ms", b"100")],
            )

    def promise(
        self,
        rec_or_id: FutureRecord | str,
        *,
        model_id: str | None = None,
        sample_sequence_ids: list[str] | None = None,
    ) -> Response:
        """The submission's answer (or a dropped connection, when that fault fires)."""
        if self.faults.fires("drop_after_accept"):
            raise DropConnection
        rid = rec_or_id if isinstance(rec_or_id, str) else rec_or_id.request_id
        future = UntypedAPIFuture(
            request_id=rid, model_id=model_id, sample_sequence_ids=sample_sequence_ids
        )
        return json_response(_codec.encode(future))
