"""A blocking facade over the async clients, for scripts and notebooks.

One anyio ``BlockingPortal`` (an event loop in a helper thread) per
``ServiceClient``; every method is a single ``portal.call`` into the async
client, so there is one implementation of everything. Works from threads that
already run an event loop (Jupyter), and from several threads at once.

The MinT docs' examples run unchanged with only the import changed::

    from mint_async import sync as mint
    from mint_async import types

    service_client = mint.ServiceClient()
    training_client = service_client.create_lora_training_client(base_model="Qwen/Qwen3-0.6B", rank=16)
    result = training_client.forward_backward(batch, loss_fn="cross_entropy").result()
    training_client.optim_step(types.AdamParams(learning_rate=5e-5)).result()

Callbacks. Queue-state observers (``on_queue_state_change``) run in one
callback thread per ``ServiceClient``, in the order the changes happened: never
on the event loop, so an observer may block, call this client, or raise (the
error is logged) without stalling or failing any request. Two callbacks run on
the portal's event-loop thread, as their async twins run on the caller's loop:
the ``progress`` of ``download_checkpoint`` and the loss function of
``forward_backward_custom``. Keep those quick and do not call the blocking
clients from them (anyio refuses a portal call from its own loop thread).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import types as t
from ._exceptions import ClientClosedError
from ._futures import APIFuture as AsyncAPIFuture
from ._futures import QueueStateObserver, QueueStatus
from ._rest import AccessScope
from ._rest import RestClient as AsyncRestClient
from ._sampling import SamplingClient as AsyncSamplingClient
from ._service import ServiceClient as AsyncServiceClient
from ._training import TrainingClient as AsyncTrainingClient

if TYPE_CHECKING:
    import os
    from datetime import date
    from pathlib import Path

    import httpx

    from ._config import ClientConfig
    from ._custom_loss import CustomLossFn
    from ._rest import ProgressCallback

__all__ = [
    "APIFuture",
    "RestClient",
    "SampleFuture",
    "SamplingClient",
    "ServiceClient",
    "TrainingClient",
]

_logger = logging.getLogger("mint_async")

T = TypeVar("T")
P = ParamSpec("P")


class _Bridge:
    """Runs the async clients' methods on the portal's loop; owns the callback thread."""

    def __init__(self, portal: BlockingPortal) -> None:
        self.portal = portal
        self.closed = False
        # Created on first use, on the loop thread (the only thread that dispatches).
        self._callbacks: ThreadPoolExecutor | None = None

    def _check_open(self) -> None:
        if self.closed:
            msg = "this ServiceClient is closed"
            raise ClientClosedError(msg)

    def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` on the portal's loop and return its result."""
        self._check_open()
        return self.portal.call(functools.partial(fn, *args, **kwargs))

    def run_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a plain function on the portal's loop (to touch state the loop owns)."""
        self._check_open()
        return self.portal.call(functools.partial(fn, *args, **kwargs))

    def dispatch(
        self, observer: QueueStateObserver, state: t.QueueState, reason: str | None
    ) -> None:
        """Hand one change to the callback thread; called on the loop, so it never raises."""
        if self.closed:
            return
        if self._callbacks is None:
            # One worker: observers see the changes in the order they happened.
            self._callbacks = ThreadPoolExecutor(1, thread_name_prefix="mint_async-callbacks")
        with contextlib.suppress(RuntimeError):  # shut down meanwhile: the change is dropped
            self._callbacks.submit(_run_observer, observer, state, reason)

    def shutdown_callbacks(self) -> None:
        """Stop taking callbacks; ones already queued still run (close() does not wait)."""
        if self._callbacks is not None:
            # wait=False: close() may be called from an observer, on the callback thread.
            self._callbacks.shutdown(wait=False)


def _run_observer(observer: QueueStateObserver, state: t.QueueState, reason: str | None) -> None:
    try:
        observer(state, reason)
    except Exception:
        _logger.exception("queue-state observer %r failed", observer)


