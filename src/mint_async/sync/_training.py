"""The blocking twin of :class:`mint_async.TrainingClient`: operations return futures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .. import types as t
from .._futures import APIFuture as AsyncAPIFuture
from .._training import TrainingClient as AsyncTrainingClient
from ._bridge import ObservedTwin
from ._futures import APIFuture
from ._sampling import SamplingClient

if TYPE_CHECKING:
    from .._custom_loss import CustomLossFn
    from .._loss_handle import LossHandle

__all__ = ["TrainingClient"]

T = TypeVar("T")
P = ParamSpec("P")


class TrainingClient(ObservedTwin[AsyncTrainingClient]):
    """Blocking twin of :class:`mint_async.TrainingClient`; operations return futures.

    Each operation returns once submitted, so ``fb = tc.forward_backward(b);
    opt = tc.optim_step(p)`` pipelines both before either result is awaited.
    """

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
        self, data: Sequence[t.Datum], loss_fn: CustomLossFn | LossHandle
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Train on a client-side torch loss; returns a future.

        ``loss_fn`` runs on the portal's event-loop thread (see the module docs).
        """
        return self._future(self._inner.forward_backward_custom, data, loss_fn)

    def optim_step(
        self, optim_params: t.AdamParams | None = None, *, adam_params: t.AdamParams | None = None
    ) -> APIFuture[t.OptimStepResponse]:
        """Apply the accumulated gradients (``optim_params`` or ``adam_params``); returns a future."""
        return self._future(self._inner.optim_step, optim_params, adam_params=adam_params)

    def save_state(
        self,
        name: str,
        ttl_seconds: int | None = None,
        overwrite: bool = False,
        user_metadata: Mapping[str, str] | None = None,
    ) -> APIFuture[t.SaveWeightsResponse]:
        """Save weights and optimizer state; returns a future of the path."""
        return self._future(self._inner.save_state, name, ttl_seconds, overwrite, user_metadata)

    def load_state(self, path: str) -> APIFuture[t.LoadWeightsResponse]:
        """Load weights from a checkpoint; returns a future."""
        return self._future(self._inner.load_state, path)

    def load_state_with_optimizer(self, path: str) -> APIFuture[t.LoadWeightsResponse]:
        """Load weights and optimizer state; returns a future."""
        return self._future(self._inner.load_state_with_optimizer, path)

    def save_weights_for_sampler(
        self,
        name: str,
        ttl_seconds: int | None = None,
        user_metadata: Mapping[str, str] | None = None,
    ) -> APIFuture[t.SaveWeightsForSamplerResponse]:
        """Save sampler weights; returns a future of the path."""
        return self._future(self._inner.save_weights_for_sampler, name, ttl_seconds, user_metadata)

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
