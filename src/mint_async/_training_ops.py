"""How one training run's operations reach the server: in seq order, one turn each.

:class:`OrderedSender` starts a one-request operation in the run's next turn
(:meth:`~OrderedSender.start`; :meth:`~OrderedSender.start_unnumbered` for one
that takes no seq_id but must follow the earlier ones), or a forward / forward_backward batch split
into chunks that share one turn (:meth:`~OrderedSender.start_batch`): encoded
off the event loop when large, sent in parallel when the server allows it, and
resent as protobuf to a server that refuses JSON. :class:`ForwardBackwardFuture`
combines the chunks' results. The public checks and result handling stay in
:class:`~mint_async.TrainingClient`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import anyio
import msgspec

from . import types as t
from ._chunking import combine_outputs, estimate_bytes, split_batch
from ._context import ClientContext, start_operation
from ._exceptions import APIStatusError, InvalidInputError
from ._foreign import as_data
from ._futures import APIFuture, GatherFuture, PollingFuture, QueueStateMonitor
from ._ordering import SequenceGate
from ._wire_format import UNSUPPORTED_MEDIA_TYPE, FormatPlan, encode_fwdbwd

__all__ = ["ForwardBackwardFuture", "OrderedSender"]

T = TypeVar("T")

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


def _has_image_pointer(data: Sequence[t.Datum]) -> bool:
    return any(
        isinstance(chunk, t.ImageAssetPointerChunk) for d in data for chunk in d.model_input.chunks
    )


class OrderedSender:
    """Starts the operations of one training run, each in its turn of the run's seq_ids."""

    def __init__(
        self, ctx: ClientContext, model_id: str, gate: SequenceGate, monitor: QueueStateMonitor
    ) -> None:
        self._ctx = ctx
        self._model_id = model_id
        self._gate = gate
        self._monitor = monitor

    async def start(
        self,
        path: str,
        build: Callable[[int], msgspec.Struct],
        result_type: type[T],
        request_type: str,
    ) -> PollingFuture[T]:
        """Start a one-request operation in the run's next turn; ``build(seq_id)`` makes it."""
        async with self._gate.turn(1) as (seq_id,):
            return await start_operation(
                self._ctx,
                path,
                build(seq_id),
                result_type,
                request_type=request_type,
                monitor=self._monitor,
            )

    async def start_unnumbered(
        self, path: str, request: msgspec.Struct, result_type: type[T], request_type: str
    ) -> PollingFuture[T]:
        """Start an operation that takes no seq_id, once every earlier one was started."""
        async with self._gate.turn(0):
            return await start_operation(
                self._ctx,
                path,
                request,
                result_type,
                request_type=request_type,
                monitor=self._monitor,
            )

    async def start_batch(
        self,
        data: Sequence[t.Datum],
        loss_fn: t.LossFnType,
        loss_fn_config: dict[str, float] | None,
        *,
        backward: bool,
    ) -> list[PollingFuture[t.ForwardBackwardOutput]]:
        """Start a forward (``backward=False``) or forward_backward over ``data``.

        Checks the batch before any seq_id is taken, splits it into chunks (by
        count and bytes) that share one turn, and returns one future per chunk.
        """
        if isinstance(data, t.Datum):
            msg = "data must be a list of types.Datum"
            raise InvalidInputError(msg)
        # Every item a types.Datum; tinker's own Datum objects are converted by their fields.
        data = as_data(data)
        if not data:
            msg = "data must not be empty"
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
                futures[i] = await self._send_body(path, request_type, body, headers, plan)
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
                futures[i] = await self._send_body(path, request_type, body, headers, binary)

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
        return futures

    async def _send_body(
        self, path: str, request_type: str, body: bytes, headers: dict[str, str], plan: FormatPlan
    ) -> PollingFuture[t.ForwardBackwardOutput]:
        return await start_operation(
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
        requests: list[t.ForwardBackwardRequest | t.ForwardRequest], plan: FormatPlan, *, big: bool
    ) -> list[tuple[bytes, dict[str, str]]]:
        if not big and not plan.compress:
            return [encode_fwdbwd(r, plan) for r in requests]
        # Large (or compressed) bodies are encoded in a worker thread so the event
        # loop keeps serving other requests (an RL step's samples, long polls).
        return await anyio.to_thread.run_sync(lambda: [encode_fwdbwd(r, plan) for r in requests])