class _Relay:
    """The observer registered with the async client: forwards to the callback thread."""

    def __init__(self, bridge: _Bridge, observer: QueueStateObserver) -> None:
        self.bridge = bridge
        self.observer = observer

    def __call__(self, state: t.QueueState, reason: str | None) -> None:
        self.bridge.dispatch(self.observer, state, reason)


class APIFuture(Generic[T]):
    """A blocking handle to a result: ``.result(timeout=None)`` waits for it.

    A ``timeout`` that expires raises :class:`mint_async.FutureTimeoutError`; the
    request keeps running on the server and a later ``result()`` picks it up.
    """

    def __init__(self, bridge: _Bridge, inner: AsyncAPIFuture[T]) -> None:
        self._bridge = bridge
        self._inner = inner

    def __repr__(self) -> str:
        return f"APIFuture(request_id={self.request_id!r}, done={self.done()})"

    @property
    def request_id(self) -> str | None:
        """The server's request id, when there is exactly one."""
        return self._inner.request_id

    @property
    def total_polls(self) -> int:
        """``retrieve_future`` calls made for this result so far."""
        return self._inner.total_polls

    def done(self) -> bool:
        """Whether the result is already known (never blocks)."""
        return self._inner.done()

    def result(self, timeout: float | None = None) -> T:
        """Wait for the result (``timeout`` seconds at most: FutureTimeoutError)."""
        return self._bridge.call(self._inner.result, timeout)


class SampleFuture(APIFuture[t.SampleResponse]):
    """A sample's future; its result's fields are also readable directly (blocking)."""

    @property
    def sequences(self) -> list[t.SampledSequence]:
        """The sampled sequences (waits for the result)."""
        return self.result().sequences

    @property
    def prompt_logprobs(self) -> list[float | None] | None:
        """Prompt logprobs, if requested (waits for the result)."""
        return self.result().prompt_logprobs

    @property
    def topk_prompt_logprobs(self) -> list[list[tuple[int, float]] | None] | None:
        """Top-k prompt logprobs, if requested (waits for the result)."""
        return self.result().topk_prompt_logprobs


class SamplingClient:
    """Blocking twin of :class:`mint_async.SamplingClient`."""

    def __init__(self, bridge: _Bridge, inner: AsyncSamplingClient) -> None:
        self._bridge = bridge
        self._inner = inner
        self._relays: list[_Relay] = []

    def __repr__(self) -> str:
        return f"sync.{self._inner!r}"

    @property
    def sampling_session_id(self) -> str:
        """The server's id of this sampling session."""
        return self._inner.sampling_session_id

    @property
    def model_path(self) -> str | None:
        """The checkpoint sampled from, if not a base model."""
        return self._inner.model_path

    @property
    def seq_namespace(self) -> int:
        """This client's seq_id namespace (seq_ids are ``namespace * 10**9 + n``)."""
        return self._inner.seq_namespace

    @property
    def aio(self) -> AsyncSamplingClient:
        """The async client underneath (for use on the portal's loop)."""
        return self._inner

    def on_queue_state_change(self, observer: QueueStateObserver) -> None:
        """Call ``observer(state, reason)`` on each queue-state change, in the callback thread."""
        relay = _Relay(self._bridge, observer)
        self._bridge.run_sync(self._inner.on_queue_state_change, relay)
        self._relays.append(relay)

    def remove_queue_state_observer(self, observer: QueueStateObserver) -> None:
        """Stop calling an observer added with :meth:`on_queue_state_change` (ValueError if absent)."""
        relay = next((r for r in self._relays if r.observer == observer), None)
        if relay is None:
            msg = f"{observer!r} is not an observer of this client"
            raise ValueError(msg)
        self._bridge.run_sync(self._inner.remove_queue_state_observer, relay)
        self._relays.remove(relay)

    def queue_status(self) -> QueueStatus:
        """The last queue state the server reported (an immutable snapshot; never blocks)."""
        return self._inner.queue_status()

    def sample(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
    ) -> SampleFuture:
        """Submit a sample; ``.result()`` (or reading ``.sequences``) waits for it."""
        fut = self._bridge.call(
            self._inner.submit_sample,
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
        )
        return SampleFuture(self._bridge, fut)

    def submit_sample(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        *,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
    ) -> SampleFuture:
        """The async client's spelling of :meth:`sample`: returns the future once submitted."""
        return self.sample(
            prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs
        )

    def compute_logprobs(self, prompt: t.ModelInput) -> list[float | None]:
        """Per-token logprobs of ``prompt`` (the first is None)."""
        return self._bridge.call(self._inner.compute_logprobs, prompt)

    def get_tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self._bridge.call(self._inner.get_tokenizer)

    def get_base_model(self) -> str:
        """The base model sampled from."""
        return self._bridge.call(self._inner.get_base_model)


