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

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import msgspec

from . import types as t
from ._chunking import combine_outputs, estimate_bytes, split_batch
from ._context import ClientContext, call, submit
from ._exceptions import APIResponseValidationError, APIStatusError, InvalidInputError
from ._futures import (
    APIFuture,
    GatherFuture,
    MapFuture,
    PollingFuture,
    QueueStateMonitor,
    QueueStateObserver,
    QueueStatus,
)
from ._ordering import SequenceGate
from ._pipeline import TrainingPipeline
from ._sampling import SamplingClient, open_sampling_session
from ._wire import UNSUPPORTED_MEDIA_TYPE, WirePlan, encode_fwdbwd

if TYPE_CHECKING:
    from ._config import ClientConfig
    from ._custom_loss import CustomLossFn

__all__ = ["ForwardBackwardFuture", "MetricsSink", "TrainingClient"]

logger = logging.getLogger("mint_async")

T = TypeVar("T")

MetricsSink = Callable[[str, dict[str, float]], None]
"""Receives ``(operation, metrics)`` for every completed forward_backward / optim_step."""

_THREAD_ENCODE_BYTES: Final = 1_000_000
"""Batches estimated above this size are encoded in a worker thread, off the event loop."""


class ForwardBackwardFuture(GatherFuture[t.ForwardBackwardOutput, t.ForwardBackwardOutput]):
    """The future of a forward / forward_backward call: its chunks' results, combined."""

    def __init__(
        self,
        parts: Sequence[APIFuture[t.ForwardBackwardOutput]],
        sink: Callable[[t.ForwardBackwardOutput], None] | None = None,
    ) -> None:
        super().__init__(parts, self._combine_and_report)
        self._sink = sink

    def _combine_and_report(
        self, outputs: list[t.ForwardBackwardOutput]
    ) -> t.ForwardBackwardOutput:
        out = combine_outputs(outputs)
        if self._sink is not None:
            self._sink(out)
        return out


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


def _has_image_pointer(data: Sequence[t.Datum]) -> bool:
    return any(
        isinstance(chunk, t.ImageAssetPointerChunk) for d in data for chunk in d.model_input.chunks
    )


