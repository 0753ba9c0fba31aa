"""Forward/backward of the torch backend: the §8.3 losses and MinT's reverse KL.

Every loss of protocol.md §8.3 is a sum over tokens of a function of the
model's logprob ``lp`` of each target token. The definitions (inputs, config
keys, defaults, validation) live in :mod:`._losses`, shared with the synthetic
backend so both behave alike; it gives the loss and ``d loss / d lp`` per
token. Here ``lp`` comes from the torch model, and autograd carries the
per-token gradient into the LoRA weights: backpropagating
``sum(lp * stopgrad(d loss / d lp))`` gives exactly the loss's parameter
gradients (the tests check each loss against a direct torch formula).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mint_async._exceptions import InvalidInputError
from mint_async.types import (
    Datum,
    ForwardBackwardOutput,
    ForwardBackwardReverseKLResponse,
    MintTensorData,
    ReverseKLDatum,
    ReverseKLItemOutput,
    TensorData,
)

from . import _losses
from ._inputs import check_vocab, reverse_kl_inputs
from ._torch_model import MAX_CONTEXT, forward_logits, from_numpy, token_ids

__all__ = ["forward_backward", "reverse_kl"]


def forward_backward(
    model: nn.Module,
    data: Sequence[Datum],
    loss_fn: str,
    loss_fn_config: Mapping[str, float],
    *,
    vocab: int,
    backward: bool,
) -> ForwardBackwardOutput:
    """One batched pass over ``data``; with ``backward``, gradients accumulate in ``model``."""
    sequences: list[Any] = []
    inputs: list[_losses.LossInputs] = []
    # Validate everything before computing anything: a bad datum fails the
    # request without having touched the accumulated gradients.
    for i, datum in enumerate(data):
        tokens = token_ids(datum.model_input, vocab, f"datum {i}")
        loss_inputs = _losses.datum_inputs(loss_fn, datum.loss_fn_inputs, tokens.size, i)
        check_vocab(loss_inputs.targets, vocab, f"datum {i} target_tokens")
        sequences.append(tokens)
        inputs.append(loss_inputs)
    outputs: list[dict[str, TensorData]] = []
    total = 0.0
    with torch.set_grad_enabled(backward):
        logp = torch.log_softmax(forward_logits(model, sequences), dim=-1) if data else None
        surrogate: torch.Tensor | None = None
        for i, (tokens, loss_inputs) in enumerate(zip(sequences, inputs, strict=True)):
            assert logp is not None
            targets = from_numpy(loss_inputs.targets)
            # Position t predicts target t (every column of a [T, K] target).
            lp = logp[i, : tokens.size].gather(-1, targets.reshape(tokens.size, -1))
            lp = lp.reshape(targets.shape)
            lp_np = lp.detach().numpy()
            loss, grad = _losses.loss_and_grad(
                loss_fn, lp_np.astype(np.float64), loss_inputs, loss_fn_config
            )
            total += loss
            outputs.append({"logprobs": TensorData.from_numpy(lp_np.astype(np.float32))})
            if backward:
                term = (lp * from_numpy(grad).to(lp.dtype)).sum()
                surrogate = term if surrogate is None else surrogate + term
        if surrogate is not None:
            torch.autograd.backward(surrogate)
    return ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord", loss_fn_outputs=outputs, metrics={"loss:sum": total}
    )


def reverse_kl(
    student: nn.Module,
    reference: nn.Module,
    data: Sequence[ReverseKLDatum],
    temperature: float,
    *,
    vocab: int,
) -> ForwardBackwardReverseKLResponse:
    """Accumulate gradients of ``sum_i w_i KL(student_i || reference_i)`` at ``temperature``.

    The last ``len(target_tokens)`` positions of each input are aligned with the
    targets, which only fix that length: the KL is over the whole vocabulary.
    """
    if not temperature > 0:
        msg = f"temperature must be > 0, got {temperature}"
        raise InvalidInputError(msg)
    students: list[Any] = []
    references: list[Any] = []
    weights: list[torch.Tensor] = []
    for i, datum in enumerate(data):
        item = reverse_kl_inputs(datum, i, vocab, backend="torch", max_context=MAX_CONTEXT)
        students.append(item.student)
        references.append(item.reference)
        weights.append(from_numpy(item.weights.astype(np.float32)))
    outputs: list[ReverseKLItemOutput] = []
    total = weight_sum = 0.0
    if data:
        with torch.no_grad():
            ref_logits = forward_logits(reference, references)
        with torch.enable_grad():
            student_logits = forward_logits(student, students)
            surrogate: torch.Tensor | None = None
            for i, (s, r, w) in enumerate(zip(students, references, weights, strict=True)):
                n = w.numel()
                log_p = torch.log_softmax(student_logits[i, s.size - n : s.size] / temperature, -1)
                log_q = torch.log_softmax(ref_logits[i, r.size - n : r.size] / temperature, -1)
                kl = (log_p.exp() * (log_p - log_q)).sum(-1)
                loss = w * kl
                surrogate = loss.sum() if surrogate is None else surrogate + loss.sum()
                total += float(loss.detach().sum())
                weight_sum += float(w.sum())
                values = loss.detach().numpy().astype(np.float32)
                outputs.append(
                    ReverseKLItemOutput(
                        loss=MintTensorData(data=values, shape=[n], dtype="float32")
                    )
                )
            if surrogate is not None:
                torch.autograd.backward(surrogate)
    mean = total / weight_sum if weight_sum else 0.0
    return ForwardBackwardReverseKLResponse(
        outputs=outputs, metrics={"loss:sum": total, "reverse_kl:mean": mean}
    )
