"""The synthetic backend's model: a next-token logit table ``base + A @ B``, and its maths.

Rows of every table are the previous token, columns the next one. Gradients
of any per-token loss are scattered into a vocab x vocab table first and
projected onto the LoRA factors once (``dA = G @ B.T``, ``dB = A.T @ G``), so a
call costs O(tokens + vocab²) whatever the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from mint_async._exceptions import InvalidInputError
from mint_async.types import (
    AdamParams,
    ForwardBackwardReverseKLResponse,
    MintTensorData,
    ModelInput,
    ReverseKLDatum,
    ReverseKLItemOutput,
)

from ._inputs import reverse_kl_inputs, token_ids

__all__ = [
    "EOS_ID",
    "SyntheticModel",
    "SyntheticSampler",
    "base_table",
    "accumulate_grad",
    "log_softmax",
    "reverse_kl",
    "seed_of",
    "tokens_of",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

EOS_ID: Final = 2
"""``<|im_end|>`` in the tiny tokenizer: the implicit stop token."""

_BASE_RANK: Final = 16


def log_softmax(z: F64) -> F64:
    """Row-wise log-softmax."""
    shifted = z - z.max(axis=-1, keepdims=True)
    out: F64 = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out


def seed_of(text: str) -> int:
    """A stable 64-bit seed derived from a string."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def base_table(name: str, vocab: int, seed: int) -> F64:
    """The fixed logit table of base model ``name``: low-rank structure plus a Zipf-like bias."""
    rng = np.random.default_rng([seed_of(name), seed])
    u = rng.standard_normal((vocab, _BASE_RANK))
    w = rng.standard_normal((_BASE_RANK, vocab))
    # Some tokens are common (a unigram bias over a random order of the
    # vocabulary), and end-of-sequence is moderately likely so samples stop.
    bias = -1.2 * np.log1p(rng.permutation(vocab).astype(np.float64))
    bias[EOS_ID] = max(float(bias[EOS_ID]), -2.0)
    table: F64 = 2.5 * (u @ w) / np.sqrt(_BASE_RANK) + bias[None, :]
    return table


@dataclass(eq=False)
class SyntheticSampler:
    """Frozen sampling weights: the full next-token logit table."""

    base_model: str
    logits: F64

    tables: dict[tuple[float, int, float], F64] = field(
        default_factory=dict[tuple[float, int, float], F64]
    )
    """Decode tables by (temperature, top_k, top_p); a few are kept (see the backend)."""

    @cached_property
    def logp(self) -> F64:
        """Log-probabilities of the table (computed once)."""
        return log_softmax(self.logits)

    @cached_property
    def greedy_next(self) -> list[int]:
        """The most likely next token after each token (temperature 0)."""
        best: list[int] = self.logits.argmax(axis=1).tolist()
        return best


@dataclass(eq=False)
class SyntheticModel:
    """One training run: LoRA factors, accumulated gradients and AdamW moments."""

    model_id: str
    base_model: str
    base: F64
    a: F64
    b: F64
    grad_logits: F64 = field(init=False)
    """d loss / d logit table, accumulated since the last optimizer step."""
    m_a: F64 = field(init=False)
    v_a: F64 = field(init=False)
    m_b: F64 = field(init=False)
    v_b: F64 = field(init=False)
    step: int = 0
    _logp: F64 | None = None
    _probs: F64 | None = None

    def __post_init__(self) -> None:
        self.zero_grad()
        self.reset_optimizer()

    @property
    def rank(self) -> int:
        """The LoRA rank."""
        return int(self.a.shape[1])

    def zero_grad(self) -> None:
        """Forget accumulated gradients."""
        self.grad_logits = np.zeros_like(self.base)

    def lora_grads(self) -> tuple[F64, F64]:
        """The accumulated gradients of ``A`` and ``B``.

        The loss depends on the LoRA factors only through ``logits = base + A @ B``,
        and ``A``, ``B`` do not change between optimizer steps, so the gradients
        of many calls are summed in logit space and projected once, here
        (``dA = G @ B.T``, ``dB = A.T @ G``): no matrix products per call.
        """
        grad = self.grad_logits
        return grad @ self.b.T, self.a.T @ grad

    def reset_optimizer(self) -> None:
        """Fresh AdamW state."""
        self.m_a, self.v_a = np.zeros_like(self.a), np.zeros_like(self.a)
        self.m_b, self.v_b = np.zeros_like(self.b), np.zeros_like(self.b)
        self.step = 0

    def logits(self) -> F64:
        """The current vocab x vocab logit table (a new array)."""
        out: F64 = self.base + self.a @ self.b
        return out

    def logp(self) -> F64:
        """Log-probabilities of the current table, cached until the weights change."""
        if self._logp is None:
            self._logp = log_softmax(self.logits())
        return self._logp

    def probs(self) -> F64:
        """Probabilities of the current table, cached like :meth:`logp`."""
        if self._probs is None:
            self._probs = np.exp(self.logp())
        return self._probs

    def weights_changed(self) -> None:
        """Drop caches derived from the weights."""
        self._logp = self._probs = None

    def adamw(self, params: AdamParams) -> dict[str, float]:
        """One AdamW step (bias-corrected, decoupled weight decay, global-norm clipping); zeroes grads."""
        grad_a, grad_b = self.lora_grads()
        norm = float(np.sqrt(float((grad_a**2).sum()) + float((grad_b**2).sum())))
        scale = 1.0
        if params.grad_clip_norm > 0 and norm > params.grad_clip_norm:
            scale = params.grad_clip_norm / norm
        self.step += 1
        _adamw_update(self.a, grad_a * scale, self.m_a, self.v_a, params=params, t=self.step)
        _adamw_update(self.b, grad_b * scale, self.m_b, self.v_b, params=params, t=self.step)
        self.zero_grad()
        self.weights_changed()
        return {"grad_norm:mean": norm, "step:max": float(self.step)}


