"""Per-datum custom losses (tinker 0.38's ``ServiceClient.create_custom_loss``), run client-side.

A per-datum loss takes the datum's logprobs and the ``loss_fn_inputs`` it
names (as torch tensors, in ``input_ranks`` order) and returns ``(scalar loss,
{"custom/<name>:sum" | ":mean": scalar})``. tinker may upload a traced loss to
the server; a handle without a server id runs on the client, which is how this
client runs every one: :meth:`LossHandle.batch_loss` adapts it to
``forward_backward_custom`` (the batch loss is the sum of the per-datum losses;
``:sum`` metrics add up, ``:mean`` metrics are averaged over the batch).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import types as t
from ._exceptions import InvalidInputError

if TYPE_CHECKING:
    import torch

__all__ = ["LossHandle", "PerDatumLossFn", "create_loss_handle"]

PerDatumLossFn = Callable[..., Any]
"""``fn(logprobs, *inputs) -> (loss, metrics)`` for one datum (torch tensors)."""

_METRIC_KEY = re.compile(r"custom/[a-z0-9_./-]{1,64}:(sum|mean)")
_INPUT_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_MAX_INPUTS = 16


@dataclass(frozen=True)
class LossHandle:
    """A per-datum loss created by ``ServiceClient.create_custom_loss``; pass it to
    ``TrainingClient.forward_backward_custom`` in place of a callable."""

    name: str
    input_ranks: tuple[tuple[str, int], ...]
    fn: PerDatumLossFn = field(repr=False, compare=False)
    loss_id: str | None = None
    """Always None here: the loss runs on the client."""

    @property
    def input_names(self) -> tuple[str, ...]:
        """The ``loss_fn_inputs`` keys the loss reads, in the order it takes them."""
        return tuple(name for name, _ in self.input_ranks)

    def batch_loss(
        self, data: list[t.Datum], logprobs: list[torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The batch's loss (the sum over datums) and its metrics, for ``forward_backward_custom``."""
        losses: list[torch.Tensor] = []
        sums: dict[str, float] = {}
        for i, (datum, lp) in enumerate(zip(data, logprobs, strict=True)):
            args: list[Any] = [lp]
            for name, rank in self.input_ranks:
                if name not in datum.loss_fn_inputs:
                    msg = f"data[{i}] has no loss_fn_inputs[{name!r}], which {self.name} reads"
                    raise InvalidInputError(msg)
                tensor = datum.loss_fn_inputs[name].to_torch()
                if tensor.dim() != rank:
                    msg = f"data[{i}].loss_fn_inputs[{name!r}] has rank {tensor.dim()}, declared {rank}"
                    raise InvalidInputError(msg)
                args.append(tensor)
            loss, metrics = self.fn(*args)
            if loss.dim() != 0:
                msg = f"{self.name} must return a scalar loss, got shape {tuple(loss.shape)}"
                raise InvalidInputError(msg)
            losses.append(loss)
            for key, value in metrics.items():
                if not _METRIC_KEY.fullmatch(key):
                    msg = f"metric {key!r} of {self.name}: keys are custom/<name>:sum or :mean"
                    raise InvalidInputError(msg)
                sums[key] = sums.get(key, 0.0) + float(value)
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        n = max(len(data), 1)
        return total, {k: (v / n if k.endswith(":mean") else v) for k, v in sums.items()}


def create_loss_handle(fn: PerDatumLossFn, input_ranks: Mapping[str, int]) -> LossHandle:
    """Check ``input_ranks`` and wrap ``fn`` as a handle (before anything is sent)."""
    if not callable(fn):
        msg = "fn must be a callable (logprobs, *inputs) -> (loss, metrics)"
        raise InvalidInputError(msg)
    if len(input_ranks) > _MAX_INPUTS:
        msg = f"a custom loss reads at most {_MAX_INPUTS} inputs, got {len(input_ranks)}"
        raise InvalidInputError(msg)
    for name, rank in input_ranks.items():
        if not _INPUT_NAME.fullmatch(name):
            msg = f"input name {name!r} must match {_INPUT_NAME.pattern}"
            raise InvalidInputError(msg)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            msg = f"input_ranks[{name!r}] must be a non-negative int, got {rank!r}"
            raise InvalidInputError(msg)
    name = getattr(fn, "__name__", "custom_loss")
    return LossHandle(name=name, input_ranks=tuple(input_ranks.items()), fn=fn)