class TrainingClient:
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

    def on_queue_state_change(self, observer: QueueStateObserver) -> None:
        """Call ``observer(state, reason)`` whenever the server's queue state changes."""
        self._monitor.add_observer(observer)

    def remove_queue_state_observer(self, observer: QueueStateObserver) -> None:
        """Stop calling an observer added with :meth:`on_queue_state_change`."""
        self._monitor.remove_observer(observer)

    def queue_status(self) -> QueueStatus:
        """The last queue state the server reported for this run's requests."""
        return self._monitor.status()

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

    # -- submission helpers ----------------------------------------------------------

    async def _ordered(
        self,
        path: str,
        build: Callable[[int], msgspec.Struct],
        result_type: type[T],
        request_type: str,
    ) -> PollingFuture[T]:
        async with self._gate.turn(1) as (seq_id,):
            return await submit(
                self._ctx,
                path,
                build(seq_id),
                result_type,
                request_type=request_type,
                monitor=self._monitor,
            )

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
        if isinstance(data, t.Datum) or not isinstance(data, Sequence):
            msg = "data must be a list of types.Datum"
            raise InvalidInputError(msg)
        if not data:
            msg = "data must not be empty"
            raise InvalidInputError(msg)
        for i, datum in enumerate(data):
            if not isinstance(datum, t.Datum):
                msg = f"data[{i}] must be a types.Datum, got {type(datum).__name__}"
                raise InvalidInputError(msg)
        # Validates the loss function and its config before any seq_id is taken.
        t.ForwardBackwardInput(data=[], loss_fn=loss_fn, loss_fn_config=loss_fn_config)
        server = await self._ctx.transport.server_config()
        plan = self._ctx.wire.plan(server)
        if plan.send_binary and not plan.fallback_to_json and _has_image_pointer(data):
            msg = "image_asset_pointer chunks cannot travel on the binary wire; send images inline (ImageChunk)"
            raise InvalidInputError(msg)
        chunks = split_batch(
            data, max_len=server.fwdbwd_max_chunk_len, max_bytes=server.fwdbwd_max_chunk_bytes_count
        )
        if backward:
            path, request_type = "api/v1/forward_backward", "ForwardBackward"
        elif plan.forward_via_fwdbwd:
            path, request_type = "api/v1/forward_backward", "Forward"
        else:
            # tinker 0.22 sends `forward` as JSON to /forward whatever the fwdbwd flags say.
            path, request_type = "api/v1/forward", "Forward"
            plan = dataclasses.replace(plan, send_binary=False, compress=False)
        futures: list[PollingFuture[t.ForwardBackwardOutput]] = [None] * len(chunks)  # type: ignore[list-item]

        async def send(
            i: int,
            request: t.ForwardBackwardRequest | t.ForwardRequest,
            body: bytes,
            headers: dict[str, str],
        ) -> None:
            try:
                futures[i] = await self._submit_body(path, request_type, body, headers, plan)
            except APIStatusError as exc:
                # A server that only takes protobuf bodies: switch the wire to
                # binary and resend this chunk as protobuf (the same request, so
                # the same seq_id: a deduplicating server still runs it once).
                # Every JSON chunk of the batch may get here, the later ones
                # after the wire has already switched; each is resent once.
                if (
                    exc.status_code != UNSUPPORTED_MEDIA_TYPE
                    or headers
                    or not self._ctx.wire.refused_json()
                ):
                    raise
                binary = self._ctx.wire.plan(server)
                body, headers = await anyio.to_thread.run_sync(encode_fwdbwd, request, binary)
                futures[i] = await self._submit_body(path, request_type, body, headers, binary)

        async with self._gate.turn(len(chunks)) as seq_ids:
            requests = [
                self._chunk_request(chunk, seq_id, loss_fn, loss_fn_config, backward=backward)
                for chunk, seq_id in zip(chunks, seq_ids, strict=True)
            ]
            encoded = await self._encode(
                requests, plan, big=sum(estimate_bytes(d) for d in data) > _THREAD_ENCODE_BYTES
            )
            if len(chunks) > 1 and server.parallel_fwdbwd_chunks:
                # All chunks share one turn; the first goes last, so the server
                # (which waits for seq_ids in order) sees the whole batch at once.
                async with anyio.create_task_group() as tg:
                    for i in range(1, len(chunks)):
                        tg.start_soon(send, i, requests[i], *encoded[i])
                await send(0, requests[0], *encoded[0])
            else:
                for i, (request, (body, headers)) in enumerate(zip(requests, encoded, strict=True)):
                    await send(i, request, body, headers)
        op = "forward_backward" if backward else "forward"
        return ForwardBackwardFuture(futures, sink=lambda out: self._report(op, out.metrics))

    async def _submit_body(
        self, path: str, request_type: str, body: bytes, headers: dict[str, str], plan: WirePlan
    ) -> PollingFuture[t.ForwardBackwardOutput]:
        return await submit(
            self._ctx,
            path,
            None,
            t.ForwardBackwardOutput,
            request_type=request_type,
            monitor=self._monitor,
            body=body,
            headers=headers or None,
            binary_decoder=self._ctx.wire.result_decoder(t.ForwardBackwardOutput, plan),
        )

    def _chunk_request(
        self,
        chunk: list[t.Datum],
        seq_id: int,
        loss_fn: t.LossFnType,
        loss_fn_config: dict[str, float] | None,
        *,
        backward: bool,
    ) -> t.ForwardBackwardRequest | t.ForwardRequest:
        fbi = t.ForwardBackwardInput(data=chunk, loss_fn=loss_fn, loss_fn_config=loss_fn_config)
        if backward:
            return t.ForwardBackwardRequest(
                forward_backward_input=fbi, model_id=self._model_id, seq_id=seq_id
            )
        return t.ForwardRequest(forward_input=fbi, model_id=self._model_id, seq_id=seq_id)

    @staticmethod
    async def _encode(
        requests: list[t.ForwardBackwardRequest | t.ForwardRequest], plan: WirePlan, *, big: bool
    ) -> list[tuple[bytes, dict[str, str]]]:
        if not big and not plan.compress:
            return [encode_fwdbwd(r, plan) for r in requests]
        # Large (or compressed) bodies are encoded in a worker thread so the event
        # loop keeps serving other requests (an RL step's samples, long polls).
        return await anyio.to_thread.run_sync(lambda: [encode_fwdbwd(r, plan) for r in requests])

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
        self, data: Sequence[t.Datum], loss_fn: CustomLossFn
    ) -> APIFuture[t.ForwardBackwardOutput]:
        """Train on a loss computed client-side with torch from the model's logprobs.

        ``loss_fn(data, logprobs)`` gets one float32 tensor of per-token logprobs per
        datum (requires_grad) and returns ``(loss, metrics)``. The client runs a
        forward pass, differentiates ``loss`` and submits a ``cross_entropy``
        forward_backward whose weights are ``-dloss/dlogprobs``. Needs torch.
        """
        from ._custom_loss import run_custom_loss  # noqa: PLC0415 - torch is optional

        return await run_custom_loss(self, data, loss_fn)

    async def optim_step(
        self, adam_params: t.AdamParams | None = None
    ) -> APIFuture[t.OptimStepResponse]:
        """Apply the accumulated gradients with AdamW; returns once submitted.

        Example::

            await (await tc.optim_step(types.AdamParams(learning_rate=5e-5)))
        """
        params = adam_params if adam_params is not None else t.AdamParams()
        if not isinstance(params, t.AdamParams):
            msg = "adam_params must be a types.AdamParams"
            raise InvalidInputError(msg)
        fut = await self._ordered(
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
        self, name: str, ttl_seconds: int | None = None, overwrite: bool = False
    ) -> APIFuture[t.SaveWeightsResponse]:
        """Save weights and optimizer state as ``tinker://<run>/weights/<name>``."""
        _check_name(name)
        return await self._ordered(
            "api/v1/save_weights",
            lambda seq: t.SaveWeightsRequest(
                model_id=self._model_id,
                path=name,
                seq_id=seq,
                overwrite=overwrite,
                ttl_seconds=ttl_seconds,
            ),
            t.SaveWeightsResponse,
            "SaveWeights",
        )

    async def _load(self, path: str, *, optimizer: bool) -> APIFuture[t.LoadWeightsResponse]:
        _check_path(path, "path")
        return await self._ordered(
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
        self, name: str, ttl_seconds: int | None = None
    ) -> APIFuture[t.SaveWeightsForSamplerResponse]:
        """Save sampler weights as ``tinker://<run>/sampler_weights/<name>``."""
        _check_name(name)
        fut = await self._ordered(
            "api/v1/save_weights_for_sampler",
            lambda seq: t.SaveWeightsForSamplerRequest(
                model_id=self._model_id, seq_id=seq, path=name, ttl_seconds=ttl_seconds
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
        fut = await self._ordered(
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
        async with self._gate.turn(0):
            return await submit(
                self._ctx,
                "api/v1/mint/forward_backward_reverse_kl",
                request,
                t.ForwardBackwardReverseKLResponse,
                request_type="MintForwardBackwardReverseKL",
                monitor=self._monitor,
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
    from ._service import standalone_context  # noqa: PLC0415 - avoids an import cycle

    return TrainingClient(
        standalone_context(config), model_id, base_model=base_model, first_seq_id=next_seq_id
    )