def _adamw_update(p: F64, g: F64, m: F64, v: F64, *, params: AdamParams, t: int) -> None:
    """In place: moments ``m``, ``v`` and parameters ``p`` after gradient ``g`` at step ``t``."""
    b1, b2, lr = params.beta1, params.beta2, params.learning_rate
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    p *= 1 - lr * params.weight_decay
    p -= lr * m_hat / (np.sqrt(v_hat) + params.eps)


def tokens_of(model_input: ModelInput, vocab: int, what: str) -> I64:
    """All token ids of a text-only ModelInput, checked against the vocabulary."""
    return token_ids(model_input, vocab, what, backend="synthetic")


def accumulate_grad(out: F64, probs: F64, prev: I64, targets: I64, coeff: F64) -> None:
    """Add to ``out`` d loss / d logits for ``loss = sum_e f_e(logp[prev_e, target_e])``, ``coeff_e = f_e'``.

    ``d logp[a, t] / d z[a, v] = [v == t] - p[a, v]``: scatter the first term,
    subtract the second once per row used.
    """
    np.add.at(out, (prev, targets), coeff)
    rows, inverse = np.unique(prev, return_inverse=True)
    per_row = np.bincount(inverse, weights=coeff, minlength=rows.size)
    out[rows] -= per_row[:, None] * probs[rows]


def reverse_kl(
    model: SyntheticModel,
    reference: SyntheticSampler,
    data: Sequence[ReverseKLDatum],
    temperature: float,
) -> ForwardBackwardReverseKLResponse:
    """Exact per-position ``KL(student || reference)`` at ``temperature``, weighted; accumulates grads.

    The last ``len(target_tokens)`` positions of each input are aligned with
    the targets (which only fix that length: the KL is over the whole vocabulary).
    """
    vocab = model.base.shape[0]
    if reference.logits.shape != model.base.shape:
        msg = "the reference model has a different vocabulary"
        raise InvalidInputError(msg)
    student = model.logits() / temperature
    ref = reference.logits / temperature
    grad = np.zeros_like(student)
    outputs: list[ReverseKLItemOutput] = []
    total = weight_sum = 0.0
    checked = [reverse_kl_inputs(d, i, vocab, backend="synthetic") for i, d in enumerate(data)]
    for item in checked:
        n, weights = item.n, item.weights
        s, r = item.student[item.student.size - n :], item.reference[item.reference.size - n :]
        lps, lpr = log_softmax(student[s]), log_softmax(ref[r])
        ps = np.exp(lps)
        kl = (ps * (lps - lpr)).sum(axis=1)
        # d KL / d z_v = p_v (log p_v - log q_v - KL), and z = logits / temperature.
        np.add.at(grad, s, weights[:, None] * ps * (lps - lpr - kl[:, None]) / temperature)
        loss = weights * kl
        total += float(loss.sum())
        weight_sum += float(weights.sum())
        outputs.append(
            ReverseKLItemOutput(
                loss=MintTensorData(data=loss.astype(np.float32), shape=[n], dtype="float32")
            )
        )
    model.grad_logits += grad
    mean = total / weight_sum if weight_sum else 0.0
    return ForwardBackwardReverseKLResponse(
        outputs=outputs, metrics={"loss:sum": total, "reverse_kl:mean": mean}
    )
