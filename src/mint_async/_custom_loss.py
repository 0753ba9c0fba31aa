"""Client-side custom losses (``TrainingClient.forward_backward_custom``), as tinker 0.22 does it.

1. ``forward`` with ``cross_entropy`` and zero weights to get per-token logprobs;
2. the user's torch loss over those logprobs (as leaf tensors), differentiated;
3. ``forward_backward`` with ``cross_entropy`` and ``weights = -dloss/dlogprobs``:
   the server's gradient of ``-sum(w * logprob)`` is then exactly ``dloss/dparams``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np

from . import types as t
from ._arrays import import_torch
from ._exceptions import InvalidInputError
from ._futures import APIFuture, MapFuture
from ._loss_handle import LossHandle

if TYPE_CHECKING:
    import torch

__all__ = ["CustomLossFn", "ForwardClient", "run_custom_loss"]

CustomLossFn: TypeAlias = (
    "Callable[[list[t.Datum], list[torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]"
)
"""``loss_fn(data, logprobs) -> (loss, metrics)``; ``logprobs[i]`` has the shape of datum i's targets."""


class ForwardClient(Protocol):
    """What a custom loss needs of a :class:`~mint_async.TrainingClient`: its two passes."""

    async def forward(
        self, data: Sequence[t.Datum], loss_fn: t.LossFnType = "cross_entropy"
    ) -> APIFuture[t.ForwardBackwardOutput]: ...
    async def forward_backward(
        self, data: Sequence[t.Datum], loss_fn: t.LossFnType = "cross_entropy"
    ) -> APIFuture[t.ForwardBackwardOutput]: ...


async def run_custom_loss(
    tc: ForwardClient, data: Sequence[t.Datum], loss_fn: CustomLossFn | LossHandle
) -> APIFuture[t.ForwardBackwardOutput]:
    """Run the three steps above; returns the backward pass's future (metrics from ``loss_fn``).

    A :class:`~mint_async._loss_handle.LossHandle` (``ServiceClient.create_custom_loss``) runs
    per datum and its losses are summed; a plain callable takes the whole batch.
    """
    if isinstance(loss_fn, LossHandle):
        loss_fn = loss_fn.batch_loss
    torch_mod: Any = import_torch()
    forward_data: list[t.Datum] = []
    for i, datum in enumerate(data):
        keys = set(datum.loss_fn_inputs)
        if "target_tokens" not in keys or keys - {"target_tokens", "weights"}:
            msg = (
                f"data[{i}]: custom losses take loss_fn_inputs 'target_tokens' (and 'weights') only"
            )
            raise InvalidInputError(msg)
        targets = datum.loss_fn_inputs["target_tokens"]
        forward_data.append(
            t.Datum(
                model_input=datum.model_input,
                loss_fn_inputs={
                    "target_tokens": targets,
                    "weights": np.zeros(targets.dims, dtype=np.float32),
                },
            )
        )
    forward = await (await tc.forward(forward_data, "cross_entropy"))
    logprobs = [
        torch_mod.tensor(out["logprobs"].to_numpy(), dtype=torch_mod.float32, requires_grad=True)
        for out in forward.loss_fn_outputs
    ]
    loss, metrics = loss_fn(list(data), logprobs)
    loss_tensor: Any = loss
    loss_tensor.backward()
    backward_data = [
        t.Datum(
            model_input=datum.model_input,
            loss_fn_inputs={
                "target_tokens": datum.loss_fn_inputs["target_tokens"],
                "weights": (-lp.grad if lp.grad is not None else torch_mod.zeros_like(lp))
                .detach()
                .numpy(),
            },
        )
        for datum, lp in zip(forward_data, logprobs, strict=True)
    ]
    loss_value = float(loss_tensor.detach())
    backward = await tc.forward_backward(backward_data, "cross_entropy")

    async def merge(out: t.ForwardBackwardOutput) -> t.ForwardBackwardOutput:
        merged = {k: v for k, v in out.metrics.items() if k != "loss:sum"}
        merged.update({"loss:sum": loss_value, **{k: float(v) for k, v in metrics.items()}})
        return t.ForwardBackwardOutput(
            loss_fn_output_type=out.loss_fn_output_type,
            loss_fn_outputs=forward.loss_fn_outputs,
            metrics=merged,
        )

    return MapFuture(backward, merge)