class TrainingClient:
    """Blocking twin of :class:`mint_async.TrainingClient`; operations return futures.

    Each operation returns once submitted, so ``fb = tc.forward_backward(b);
    opt = tc.optim_step(p)`` pipelines both before either result is awaited.
    """

    def __init__(self, bridge: _Bridge, inner: AsyncTrainingClient) -> None:
        self._bridge = bridge
        self._inner = inner

    def __repr__(self) -> str:
        return f"sync.{self._inner!r}"

    @property
    def model_id(self) -> str:
        """The training run id."""
        return self._inner.model_id

    @property
    def base_model(self) -> str:
        """The base model being fine-tuned."""
        return self._inner.base_model

    @property
    def next_seq_id(self) -> int:
        """The seq_id the next operation will get."""
        return self._inner.next_seq_id

    @property
    def aio(self) -> AsyncTrainingClient:
        """The async client underneath."""
        return self._inner

    def on_queue_state_change(self, observer: QueueStateObserver) -> None:
        """Call ``observer(state, reason)`` on each queue-state change, in the callback thread."""
        self._bridge.run_sync(self._inner.on_queue_state_change, _Relay(self._bridge, observer))

    def queue_status(self) -> QueueStatus:
        """The last queue state the server reported (an immutable snapshot; never blocks)."""
        return self._inner.queue_status()

    def _future(
        self, fn: Callable[P, Awaitable[AsyncAPIFuture[T]]], *args: P.args, **kwargs: P.kwargs
    ) -> APIFuture[T]:
        return APIFuture(self._bridge, self._bridge.call(fn, *args, **kwargs))

    def forward(
        self,
        data: Sequence[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Forward pass (no gradients); returns a future."""
        return self._future(self._inner.forward, data, loss_fn, loss_fn_config)

    def forward_backward(
        self,
        data: Sequence[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Forward and backward pass; returns a future of the result."""
        return self._future(self._inner.forward_backward, data, loss_fn, loss_fn_config)

    def forward_backward_custom(
        self, data: Sequence[t.Datum], loss_fn: CustomLossFn
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Train on a client-side torch loss; returns a future.

        ``loss_fn`` runs on the portal's event-loop thread (see the module docs).
        """
        return self._future(self._inner.forward_backward_custom, data, loss_fn)

    def optim_step(self, adam_params: t.AdamParams | None = None) -> APIFuture[t.OptimStepResponse]:
        """Apply the accumulated gradients; returns a future."""
        return self._future(self._inner.optim_step, adam_params)

    def save_state(
        self, name: str, ttl_seconds: int | None = None, overwrite: bool = False
    ) -> APIFuture[t.SaveWeightsResponse]:
        """Save weights and optimizer state; returns a future of the path."""
        return self._future(self._inner.save_state, name, ttl_seconds, overwrite)

    def load_state(self, path: str) -> APIFuture[t.LoadWeightsResponse]:
        """Load weights from a checkpoint; returns a future."""
        return self._future(self._inner.load_state, path)

    def load_state_with_optimizer(self, path: str) -> APIFuture[t.LoadWeightsResponse]:
        """Load weights and optimizer state; returns a future."""
        return self._future(self._inner.load_state_with_optimizer, path)

    def save_weights_for_sampler(
        self, name: str, ttl_seconds: int | None = None
    ) -> APIFuture[t.SaveWeightsForSamplerResponse]:
        """Save sampler weights; returns a future of the path."""
        return self._future(self._inner.save_weights_for_sampler, name, ttl_seconds)

    def save_weights_and_get_sampling_client(self, name: str | None = None) -> SamplingClient:
        """Snapshot the weights and return a sampling client for them."""
        return SamplingClient(
            self._bridge, self._bridge.call(self._inner.save_weights_and_get_sampling_client, name)
        )

    def create_sampling_client(self, model_path: str) -> SamplingClient:
        """A sampling client for saved sampler weights."""
        return SamplingClient(
            self._bridge, self._bridge.call(self._inner.create_sampling_client, model_path)
        )

    def forward_backward_reverse_kl(
        self,
        reference_model_path: str,
        data: Sequence[t.ReverseKLDatum],
        temperature: float = 1.0,
        seq_id: int | None = None,
    ) -> APIFuture[t.ForwardBackwardReverseKLResponse]:
        """MinT reverse-KL forward/backward; returns a future."""
        return self._future(
            self._inner.forward_backward_reverse_kl, reference_model_path, data, temperature, seq_id
        )

    def get_info(self) -> t.GetInfoResponse:
        """Model information."""
        return self._bridge.call(self._inner.get_info)

    def get_tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self._bridge.call(self._inner.get_tokenizer)


class RestClient:
    """Blocking twin of :class:`mint_async.RestClient` (every method returns its result)."""

    def __init__(self, bridge: _Bridge, inner: AsyncRestClient) -> None:
        self._bridge = bridge
        self._inner = inner

    def __repr__(self) -> str:
        return f"sync.{self._inner!r}"

    @property
    def aio(self) -> AsyncRestClient:
        """The async client underneath."""
        return self._inner

    def get_server_capabilities(self) -> t.GetServerCapabilitiesResponse:
        """Supported base models."""
        return self._bridge.call(self._inner.get_server_capabilities)

    def get_weights_info_by_tinker_path(self, tinker_path: str) -> t.WeightsInfoResponse:
        """What a checkpoint was trained from (base model, LoRA rank and targets)."""
        return self._bridge.call(self._inner.get_weights_info_by_tinker_path, tinker_path)

    def get_sampler(self, sampler_id: str) -> t.GetSamplerResponse:
        """What a sampling session samples."""
        return self._bridge.call(self._inner.get_sampler, sampler_id)

    def get_training_run(
        self, training_run_id: str, access_scope: AccessScope = "owned"
    ) -> t.TrainingRun:
        """One training run."""
        return self._bridge.call(self._inner.get_training_run, training_run_id, access_scope)

    def get_training_run_by_tinker_path(
        self, tinker_path: str, access_scope: AccessScope = "owned"
    ) -> t.TrainingRun:
        """The training run a checkpoint path belongs to."""
        return self._bridge.call(
            self._inner.get_training_run_by_tinker_path, tinker_path, access_scope
        )

    def list_training_runs(
        self, limit: int = 20, offset: int = 0, access_scope: AccessScope = "owned"
    ) -> t.TrainingRunsResponse:
        """A page of training runs."""
        return self._bridge.call(self._inner.list_training_runs, limit, offset, access_scope)

    def list_checkpoints(self, training_run_id: str) -> t.CheckpointsListResponse:
        """Checkpoints of a run."""
        return self._bridge.call(self._inner.list_checkpoints, training_run_id)

    def list_user_checkpoints(self, limit: int = 100, offset: int = 0) -> t.CheckpointsListResponse:
        """A page of all your checkpoints, newest first."""
        return self._bridge.call(self._inner.list_user_checkpoints, limit, offset)

    def delete_checkpoint(self, training_run_id: str, checkpoint_id: str) -> None:
        """Delete a checkpoint."""
        self._bridge.call(self._inner.delete_checkpoint, training_run_id, checkpoint_id)

    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Delete the checkpoint at a tinker path."""
        self._bridge.call(self._inner.delete_checkpoint_from_tinker_path, tinker_path)

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Make a checkpoint public (ConflictError if it already is)."""
        self._bridge.call(self._inner.publish_checkpoint_from_tinker_path, tinker_path)

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Make a checkpoint private again (ConflictError if it already is)."""
        self._bridge.call(self._inner.unpublish_checkpoint_from_tinker_path, tinker_path)

    def set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> None:
        """Expire a checkpoint ``ttl_seconds`` from now (``None`` removes the expiry)."""
        self._bridge.call(self._inner.set_checkpoint_ttl_from_tinker_path, tinker_path, ttl_seconds)

    def get_checkpoint_archive_url(
        self, training_run_id: str, checkpoint_id: str
    ) -> t.CheckpointArchiveUrlResponse | t.CheckpointFilesResponse:
        """Where to download a checkpoint: a signed archive URL, or per-file URLs."""
        return self._bridge.call(
            self._inner.get_checkpoint_archive_url, training_run_id, checkpoint_id
        )

    def get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> t.CheckpointArchiveUrlResponse | t.CheckpointFilesResponse:
        """:meth:`get_checkpoint_archive_url` for a tinker path."""
        return self._bridge.call(
            self._inner.get_checkpoint_archive_url_from_tinker_path, tinker_path
        )

    def download_checkpoint(
        self,
        tinker_path: str,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Download a checkpoint to ``dest``, verifying its size; returns what was written.

        ``progress(done, total)`` runs on the portal's event-loop thread (see the module docs).
        """
        return self._bridge.call(
            self._inner.download_checkpoint, tinker_path, dest, progress=progress
        )

    def get_session(
        self, session_id: str, access_scope: AccessScope = "owned"
    ) -> t.GetSessionResponse:
        """The training runs and samplers of a session."""
        return self._bridge.call(self._inner.get_session, session_id, access_scope)

    def list_sessions(
        self, limit: int = 20, offset: int = 0, access_scope: AccessScope = "owned"
    ) -> t.ListSessionsResponse:
        """A page of your session ids."""
        return self._bridge.call(self._inner.list_sessions, limit, offset, access_scope)

    def assign_session_project(self, session_id: str, project_id: str) -> None:
        """Move a session into a project."""
        self._bridge.call(self._inner.assign_session_project, session_id, project_id)

    def get_audit_log(
        self, event_type: t.AuditEventType = "all", day: date | None = None
    ) -> t.AuditLogResponse:
        """Audit log entries of one UTC day (default today)."""
        return self._bridge.call(self._inner.get_audit_log, event_type, day)


def _close(
    bridge: _Bridge,
    cm: contextlib.AbstractContextManager[Any],
    portal_cm: contextlib.AbstractContextManager[Any],
) -> None:
    bridge.closed = True
    try:
        try:
            cm.__exit__(None, None, None)
        finally:
            portal_cm.__exit__(None, None, None)
    finally:
        bridge.shutdown_callbacks()


class ServiceClient:
    """Blocking twin of :class:`mint_async.ServiceClient`. Close it with ``close()`` or ``with``.

    ``backend`` picks the event loop the portal thread runs (``"asyncio"`` or
    ``"trio"``); ``transport`` (an ``httpx.AsyncBaseTransport``) runs on that loop.

    Example::

        with mint.ServiceClient(base_url="http://127.0.0.1:8000", api_key="sk-...") as svc:
            tc = svc.create_lora_training_client(base_model="Qwen/Qwen3-0.6B", rank=16)
            print(tc.forward_backward(batch, "cross_entropy").result(timeout=60).loss)
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        base_model: str | None = None,
        lora_rank: int | None = None,
        project_id: str | None = None,
        user_metadata: Mapping[str, str] | None = None,
        tags: Sequence[str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        config: ClientConfig | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
        **settings: Any,
    ) -> None:
        inner = AsyncServiceClient(
            api_key=api_key,
            base_url=base_url,
            base_model=base_model,
            lora_rank=lora_rank,
            project_id=project_id,
            user_metadata=user_metadata,
            tags=tags,
            transport=transport,
            config=config,
            **settings,
        )
        portal_cm = start_blocking_portal(backend)
        portal = portal_cm.__enter__()
        try:
            cm = portal.wrap_async_context_manager(inner)
            cm.__enter__()
        except BaseException:
            portal_cm.__exit__(None, None, None)
            raise
        self._inner = inner
        self._bridge = _Bridge(portal)
        # Closed by close(), by `with`, or at interpreter exit at the latest.
        self._finalizer = weakref.finalize(self, _close, self._bridge, cm, portal_cm)

    def __repr__(self) -> str:
        return f"sync.{self._inner!r}"

    def close(self) -> None:
        """End the session and stop the portal thread (idempotent)."""
        self._finalizer()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def config(self) -> ClientConfig:
        """The resolved settings (the API key is never shown in reprs)."""
        return self._inner.config

    @property
    def session_id(self) -> str:
        """The server's id of this client's session."""
        return self._inner.session_id

    @property
    def aio(self) -> AsyncServiceClient:
        """The async client underneath."""
        return self._inner

    @property
    def portal(self) -> BlockingPortal:
        """The portal running the async client (to call your own coroutines on its loop)."""
        return self._bridge.portal

    def create_lora_training_client(
        self,
        base_model: str | None = None,
        rank: int | None = None,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        user_metadata: Mapping[str, str] | None = None,
        *,
        wandb: t.WandbConfig | None = None,
    ) -> TrainingClient:
        """Create a LoRA training run."""
        inner = self._bridge.call(
            self._inner.create_lora_training_client,
            base_model,
            rank,
            seed,
            train_mlp,
            train_attn,
            train_unembed,
            user_metadata,
            wandb=wandb,
        )
        return TrainingClient(self._bridge, inner)

    def create_training_client_from_state(
        self, path: str, user_metadata: Mapping[str, str] | None = None
    ) -> TrainingClient:
        """A training run initialised from a checkpoint's weights (fresh optimizer)."""
        return TrainingClient(
            self._bridge,
            self._bridge.call(self._inner.create_training_client_from_state, path, user_metadata),
        )

    def create_training_client_from_state_with_optimizer(
        self, path: str, user_metadata: Mapping[str, str] | None = None
    ) -> TrainingClient:
        """A training run resuming a checkpoint (weights and optimizer)."""
        return TrainingClient(
            self._bridge,
            self._bridge.call(
                self._inner.create_training_client_from_state_with_optimizer, path, user_metadata
            ),
        )

    def create_sampling_client(
        self, model_path: str | None = None, base_model: str | None = None
    ) -> SamplingClient:
        """A sampling client for a checkpoint or a base model."""
        return SamplingClient(
            self._bridge,
            self._bridge.call(self._inner.create_sampling_client, model_path, base_model),
        )

    def get_server_capabilities(self) -> t.GetServerCapabilitiesResponse:
        """Supported base models."""
        return self._bridge.call(self._inner.get_server_capabilities)

    def create_rest_client(self) -> RestClient:
        """The REST API."""
        return RestClient(self._bridge, self._bridge.run_sync(self._inner.create_rest_client))

    def interpolate_checkpoints(
        self,
        source_paths: Sequence[str],
        coefficients: Sequence[float],
        output_path: str | None = None,
    ) -> t.InterpolateCheckpointsResponse:
        """MinT: mix sampler checkpoints."""
        return self._bridge.call(
            self._inner.interpolate_checkpoints, source_paths, coefficients, output_path
        )
