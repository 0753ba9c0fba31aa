"""From rendered tokens and weights to a training Datum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import InvalidInputError
from ..types import Datum, ModelInput, TensorData

__all__ = ["datum_from_model_input_weights"]


def datum_from_model_input_weights(
    model_input: ModelInput,
    weights: Sequence[float] | npt.NDArray[Any],
    max_length: int | None = None,
) -> Datum:
    """A cross-entropy Datum: position ``i`` of the input predicts token ``i + 1``.

    The sequence (tokens and their weights) is first cut to its first
    ``max_length`` tokens; then the teacher-forcing shift gives
    ``model_input = tokens[:-1]``, ``target_tokens = tokens[1:]`` (int64) and
    ``weights = weights[1:]`` (float32), so the Datum has ``max_length - 1``
    positions at most. The first token's weight is dropped: nothing predicts it.

    Example::

        model_input, weights = renderer.build_supervised_example(messages)
        datum = datum_from_model_input_weights(model_input, weights, max_length=2048)

    Raises InvalidInputError if ``weights`` does not have one finite value per
    token, ``max_length < 2``, the input has fewer than 2 tokens (nothing to
    predict) or holds image chunks.
    """
    if max_length is not None and (
        not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2
    ):
        msg = f"max_length must be an int >= 2 (one input and one target token), got {max_length!r}"
        raise InvalidInputError(msg)
    if not isinstance(model_input, ModelInput):
        msg = f"model_input must be a ModelInput, got {type(model_input).__name__}"
        raise InvalidInputError(msg)
    tokens = np.asarray(model_input.to_ints(), dtype=np.int64)
    try:
        w = np.asarray(weights, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        msg = f"weights must be a sequence of numbers: {exc}"
        raise InvalidInputError(msg) from exc
    if w.ndim != 1 or w.shape[0] != tokens.shape[0]:
        msg = f"weights has shape {w.shape}, expected one weight per token ({tokens.shape[0]},)"
        raise InvalidInputError(msg)
    if not bool(np.isfinite(w).all()):
        msg = "weights must be finite"
        raise InvalidInputError(msg)
    if max_length is not None:
        tokens, w = tokens[:max_length], w[:max_length]
    if tokens.shape[0] < 2:
        msg = f"need at least 2 tokens to form a training example, got {tokens.shape[0]}"
        raise InvalidInputError(msg)
    n = tokens.shape[0] - 1
    return Datum(
        model_input=ModelInput.from_ints(tokens[:-1].tolist()),
        loss_fn_inputs={
            "target_tokens": TensorData(data=tokens[1:], dtype="int64", shape=[n]),
            # Copy: the caller's weights array must not alias the Datum's.
            "weights": TensorData(data=w[1:].copy(), dtype="float32", shape=[n]),
        },
    )
