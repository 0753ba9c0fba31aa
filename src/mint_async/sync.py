"""A blocking facade over the async clients, for scripts and notebooks.

One anyio ``BlockingPortal`` (an event loop in a helper thread) per
``ServiceClient``; every method is a single ``portal.call`` into the async
client, so there is one implementation of everything. Works from threads that
already run an event loop (Jupyter).

The MinT docs' examples run unchanged with only the import changed::

    from mint_async import sync as mint
    from mint_async import types

    service_client = mint.ServiceClient()
    training_client = service_client.create_lora_training_client(base_model="Qwen/Qwen3-0.6B", rank=16)
    result = training_client.forward_backward(batch, loss_fn="cross_entropy").result()
    training_client.optim_step(types.AdamParams(learning_rate=5e-5)).result()
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import types as t
from ._exceptions import ClientClosedError
from ._futures import APIFuture as AsyncAPIFuture
from ._rest import RestClient as AsyncRestClient
from ._sampling import SamplingClient as AsyncSamplingClient
from ._service import ServiceClient as AsyncServiceClient
from ._training import TrainingClient as AsyncTrainingClient

if TYPE_CHECKING:
    from datetime import date

    from ._config import ClientConfig
    from ._custom_loss import CustomLossFn

__all__ = [
    "APIFuture",
    "RestClient",
    "SampleFuture",
    "SamplingClient",
    "ServiceClient",
    "TrainingClient",
]

T = TypeVar("T")
P = ParamSpec("P")


class _Bridge:
    """Runs coroutines of the async clients on the portal's loop."""

    def __init__(self, portal: BlockingPortal) -> None:
        self.portal = portal
        self.closed = False

    def call(self, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run ``fn(*args, **kwargs)`` on the portal's loop and return its result."""
        if self.closed:
            msg = "this ServiceClient is closed"
            raise ClientClosedError(msg)
        return self.portal.call(functools.partial(fn, *args, **kwargs))


class APIFuture(Generic[T]):
    """A blocking handle to a result: ``.result(timeout=None)`` waits for it."""

    def __init__(self, bridge: _Bridge, inner: AsyncAPIFuture[T]) -> None:
        self._bridge = bridge
        self._inner = inner

    def __repr__(self) -> str:
        return f"APIFuture(request_id={self.request_id!r}, done={self.done()})"

    @property
    def request_id(self) -> str | None:
        """The server's request id, when there is exactly one."""
        return self._inner.request_id

    def done(self) -> bool:
        """Whether the result is already known (never blocks)."""
        return self._inner.done()

    def result(self, timeout: float | None = None) -> T:
        """Wait for the result (``timeout`` seconds at most: FutureTimeoutError)."""
        value: T = self._bridge.call(self._inner.result, timeout)
        return value


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

    def __repr__(self) -> str:
        return f"sync.{self._inner!r}"

    @property
    def sampling_session_id(self) -> str:
        """The server's id of this sampling session."""
        return self._inner.sampling_session_id

    @property
    def aio(self) -> AsyncSamplingClient:
        """The async client underneath (for use on the portal's loop)."""
        return self._inner

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

    def compute_logprobs(self, prompt: t.ModelInput) -> list[float | None]:
        """Per-token logprobs of ``prompt`` (the first is None)."""
        result: list[float | None] = self._bridge.call(self._inner.compute_logprobs, prompt)
        return result

    def get_tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self._bridge.call(self._inner.get_tokenizer)

    def get_base_model(self) -> str:
        """The base model sampled from."""
        result: str = self._bridge.call(self._inner.get_base_model)
        return result


class TrainingClient:
    """Blocking twin of :class:`mint_async.TrainingClient`; operations return futures."""

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
    def aio(self) -> AsyncTrainingClient:
        """The async client underneath."""
        return self._inner

    def _future(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> APIFuture[Any]:
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
        """Train on a client-side torch loss; returns a future."""
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
        result: t.GetInfoResponse = self._bridge.call(self._inner.get_info)
        return result

    def get_tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self._bridge.call(self._inner.get_tokenizer)


class RestClient:
    """Blocking twin of :class:`mint_async.RestClient` (every method returns its result)."""

    def __init__(self, bridge: _Bridge, inner: AsyncRestClient) -> None:
        self._bridge = bridge
        self._inner = inner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self._bridge.call, attr)

    def get_server_capabilities(self) -> t.GetServerCapabilitiesResponse:
        """Supported base models."""
        result: t.GetServerCapabilitiesResponse = self._bridge.call(
            self._inner.get_server_capabilities
        )
        return result

    def list_training_runs(
        self,
        limit: int = 20,
        offset: int = 0,
        access_scope: Literal["owned", "accessible"] = "owned",
    ) -> t.TrainingRunsResponse:
        """A page of training runs."""
        result: t.TrainingRunsResponse = self._bridge.call(
            self._inner.list_training_runs, limit, offset, access_scope
        )
        return result

    def list_checkpoints(self, training_run_id: str) -> t.CheckpointsListResponse:
        """Checkpoints of a run."""
        result: t.CheckpointsListResponse = self._bridge.call(
            self._inner.list_checkpoints, training_run_id
        )
        return result

    def list_user_checkpoints(self, limit: int = 100, offset: int = 0) -> t.CheckpointsListResponse:
        """A page of all your checkpoints."""
        result: t.CheckpointsListResponse = self._bridge.call(
            self._inner.list_user_checkpoints, limit, offset
        )
        return result

    def get_training_run(self, training_run_id: str) -> t.TrainingRun:
        """One training run."""
        result: t.TrainingRun = self._bridge.call(self._inner.get_training_run, training_run_id)
        return result

    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Delete a checkpoint."""
        self._bridge.call(self._inner.delete_checkpoint_from_tinker_path, tinker_path)

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Make a checkpoint public."""
        self._bridge.call(self._inner.publish_checkpoint_from_tinker_path, tinker_path)

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Make a checkpoint private."""
        self._bridge.call(self._inner.unpublish_checkpoint_from_tinker_path, tinker_path)

    def get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> t.CheckpointArchiveUrlResponse | t.CheckpointFilesResponse:
        """Where to download a checkpoint."""
        result: t.CheckpointArchiveUrlResponse | t.CheckpointFilesResponse = self._bridge.call(
            self._inner.get_checkpoint_archive_url_from_tinker_path, tinker_path
        )
        return result

    def get_audit_log(
        self, event_type: t.AuditEventType = "all", day: date | None = None
    ) -> t.AuditLogResponse:
        """Audit log entries."""
        result: t.AuditLogResponse = self._bridge.call(self._inner.get_audit_log, event_type, day)
        return result


def _close(
    bridge: _Bridge,
    cm: contextlib.AbstractContextManager[Any],
    portal_cm: contextlib.AbstractContextManager[Any],
) -> None:
    bridge.closed = True
    try:
        cm.__exit__(None, None, None)
    finally:
        portal_cm.__exit__(None, None, None)


class ServiceClient:
    """Blocking twin of :class:`mint_async.ServiceClient`. Close it with ``close()`` or ``with``.

    ``backend`` picks the event loop the portal thread runs (``"asyncio"`` or ``"trio"``).
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

    def create_training_client_from_state(self, path: str) -> TrainingClient:
        """A training run initialised from a checkpoint's weights."""
        return TrainingClient(
            self._bridge, self._bridge.call(self._inner.create_training_client_from_state, path)
        )

    def create_training_client_from_state_with_optimizer(self, path: str) -> TrainingClient:
        """A training run resuming a checkpoint (weights and optimizer)."""
        return TrainingClient(
            self._bridge,
            self._bridge.call(self._inner.create_training_client_from_state_with_optimizer, path),
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
        result: t.GetServerCapabilitiesResponse = self._bridge.call(
            self._inner.get_server_capabilities
        )
        return result

    def create_rest_client(self) -> RestClient:
        """The REST API."""
        return RestClient(self._bridge, self._inner.create_rest_client())

    def interpolate_checkpoints(
        self,
        source_paths: Sequence[str],
        coefficients: Sequence[float],
        output_path: str | None = None,
    ) -> t.InterpolateCheckpointsResponse:
        """MinT: mix sampler checkpoints."""
        result: t.InterpolateCheckpointsResponse = self._bridge.call(
            self._inner.interpolate_checkpoints, source_paths, coefficients, output_path
        )
        return result
