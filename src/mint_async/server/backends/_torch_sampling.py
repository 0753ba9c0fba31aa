"""Sampling from the torch backend's model: batched over samples, with a KV cache.

All ``num_samples`` sequences decode together as one batch (the prompt is
shared, so no padding is ever needed); each step feeds only the new tokens
and reuses the cache. Randomness comes from one ``torch.Generator`` seeded
with the request's seed, so a seed always gives the same samples.

Filtering matches the synthetic backend: temperature scales the logits, then
``top_k`` (``<= 0`` or ``>= vocab``: off) keeps the k largest, then ``top_p``
keeps the smallest set of most likely tokens whose mass reaches ``top_p``.
Temperature 0 is greedy. Sequence logprobs are the model's at temperature 1,
unfiltered (so they equal what ``forward`` returns for the same tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from mint_async._exceptions import InvalidInputError
from mint_async.types import SampledSequence, SampleResponse, StopReason, TopkEntry

from ._base import TOP_P_SLACK, SampleSpec
from ._inputs import check_vocab
from ._sample_extras import PromptRows, needs_prompt_rows, prompt_extras, topk_rows
from ._torch_model import MAX_CONTEXT, cached_step, from_numpy, to_floats, to_ints

__all__ = ["Detokenize", "filtered_probs", "sample"]

Detokenize = Callable[[Sequence[int]], str]

_SEED_MOD = 2**63


def filtered_probs(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float
) -> torch.Tensor:
    """Row-wise sampling probabilities after temperature, top-k and top-p."""
    z = logits / temperature
    if not bool(torch.isfinite(z).all()):
        # A tiny temperature overflows (inf - inf = nan in softmax; below float32's range it
        # is 0): its limit, the top token(s) alone.
        top = logits.max(dim=-1, keepdim=True).values
        z = torch.zeros_like(logits).masked_fill(logits < top, float("-inf"))
    vocab = z.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    p = torch.softmax(z, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(p, dim=-1, descending=True, stable=True)
        # Keep the smallest prefix whose mass reaches top_p (always the top token);
        # the slack stops rounding (.5 + .3 summing to just under .8) from keeping one more.
        keep_sorted = (torch.cumsum(sorted_p, dim=-1) - sorted_p) < top_p - TOP_P_SLACK
        keep_sorted[..., 0] = True
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        p = torch.where(keep, p, torch.zeros_like(p))
        p = p / p.sum(dim=-1, keepdim=True)
    return p


def _check(spec: SampleSpec, vocab: int) -> None:
    prompt = spec.prompt
    if prompt.size == 0:
        msg = "the prompt is empty"
        raise InvalidInputError(msg)
    check_vocab(prompt, vocab, "the prompt")
    if prompt.size + spec.max_tokens > MAX_CONTEXT:
        msg = (
            f"prompt ({prompt.size} tokens) + max_tokens ({spec.max_tokens}) exceed "
            f"the model's context of {MAX_CONTEXT}"
        )
        raise InvalidInputError(msg)


def sample(
    model: nn.Module,
    spec: SampleSpec,
    *,
    vocab: int,
    eos_id: int,
    detokenize: Detokenize | None,
) -> SampleResponse:
    """``spec.num_samples`` continuations of ``spec.prompt`` (see the module docstring)."""
    _check(spec, vocab)
    n = spec.num_samples
    prompt = from_numpy(np.ascontiguousarray(spec.prompt, dtype=np.int64))
    stops = {eos_id} if spec.stop_token_ids is None else set(spec.stop_token_ids)
    generator = torch.Generator().manual_seed(spec.seed % _SEED_MOD)
    tokens: list[list[int]] = [[] for _ in range(n)]
    logprobs: list[list[float]] = [[] for _ in range(n)]
    topk: list[list[list[TopkEntry] | None]] = [[] for _ in range(n)]
    k = min(spec.topk_sample_logprobs, vocab)
    reasons: list[StopReason] = ["length"] * n
    with torch.inference_mode():
        all_logits, cache = cached_step(model, prompt.expand(n, -1), None)
        logits = all_logits[:, -1].float()
        extras = (
            prompt_extras(
                PromptRows(
                    torch.log_softmax(all_logits[0, :-1].float(), dim=-1).numpy(),
                    np.arange(spec.prompt.size - 1, dtype=np.int64),
                ),
                spec.prompt,
                spec,
            )
            if needs_prompt_rows(spec)
            else None
        )
        live = list(range(n))
        for step in range(spec.max_tokens):
            logp = torch.log_softmax(logits, dim=-1)
            if spec.temperature == 0:
                chosen = logits.argmax(dim=-1)
            else:
                probs = filtered_probs(logits, spec.temperature, spec.top_k, spec.top_p)
                chosen = torch.multinomial(probs, 1, generator=generator)[:, 0]
            chosen_lp = logp.gather(-1, chosen[:, None])[:, 0]
            ids: list[int] = to_ints(chosen)
            lps: list[float] = to_floats(chosen_lp)
            # At temperature 1, like the sequence logprobs.
            best = topk_rows(logp.numpy(), k) if k > 0 else None
            still: list[int] = []
            # Rows that finished keep decoding (the batch stays rectangular);
            # their extra tokens are simply not recorded.
            for row in live:
                tokens[row].append(ids[row])
                logprobs[row].append(lps[row])
                if best is not None:
                    topk[row].append(best[row])
                if ids[row] in stops or (
                    spec.stop_strings
                    and detokenize is not None
                    and any(s in detokenize(tokens[row]) for s in spec.stop_strings)
                ):
                    reasons[row] = "stop"
                else:
                    still.append(row)
            live = still
            if not live or step == spec.max_tokens - 1:
                break
            step_logits, cache = cached_step(model, chosen[:, None], cache)
            logits = step_logits[:, -1].float()
    sequences = [
        SampledSequence(
            stop_reason=reasons[i],
            tokens_np=np.asarray(tokens[i], dtype=np.int32),
            logprobs_np=np.asarray(logprobs[i], dtype=np.float32),
            topk_logprobs=topk[i] if k > 0 else None,
        )
        for i in range(n)
    ]
    if extras is None:
        return SampleResponse(sequences=sequences)
    return SampleResponse(
        sequences=sequences,
        prompt_logprobs=extras.prompt_logprobs,
        topk_prompt_logprobs=extras.topk_prompt_logprobs,
        target_prompt_logprobs=extras.target_prompt_logprobs,
        prompt_alt_tokens=extras.prompt_alt_tokens,
    )
