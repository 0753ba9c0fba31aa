"""What a sample returns about its prompt, computed the same way by every backend (numpy).

A backend hands over the model's next-token logprobs (temperature 1) at every
prompt position after the first — row ``i`` is the distribution over prompt
token ``i + 1`` — as :class:`PromptRows` (row ``i`` is ``table[index[i]]``, so
a bigram table is not copied out per position, and rows are visited in
blocks: memory stays O(block x vocab) however long the prompt), and gets back
the prompt-side fields of ``SampleResponse``:

* ``prompt_logprobs`` (first entry ``None``), and ``topk_prompt_logprobs``;
  with ``prompt_logprobs_last_n = N`` only the last ``N`` prompt tokens are
  scored, earlier entries are ``None`` (both lists);
* ``target_prompt_logprobs``: float32 in the request tensor's shape and layout
  (dense, or sparse CSR with the same indices), 0.0 where the request had -1.
  ``prompt_logprobs_last_n`` does not restrict it (tinker documents the
  restriction for the two lists only);
* ``prompt_alt_tokens``: ``k`` independent draws per row at the request's
  temperature (top-k / top-p do not apply: tinker's docs name the temperature
  only; temperature 0 repeats the most likely token), with the model's
  logprobs of the drawn tokens at temperature 1, like every logprob the server
  returns. The draws come from their own generator seeded by the request's
  seed, so they do not change the sampled sequences.

:func:`topk_rows` also serves per-token top-k of sampled sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from mint_async._exceptions import InvalidInputError
from mint_async.types import PromptAltTokens, TensorData, TopkEntry

from ._base import SampleSpec

__all__ = ["PromptExtras", "PromptRows", "needs_prompt_rows", "prompt_extras", "topk_rows"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_ALT_STREAM: Final = 0x616C74  # a generator of its own for the alternative tokens ("alt")
_BLOCK: Final = 2048
"""Rows materialised at once (x vocab floats) for top-k and alternative tokens."""


@dataclass(frozen=True)
class PromptRows:
    """The logprob rows of a prompt: row ``i`` is ``table[index[i]]`` (``[vocab]`` each)."""

    table: npt.NDArray[Any]
    index: I64

    @property
    def count(self) -> int:
        """How many rows (``len(prompt) - 1``)."""
        return int(self.index.size)

    @property
    def vocab(self) -> int:
        """Row width."""
        return int(self.table.shape[1])

    def block(self, start: int, stop: int) -> npt.NDArray[Any]:
        """Rows ``[start, stop)`` as one ``[stop - start, vocab]`` array."""
        return np.asarray(self.table[self.index[start:stop]])

    def picked(self, rows: I64, tokens: I64) -> npt.NDArray[Any]:
        """``row[token]`` for each pair."""
        return np.asarray(self.table[self.index[rows], tokens])


@dataclass(frozen=True, kw_only=True)
class PromptExtras:
    """The prompt-side fields of a SampleResponse (``None`` where not asked for)."""

    prompt_logprobs: list[float | None] | None = None
    topk_prompt_logprobs: list[list[TopkEntry] | None] | None = None
    target_prompt_logprobs: TensorData | None = None
    prompt_alt_tokens: PromptAltTokens | None = None


def needs_prompt_rows(spec: SampleSpec) -> bool:
    """Whether ``spec`` asks for anything computed from the prompt's logprob rows."""
    return bool(
        spec.prompt_logprobs
        or spec.topk_prompt_logprobs > 0
        or spec.target_prompt_logprobs is not None
        or spec.prompt_alt_tokens_k > 0
    )


def topk_rows(rows: npt.NDArray[Any], k: int) -> list[list[TopkEntry] | None]:
    """The ``k`` most likely (token, logprob) pairs of each row, most likely first.

    Ties go to the lower token id.
    """
    if rows.shape[0] == 0:
        return []
    k = min(k, rows.shape[1])
    order = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(rows, order, axis=1)
    return [
        list(zip(i_row, v_row, strict=True))
        for i_row, v_row in zip(order.tolist(), vals.astype(np.float64).tolist(), strict=True)
    ]


