"""tinker 0.38's ``TrainingClient`` on mint_async's async ``TrainingClient``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .. import types as t
from .._exceptions import InvalidInputError
from .._foreign import as_adam_params, as_data
from .._loss_handle import LossHandle
from ._futures import APIFuture, ClientFuture
from ._runtime import runtime
from ._sampling import SamplingClient

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from .._futures import APIFuture as AsyncAPIFuture
    from .._training import TrainingClient as AsyncTrainingClient

T = TypeVar("T")

__all__ = ["TrainingClient"]


def _no_access_token(weights_access_token: str | None) -> None:
    if weights_access_token is not None:
        msg = "weights_access_token (another account's checkpoint) is not supported by mint_async"
        raise InvalidInputError(msg)


class TrainingClient:
    """Trains one LoRA model; every operation returns an :class:`APIFuture` at once.

    Operations are sent in call order (forward_backward, then optim_step, ...),
    as tinker guarantees; wait for their results in any order.
    """

    def __init__(self, inner: AsyncTrainingClient, *, base_url: str) -> None:
        self._inner = inner
        self._base_url = base_url
        self._lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return f"tinker_compat.{self._inner!r}"

    @property
    def model_id(self) -> str:
        """The training run's id."""
        return self._inner.model_id

    @property
    def aio(self) -> AsyncTrainingClient:
        """The mint_async client underneath."""
        return self._inner

    @asynccontextmanager
    async def _turn(self) -> AsyncGenerator[None]:
        # Tasks start on the loop in call order and queue on this (fair) lock in
        # that order, so requests are submitted (and take seq_ids) in call order.
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            yield

    def _op(self, submit: Callable[[], Awaitable[AsyncAPIFuture[T]]]) -> APIFuture[T]:
        async def run() -> T:
            async with self._turn():
                fut = await submit()
            return await fut

        return APIFuture(runtime().spawn(run))

    # -- training ----------------------------------------------------------------

    def forward(
        self,
        data: Sequence[Any],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: Mapping[str, float] | None = None,
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Forward pass (no gradients) over ``data``."""
        batch = as_data(data)
        config = dict(loss_fn_config) if loss_fn_config is not None else None
        return self._op(lambda: self._inner.forward(batch, loss_fn, config))

    def forward_backward(
        self,
        data: Sequence[Any],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: Mapping[str, float] | None = None,
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Accumulate the gradients of ``loss_fn`` over ``data``."""
        batch = as_data(data)
        config = dict(loss_fn_config) if loss_fn_config is not None else None
        return self._op(lambda: self._inner.forward_backward(batch, loss_fn, config))

    def forward_backward_custom(
        self, data: Sequence[Any], loss_fn: Any, *, loss_type_input: str | None = None
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Train on a loss computed client-side (``loss_fn(data, logprobs) -> (loss, metrics)``)."""
        if loss_type_input not in (None, "logprobs"):
            msg = f"loss_type_input must be 'logprobs' or None, got {loss_type_input!r}"
            raise InvalidInputError(msg)
        batch = as_data(data)
        # A LossHandle (create_custom_loss) runs per datum; a callable takes the whole batch.
        fn = loss_fn.batch_loss if isinstance(loss_fn, LossHandle) else loss_fn
        return self._op(lambda: self._inner.forward_backward_custom(batch, fn))

    def optim_step(
        self, optim_params: Any = None, *, adam_params: Any = None
    ) -> APIFuture[t.OptimStepResponse]:
        """Apply the accumulated gradients (``optim_params`` or, as before 0.38, ``adam_params``)."""
        if optim_params is not None and adam_params is not None:
            msg = "pass optim_params or adam_params, not both"
            raise InvalidInputError(msg)
        chosen = optim_params if optim_params is not None else adam_params
        params = as_adam_params(chosen) if chosen is not None else None
        return self._op(lambda: self._inner.optim_step(params))

    # -- checkpoints -------------------------------------------------------------

    def save_state(
        self,
        name: str,
        ttl_seconds: int | None = None,
        overwrite: bool = False,
        user_metadata: Mapping[str, str] | None = None,
    ) -> APIFuture[t.SaveWeightsResponse]:
        """Save weights and optimizer state as ``tinker://<run>/weights/<name>``."""
        meta = dict(user_metadata) if user_metadata is not None else None
        return self._op(
            lambda: self._inner.save_state(name, ttl_seconds, overwrite, user_metadata=meta)
        )

    def load_state(
        self, path: str, weights_access_token: str | None = None
    ) -> APIFuture[t.LoadWeightsResponse]:
        """Load weights (not the optimizer state) from a training checkpoint."""
        _no_access_token(weights_access_token)
        return self._op(lambda: self._inner.load_state(path))

    def load_state_with_optimizer(
        self, path: str, weights_access_token: str | None = None
    ) -> APIFuture[t.LoadWeightsResponse]:
        """Load weights and optimizer state from a training checkpoint."""
        _no_access_token(weights_access_token)
        return self._op(lambda: self._inner.load_state_with_optimizer(path))

    def save_weights_for_sampler(
        self,
        name: str,
        ttl_seconds: int | None = None,
        user_metadata: Mapping[str, str] | None = None,
    ) -> APIFuture[t.SaveWeightsForSamplerResponse]:
        """Save sampler weights as ``tinker://<run>/sampler_weights/<name>``."""
        meta = dict(user_metadata) if user_metadata is not None else None
        return self._op(
            lambda: self._inner.save_weights_for_sampler(name, ttl_seconds, user_metadata=meta)
        )

    def create_sampling_client(
        self, model_path: str, retry_config: Any = None, record_stability_info: bool = False
    ) -> ClientFuture[SamplingClient]:
        """A future of a client sampling the saved weights at ``model_path``."""
        del retry_config  # mint_async's ClientConfig.retry applies

        async def run() -> SamplingClient:
            inner = await self._inner.create_sampling_client(model_path)
            return SamplingClient(
                inner, base_url=self._base_url, record_stability_info=record_stability_info
            )

        return ClientFuture(runtime().spawn(run))

    def save_weights_and_get_sampling_client(
        self,
        name: str | None = None,
        retry_config: Any = None,
        record_stability_info: bool = False,
        kind: str = "snapshot",
    ) -> ClientFuture[SamplingClient]:
        """Snapshot the current weights for sampling; a future of a client sampling them."""
        del retry_config
        if kind != "snapshot":
            msg = f"kind={kind!r}: mint_async samples saved snapshots only ('snapshot')"
            raise InvalidInputError(msg)

        async def run() -> SamplingClient:
            async with self._turn():
                inner = await self._inner.save_weights_and_get_sampling_client(name)
            return SamplingClient(
                inner, base_url=self._base_url, record_stability_info=record_stability_info
            )

        return ClientFuture(runtime().spawn(run))

    # -- information --------------------------------------------------------------

    def get_info(self) -> t.GetInfoResponse:
        """The run's model information."""
        return runtime().call(self._inner.get_info)

    def get_tokenizer(self) -> Any:
        """The base model's tokenizer (``transformers``)."""
        return runtime().call(self._inner.get_tokenizer)

    # -- tinker's deprecated *_async spellings ---------------------------------------

    async def forward_async(self, *args: Any, **kwargs: Any) -> APIFuture[t.ForwardBackwardOutput]:
        """Deprecated in tinker 0.38: :meth:`forward` returns a future at once."""
        return self.forward(*args, **kwargs)

    async def forward_backward_async(
        self, *args: Any, **kwargs: Any
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Deprecated in tinker 0.38: :meth:`forward_backward` returns a future at once."""
        return self.forward_backward(*args, **kwargs)

    async def forward_backward_custom_async(
        self, *args: Any, **kwargs: Any
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Deprecated in tinker 0.38: :meth:`forward_backward_custom` returns a future at once."""
        return self.forward_backward_custom(*args, **kwargs)

    async def optim_step_async(self, *args: Any, **kwargs: Any) -> APIFuture[t.OptimStepResponse]:
        """Deprecated in tinker 0.38: :meth:`optim_step` returns a future at once."""
        return self.optim_step(*args, **kwargs)

    async def save_state_async(self, *args: Any, **kwargs: Any) -> APIFuture[t.SaveWeightsResponse]:
        """Deprecated in tinker 0.38: :meth:`save_state` returns a future at once."""
        return self.save_state(*args, **kwargs)

    async def load_state_async(self, *args: Any, **kwargs: Any) -> APIFuture[t.LoadWeightsResponse]:
        """Deprecated in tinker 0.38: :meth:`load_state` returns a future at once."""
        return self.load_state(*args, **kwargs)

    async def load_state_with_optimizer_async(
        self, *args: Any, **kwargs: Any
    ) -> APIFuture[t.LoadWeightsResponse]:
        """Deprecated in tinker 0.38: :meth:`load_state_with_optimizer` returns a future at once."""
        return self.load_state_with_optimizer(*args, **kwargs)

    async def save_weights_for_sampler_async(
        self, *args: Any, **kwargs: Any
    ) -> APIFuture[t.SaveWeightsForSamplerResponse]:
        """Deprecated in tinker 0.38: :meth:`save_weights_for_sampler` returns a future at once."""
        return self.save_weights_for_sampler(*args, **kwargs)

    async def get_info_async(self) -> t.GetInfoResponse:
        """The run's model information."""
        return await self.get_info_future()

    def get_info_future(self) -> APIFuture[t.GetInfoResponse]:
        """:meth:`get_info` as a future."""
        return APIFuture(runtime().spawn(self._inner.get_info))

    async def create_sampling_client_async(self, *args: Any, **kwargs: Any) -> SamplingClient:
        """Deprecated in tinker 0.38: await :meth:`create_sampling_client` instead."""
        return await self.create_sampling_client(*args, **kwargs)

    async def save_weights_and_get_sampling_client_async(
        self, *args: Any, **kwargs: Any
    ) -> SamplingClient:
        """Deprecated in tinker 0.38: await :meth:`save_weights_and_get_sampling_client` instead."""
        return await self.save_weights_and_get_sampling_client(*args, **kwargs)
