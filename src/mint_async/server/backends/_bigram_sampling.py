"""Sampling from a next-token logit table (the synthetic backend's model), vectorized over samples."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from mint_async._exceptions import InvalidInputError
from mint_async.types import SampledSequence, SampleResponse, StopReason

from ._base import TOP_P_SLACK, SampleSpec
from ._sample_extras import PromptRows, needs_prompt_rows, prompt_extras, topk_rows

__all__ = ["sample_table"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

Detokenize = Callable[[Sequence[int]], str]


def _filter(z: F64, top_k: int, top_p: float) -> F64:
    """Probabilities of temperature-scaled logits ``z`` after top-k and top-p filtering."""
    vocab = z.shape[1]
    if 0 < top_k < vocab:
        kth = np.partition(z, vocab - top_k, axis=1)[:, vocab - top_k][:, None]
        z = np.where(z >= kth, z, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=1, kind="stable")  # ties: the lowest token id first
        sorted_p = np.take_along_axis(p, order, axis=1)
        # Keep the smallest prefix whose mass reaches top_p (always the top token);
        # the slack stops rounding (.5 + .3 summing to just under .8) from keeping one more.
        keep_sorted = (np.cumsum(sorted_p, axis=1) - sorted_p) < top_p - TOP_P_SLACK
        keep_sorted[:, 0] = True
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
    return p


def decode_table(logits: F64, temperature: float, top_k: int, top_p: float) -> F64:
    """Per previous token, the cumulative next-token distribution after temperature and filters."""
    with np.errstate(over="ignore"):
        z = logits / temperature
        if not np.isfinite(z).all():
            # A tiny temperature (1e-320) overflows to inf - inf = nan: scale the
            # max-shifted logits instead, so the top token takes (nearly) all the mass.
            z = (logits - logits.max(axis=1, keepdims=True)) / temperature
    cdf: F64 = np.cumsum(_filter(z, top_k, top_p), axis=1)
    return cdf


def sample_table(
    logits: F64,
    logp: F64,
    spec: SampleSpec,
    *,
    eos_id: int,
    detokenize: Detokenize | None,
    cdf: F64 | None = None,
    greedy_next: Sequence[int] | None = None,
) -> SampleResponse:
    """Sample ``spec.num_samples`` continuations of ``spec.prompt`` from a bigram table.

    ``cdf`` is :func:`decode_table` for the spec's temperature and filters,
    ``greedy_next`` the argmax of each row (callers cache both per sampler);
    they are computed here when not given.
    """
    vocab = logits.shape[0]
    prompt = spec.prompt
    if prompt.size == 0:
        msg = "the prompt is empty"
        raise InvalidInputError(msg)
    if int(prompt.min()) < 0 or int(prompt.max()) >= vocab:
        msg = f"the prompt has token ids outside the vocabulary [0, {vocab})"
        raise InvalidInputError(msg)
    stops = {eos_id} if spec.stop_token_ids is None else set(spec.stop_token_ids)
    greedy = spec.temperature == 0
    if not greedy and cdf is None:
        cdf = decode_table(logits, spec.temperature, spec.top_k, spec.top_p)
    if greedy and greedy_next is None:
        greedy_next = logits.argmax(axis=1).tolist()
    uniform = np.random.default_rng(spec.seed).random((spec.num_samples, spec.max_tokens))
    start = int(prompt[-1])
    sequences: list[SampledSequence] = []
    # One sequence at a time, in scalar steps: a bigram step is a row lookup,
    # so per-token numpy calls on tiny arrays would cost more than they save.
    for draws in uniform:
        prev = start
        reason: StopReason = "length"
        out: list[int] = []
        for u in draws.tolist():
            if greedy_next is not None and greedy:
                tok = greedy_next[prev]
            else:
                assert cdf is not None
                row = cdf[prev]
                # Scale by the row's total so rounding never selects a filtered-out tail.
                tok = int(row.searchsorted(u * row[-1], side="right"))
            out.append(tok)
            prev = tok
            if tok in stops or (
                spec.stop_strings
                and detokenize is not None
                and any(st in detokenize(out) for st in spec.stop_strings)
            ):
                reason = "stop"
                break
        toks = np.asarray(out, dtype=np.int64)
        prevs = np.concatenate(([start], toks[:-1])).astype(np.int64)
        lp = logp[prevs, toks] if out else np.zeros(0)
        sequences.append(
            SampledSequence(
                stop_reason=reason,
                tokens_np=toks.astype(np.int32),
                logprobs_np=lp.astype(np.float32),
                # At temperature 1, like the sequence logprobs.
                topk_logprobs=topk_rows(logp[prevs[: toks.size]], spec.topk_sample_logprobs)
                if spec.topk_sample_logprobs > 0
                else None,
            )
        )
    extras = (
        prompt_extras(PromptRows(logp, prompt[:-1]), prompt, spec)
        if needs_prompt_rows(spec)
        else None
    )
    if extras is None:
        return SampleResponse(sequences=sequences)
    return SampleResponse(
        sequences=sequences,
        prompt_logprobs=extras.prompt_logprobs,
        topk_prompt_logprobs=extras.topk_prompt_logprobs,
        target_prompt_logprobs=extras.target_prompt_logprobs,
        prompt_alt_tokens=extras.prompt_alt_tokens,
    )