def _targets(rows: PromptRows, target: TensorData) -> TensorData:
    vocab = rows.vocab
    values = np.asarray(target.data, dtype=np.int64)
    if values.size and int(values.max()) >= vocab:
        msg = f"target_prompt_logprobs has token ids outside the vocabulary [0, {vocab})"
        raise InvalidInputError(msg)
    if target.sparse_crow_indices is not None:
        # Row of each listed cell, from the CSR row pointers.
        crow: I64 = np.asarray(target.sparse_crow_indices, dtype=np.int64)
        counts: I64 = crow[1:] - crow[:-1]
        row_of: I64 = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
        wanted = values >= 0
        out = np.zeros(values.size, dtype=np.float32)
        out[wanted] = rows.picked(row_of[wanted], values[wanted])
        return TensorData(
            data=out,
            dtype="float32",
            shape=list(target.dims),
            sparse_crow_indices=list(target.sparse_crow_indices),
            sparse_col_indices=list(target.sparse_col_indices or []),
        )
    ids = values.reshape(target.dims)
    wanted = ids >= 0
    out = np.zeros(ids.shape, dtype=np.float32)
    row_idx = np.broadcast_to(np.arange(ids.shape[0])[:, None], ids.shape)
    out[wanted] = rows.picked(row_idx[wanted].astype(np.int64), ids[wanted])
    return TensorData(data=out.reshape(-1), dtype="float32", shape=list(target.dims))


def _alt_tokens(rows: PromptRows, spec: SampleSpec) -> PromptAltTokens:
    k = spec.prompt_alt_tokens_k
    n = rows.count
    tokens: I64 = np.zeros((n, k), dtype=np.int64)
    uniform = np.random.default_rng([spec.seed, _ALT_STREAM]).random((n, k))
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        logp = np.asarray(rows.block(lo, hi), dtype=np.float64)
        if spec.temperature == 0:
            tokens[lo:hi] = np.argmax(logp, axis=1)[:, None]
            continue
        with np.errstate(over="ignore"):
            z = (logp - logp.max(axis=1, keepdims=True)) / spec.temperature
        cdf = np.cumsum(np.exp(z), axis=1)
        for i in range(hi - lo):
            tokens[lo + i] = np.searchsorted(cdf[i], uniform[lo + i] * cdf[i, -1], side="right")
    # Rounding at the very top of a row must not step past the vocabulary.
    np.minimum(tokens, rows.vocab - 1, out=tokens)
    positions = np.repeat(np.arange(n, dtype=np.int64), k)
    picked = rows.picked(positions, tokens.reshape(-1)).astype(np.float32)
    return PromptAltTokens(
        tokens=TensorData(data=tokens.reshape(-1), dtype="int64", shape=[n, k]),
        logprobs=TensorData(data=picked, dtype="float32", shape=[n, k]),
    )


def prompt_extras(rows: PromptRows, prompt: I64, spec: SampleSpec) -> PromptExtras:
    """Every prompt-side field ``spec`` asks for, from the prompt's logprob rows."""
    n = rows.count
    start = 0 if spec.prompt_logprobs_last_n is None else max(n - spec.prompt_logprobs_last_n, 0)
    skipped: list[None] = [None] * (1 + start)
    prompt_lps: list[float | None] | None = None
    topk: list[list[TopkEntry] | None] | None = None
    if spec.prompt_logprobs:
        scored = rows.picked(np.arange(start, n, dtype=np.int64), prompt[1 + start :])
        values: list[float] = np.asarray(scored, dtype=np.float64).tolist()
        prompt_lps = [*skipped, *values]
    if spec.topk_prompt_logprobs > 0:
        topk = list(skipped)
        for lo in range(start, n, _BLOCK):
            topk.extend(topk_rows(rows.block(lo, min(lo + _BLOCK, n)), spec.topk_prompt_logprobs))
    return PromptExtras(
        prompt_logprobs=prompt_lps,
        topk_prompt_logprobs=topk,
        target_prompt_logprobs=None
        if spec.target_prompt_logprobs is None
        else _targets(rows, spec.target_prompt_logprobs),
        prompt_alt_tokens=None if spec.prompt_alt_tokens_k <= 0 else _alt_tokens(rows, spec),
    )
