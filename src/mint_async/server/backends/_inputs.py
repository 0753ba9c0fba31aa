"""Input checks every backend makes the same way: token ids, text-only inputs, reverse-KL data.

Both built-in backends (synthetic, torch) call these, so a bad request fails
with the same :class:`~mint_async.InvalidInputError` message whichever backend
serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mint_async._exceptions import InvalidInputError
from mint_async.types import EncodedTextChunk, ModelInput, ReverseKLDatum

__all__ = ["ReverseKLInputs", "check_vocab", "reverse_kl_inputs", "token_ids"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def check_vocab(tokens: npt.NDArray[Any], vocab: int, what: str) -> None:
    """Raise InvalidInputError unless every id is in ``[0, vocab)``."""
    if tokens.size and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        msg = f"{what} has token ids outside the vocabulary [0, {vocab})"
        raise InvalidInputError(msg)


def token_ids(
    model_input: ModelInput,
    vocab: int,
    what: str,
    *,
    backend: str,
    max_context: int | None = None,
) -> I64:
    """All token ids of a text-only ModelInput, checked against the vocabulary (and context)."""
    parts: list[I64] = []
    for chunk in model_input.chunks:
        if not isinstance(chunk, EncodedTextChunk):
            msg = f"the {backend} backend reads text only; {what} has a {chunk.__class__.__name__}"
            raise InvalidInputError(msg)
        parts.append(np.asarray(chunk.tokens, dtype=np.int64))
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    check_vocab(tokens, vocab, what)
    if max_context is not None and tokens.size > max_context:
        msg = f"{what} has {tokens.size} tokens; the model's context is {max_context}"
        raise InvalidInputError(msg)
    return tokens


@dataclass(frozen=True, kw_only=True)
class ReverseKLInputs:
    """One reverse-KL datum, checked; its last ``n`` positions are aligned with the targets."""

    student: I64
    """Every student token."""
    reference: I64
    """Every reference token."""
    weights: F64
    """One weight per target token."""

    @property
    def n(self) -> int:
        """How many trailing positions the KL covers (``len(target_tokens)``)."""
        return int(self.weights.size)


def reverse_kl_inputs(
    datum: ReverseKLDatum,
    index: int,
    vocab: int,
    *,
    backend: str,
    max_context: int | None = None,
) -> ReverseKLInputs:
    """Check one datum of ``forward_backward_reverse_kl`` (MinT, protocol §4.10).

    The last ``len(target_tokens)`` positions of ``student_input`` and
    ``reference_input`` are aligned with the targets, which only fix that length.
    """
    targets = np.asarray(datum.target_tokens.data, dtype=np.int64).reshape(-1)
    n = targets.size
    weights = np.asarray(datum.weights.data, dtype=np.float64).reshape(-1)
    if weights.size != n:
        msg = f"datum {index}: weights must have one entry per target token ({n})"
        raise InvalidInputError(msg)
    check_vocab(targets, vocab, f"datum {index} target_tokens")
    s = token_ids(
        datum.student_input,
        vocab,
        f"datum {index} student_input",
        backend=backend,
        max_context=max_context,
    )
    r = token_ids(
        datum.reference_input,
        vocab,
        f"datum {index} reference_input",
        backend=backend,
        max_context=max_context,
    )
    if s.size < n or r.size < n:
        msg = f"datum {index}: student and reference inputs need at least {n} tokens"
        raise InvalidInputError(msg)
    return ReverseKLInputs(student=s, reference=r, weights=weights)
