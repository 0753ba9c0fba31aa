"""TrainingClient: forward/backward, optimizer steps and weights of one LoRA training run.

Colour by blocking: every operation is ``async``; awaiting it returns once the
request is **submitted and ordered** (its seq_id taken, its POST answered) and
gives back a future; awaiting the future gives the result. So::

    fb = await tc.forward_backward(batch, "cross_entropy")
    opt = await tc.optim_step(types.AdamParams(learning_rate=1e-4))
    loss = (await fb).loss; await opt

submits both back to back so they land in the same server cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import types as t
from ._context import ClientContext, QueueStateObservable, call
from ._custom_loss import CustomLossFn, run_custom_loss
from ._exceptions import APIResponseValidationError, InvalidInputError
from ._foreign import as_adam_params
from ._futures import APIFuture, MapFuture, QueueStateMonitor
from ._ordering import SequenceGate
from ._sampling import SamplingClient
from ._sampling_session import open_sampling_session
from ._training_ops import ForwardBackwardFuture as ForwardBackwardFuture
from ._training_ops import OrderedSender

if TYPE_CHECKING:
    from ._config import ClientConfig
    from ._loss_handle import LossHandle
    from ._pipeline import TrainingPipeline

__all__ = ["ForwardBackwardFuture", "MetricsSink", "TrainingClient"]

logger = logging.getLogger("mint_async")

MetricsSink = Callable[[str, dict[str, float]], None]
"""Receives ``(operation, metrics)`` for every completed forward_backward / optim_step."""


def _check_path(path: str, what: str) -> None:
    # Paths are the server's to interpret: anything it minted (tinker://…, mint://…,
    # or a shape we do not know) is passed through unchanged.
    if not isinstance(path, str) or not path:
        msg = f"{what} must be a non-empty string"
        raise InvalidInputError(msg)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        msg = f"a checkpoint name must be a non-empty string without '/', got {name!r}"
        raise InvalidInputError(msg)


class TrainingClient(QueueStateObservable):
    """Trains one LoRA model. Create it with ``ServiceClient.create_lora_training_client``."""

    def __init__(
        self,
        ctx: ClientContext,
        model_id: str,
        *,
        base_model: str,
        metrics_sink: MetricsSink | None = None,
        first_seq_id: int = 1,
    ) -> None:
        self._ctx = ctx
        self._model_id = model_id
        self._base_model = base_model
        self._gate = SequenceGate(first_seq_id=first_seq_id)
        self._monitor = QueueStateMonitor(f"training run {model_id}")
        self._sender = OrderedSender(ctx, model_id, self._gate, self._monitor)
        self._sink = metrics_sink
        self._info: t.GetInfoResponse | None = None

    def __repr__(self) -> str:
        return f"TrainingClient(model_id={self._model_id!r}, base_model={self._base_model!r})"

    @property
    def model_id(self) -> str:
        """The training run id (``<session_id>:train:<n>``)."""
        return self._model_id

    @property
    def base_model(self) -> str:
        """The base model being fine-tuned."""
        return self._base_model

    @property
    def next_seq_id(self) -> int:
        """The seq_id the next operation will get (the first after creation is 1)."""
        return self._gate.next_seq_id

    def pipeline(
        self,
        max_in_flight: int = 16,
        max_in_flight_bytes: int = 50_000_000,
        *,
        fail_fast: bool = False,
    ) -> TrainingPipeline:
        """Queue training operations back to back (in seq order) and collect results later.

        Example::

            async with tc.pipeline() as pipe:
                for batch in batches:
                    await pipe.forward_backward(batch)
                    await pipe.optim_step(params)
                results = await pipe.results()
        """
        # Imported here: a client module does not load the pipelines until one is made.
        from ._pipeline import TrainingPipeline  # noqa: PLC0415

        return TrainingPipeline(
            self,
            max_in_flight=max_in_flight,
            max_in_flight_bytes=max_in_flight_bytes,
            min_in_flight=1,
            fail_fast=fail_fast,
        )

    async def aclose(self) -> None:
        """Close the connections of an unpickled copy (a no-op for clients of a ServiceClient)."""
        if self._ctx.owns_transport:
            await self._ctx.transport.aclose()

    async def __aenter__(self) -> TrainingClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # A hand-off: the copy continues this run's seq_ids from where they are
        # now, on its own connections. Use the run from one process at a time.
        return (
            _unpickle_training_client,
            (self._ctx.config, self._model_id, self._base_model, self._gate.next_seq_id),
        )

    # -- results -----------------------------------------------------------------------

    def _report(self, operation: str, metrics: dict[str, float] | None) -> None:
        if self._sink is not None and metrics:
            try:
                self._sink(operation, dict(metrics))
            except Exception:  # a broken metrics sink must not fail training
                logger.exception("metrics sink failed for %s", operation)

    async def _forward(
        self,
        data: Sequence[t.Datum],
        loss_fn: t.LossFnType,
        loss_fn_config: dict[str, float] | None,
        *,
        backward: bool,
    ) -> ForwardBackwardFuture:
        parts = await self._sender.start_batch(data, loss_fn, loss_fn_config, backward=backward)
        op = "forward_backward" if backward else "forward"
        return ForwardBackwardFuture(parts, sink=lambda out: self._report(op, out.metrics))

    # -- training operations ---------------------------------------------------------

    async def forward(
        self,
        data: Sequence[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
    ) -> ForwardBackwardFuture:
        """Run the model forward (no gradients); returns once submitted.

        Example::

            out = await (await tc.forward(batch))
            logprobs = out.loss_fn_outputs[0]["logprobs"].to_numpy()
        """
        return await self._forward(data, loss_fn, loss_fn_config, backward=False)

    async def forward_backward(
        self,
        data: Sequence[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
    ) -> ForwardBackwardFuture:
        """Accumulate gradients of ``loss_fn`` over ``data``; returns once submitted.

        Large batches are split into chunks (by count and bytes) that share one
        turn; the result combines them (metrics reduced by their ``:suffix``).

        Example::

            fb = await tc.forward_backward(batch, "cross_entropy")
            print((await fb).loss)
        """
        return await self._forward(data, loss_fn, loss_fn_config, backward=True)

    async def forward_backward_custom(
        self, data: Sequence[t.Datum], loss_fn: CustomLossFn | LossHandle
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Train on a loss computed client-side with torch from the model's logprobs.

        ``loss_fn(data, logprobs)`` gets one float32 tensor of per-token logprobs per
        datum (requires_grad) and returns ``(loss, metrics)``. The client runs a
        forward pass, differentiates ``loss`` and submits a ``cross_entropy``
        forward_backward whose weights are ``-dloss/dlogprobs``. Needs torch. ``loss_fn`` may
        also be a per-datum loss from :meth:`ServiceClient.create_custom_loss`.
        """
        return await run_custom_loss(self, data, loss_fn)

    async def optim_step(
        self, optim_params: t.AdamParams | None = None, *, adam_params: t.AdamParams | None = None
    ) -> APIFuture[t.OptimStepResponse]:
        """Apply the accumulated gradients with AdamW; returns once submitted.

        ``optim_params`` (tinker 0.38's name) or ``adam_params``: a ``types.AdamParams``
        (or tinker's own ``AdamParams``, converted by its fields).

        Example::

            await (await tc.optim_step(types.AdamParams(learning_rate=5e-5)))
        """
        if optim_params is not None and adam_params is not None:
            msg = "pass optim_params or adam_params, not both"
            raise InvalidInputError(msg)
        chosen = optim_params if optim_params is not None else adam_params
        params = as_adam_params(chosen) if chosen is not None else t.AdamParams()
        fut = await self._sender.start(
            "api/v1/optim_step",
            lambda seq: t.OptimStepRequest(adam_params=params, model_id=self._model_id, seq_id=seq),
            t.OptimStepResponse,
            "OptimStep",
        )

        async def report(resp: t.OptimStepResponse) -> t.OptimStepResponse:
            self._report("optim_step", resp.metrics)
            return resp

        return MapFuture(fut, report)

    async def save_state(
        self,
        name: str,
        ttl_seconds: int | None = None,
        overwrite: bool = False,
        user_metadata: Mapping[str, str] | None = None,
    ) -> APIFuture[t.SaveWeightsResponse]:
        """Save weights and optimizer state as ``tinker://<run>/weights/<name>``."""
        _check_name(name)
        meta = dict(user_metadata) if user_metadata is not None else None
        return await self._sender.start(
            "api/v1/save_weights",
            lambda seq: t.SaveWeightsRequest(
                model_id=self._model_id,
                path=name,
                seq_id=seq,
                overwrite=overwrite,
                ttl_seconds=ttl_seconds,
                user_metadata=meta,
            ),
            t.SaveWeightsResponse,
            "SaveWeights",
        )

    async def _load(self, path: str, *, optimizer: bool) -> APIFuture[t.LoadWeightsResponse]:
        _check_path(path, "path")
        return await self._sender.start(
            "api/v1/load_weights",
            lambda seq: t.LoadWeightsRequest(
                model_id=self._model_id, path=path, seq_id=seq, optimizer=optimizer
            ),
            t.LoadWeightsResponse,
            "LoadWeights",
        )

    async def load_state(self, path: str) -> APIFuture[t.LoadWeightsResponse]:
        """Load weights (not optimizer state) from a training checkpoint."""
        return await self._load(path, optimizer=False)

    async def load_state_with_optimizer(self, path: str) -> APIFuture[t.LoadWeightsResponse]:
        """Load weights and optimizer state from a training checkpoint."""
        return await self._load(path, optimizer=True)

    async def save_weights_for_sampler(
        self,
        name: str,
        ttl_seconds: int | None = None,
        user_metadata: Mapping[str, str] | None = None,
    ) -> APIFuture[t.SaveWeightsForSamplerResponse]:
        """Save sampler weights as ``tinker://<run>/sampler_weights/<name>``."""
        _check_name(name)
        meta = dict(user_metadata) if user_metadata is not None else None
        fut = await self._sender.start(
            "api/v1/save_weights_for_sampler",
            lambda seq: t.SaveWeightsForSamplerRequest(
                model_id=self._model_id,
                seq_id=seq,
                path=name,
                ttl_seconds=ttl_seconds,
                user_metadata=meta,
            ),
            t.SaveWeightsForSamplerResponseInternal,
            "SaveWeightsForSampler",
        )

        async def public(
            resp: t.SaveWeightsForSamplerResponseInternal,
        ) -> t.SaveWeightsForSamplerResponse:
            if resp.path is None:
                msg = "save_weights_for_sampler returned no path"
                raise APIResponseValidationError(msg)
            return t.SaveWeightsForSamplerResponse(path=resp.path)

        return MapFuture(fut, public)

    async def save_weights_and_get_sampling_client(self, name: str | None = None) -> SamplingClient:
        """Snapshot the current weights for sampling and return a client sampling them.

        ``name`` is accepted for compatibility and ignored (the snapshot is ephemeral).
        """
        del name
        sampling_seq = next(self._ctx.sampling_seq)
        fut = await self._sender.start(
            "api/v1/save_weights_for_sampler",
            lambda seq: t.SaveWeightsForSamplerRequest(
                model_id=self._model_id, seq_id=seq, sampling_session_seq_id=sampling_seq
            ),
            t.SaveWeightsForSamplerResponseInternal,
            "SaveWeightsForSampler",
        )
        resp = await fut
        if resp.sampling_session_id is None:
            msg = "save_weights_for_sampler (ephemeral) returned no sampling_session_id"
            raise APIResponseValidationError(msg)
        info = await self.get_info()
        return SamplingClient(
            self._ctx,
            resp.sampling_session_id,
            base_model=self._base_model,
            model_path=resp.path,
            tokenizer_id=info.model_data.tokenizer_id,
        )

    async def create_sampling_client(self, model_path: str) -> SamplingClient:
        """A client sampling from saved sampler weights (``tinker://…/sampler_weights/…``)."""
        info = await self.get_info()
        return await open_sampling_session(
            self._ctx, model_path=model_path, tokenizer_id=info.model_data.tokenizer_id
        )

    async def forward_backward_reverse_kl(
        self,
        reference_model_path: str,
        data: Sequence[t.ReverseKLDatum],
        temperature: float = 1.0,
        seq_id: int | None = None,
    ) -> APIFuture[t.ForwardBackwardReverseKLResponse]:
        """MinT: accumulate reverse-KL gradients against a reference (teacher) checkpoint.

        Like the MinT SDK, the request carries ``seq_id`` only if you pass one (it is
        not drawn from this client's counter — protocol.md Q5); it is submitted
        after every earlier operation of this client was submitted.
        """
        if not reference_model_path:
            msg = "reference_model_path must be given"
            raise InvalidInputError(msg)
        request = t.ForwardBackwardReverseKLRequest(
            model_id=self._model_id,
            reference_model_path=reference_model_path,
            data=list(data),
            temperature=temperature,
            seq_id=seq_id,
        )
        return await self._sender.start_unnumbered(
            "api/v1/mint/forward_backward_reverse_kl",
            request,
            t.ForwardBackwardReverseKLResponse,
            "MintForwardBackwardReverseKL",
        )

    # -- information ------------------------------------------------------------------

    async def get_info(self) -> t.GetInfoResponse:
        """Architecture, LoRA rank and tokenizer of this run (fetched once)."""
        if self._info is None:
            self._info = await call(
                self._ctx,
                "POST",
                "api/v1/get_info",
                t.GetInfoResponse,
                t.GetInfoRequest(model_id=self._model_id),
            )
        return self._info

    async def get_tokenizer(self) -> Any:
        """The model's tokenizer (transformers), loaded once and cached by the ServiceClient."""
        info = await self.get_info()
        tokenizer_id = (
            info.model_data.tokenizer_id or info.model_data.model_name or self._base_model
        )
        return await self._ctx.tokenizers.get(tokenizer_id)


def _unpickle_training_client(
    config: ClientConfig, model_id: str, base_model: str, next_seq_id: int
) -> TrainingClient:
    return TrainingClient(
        ClientContext.standalone(config), model_id, base_model=base_model, first_seq_id=next_seq_id
    )
