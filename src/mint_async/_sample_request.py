"""Turning a caller's sample arguments into a validated :class:`~mint_async.types.SampleRequest`.

The prompt and sampling parameters may be mint_async's wire types or tinker's own
objects (converted by their fields, see ``_foreign``); the tinker 0.38 keywords
arrive as :class:`SampleOptions`.
"""

from __future__ import annotations

from typing import TypedDict

from . import types as t
from ._foreign import as_model_input, as_sampling_params, convert

__all__ = ["SampleOptions", "build_sample_request"]


class SampleOptions(TypedDict, total=False):
    """tinker 0.38's sampling keywords (all optional; their defaults ask for nothing extra)."""

    topk_sample_logprobs: int
    """The top-k logprobs at each sampled position (``SampledSequence.topk_logprobs``)."""
    target_prompt_logprobs: t.TensorData | None
    """int64 ``[len(prompt) - 1, K]`` token ids whose logprobs to return at each prompt position."""
    prompt_alt_tokens_k: int
    """Draw this many alternative tokens at every prompt position after the first."""
    prompt_logprobs_last_n: int | None
    """Score only the last N prompt tokens (with ``include_prompt_logprobs``)."""
    record_stability_info: bool
    """Record the sampled sequences for ``stable_reinforce`` training."""


def build_sample_request(
    sampling_session_id: str,
    seq_id: int,
    prompt: t.ModelInput,
    num_samples: int = 1,
    sampling_params: t.SamplingParams | None = None,
    *,
    include_prompt_logprobs: bool = False,
    topk_prompt_logprobs: int = 0,
    options: SampleOptions | None = None,
) -> t.SampleRequest:
    """The request for ``seq_id`` of a sampling session (validated by the Struct's checks)."""
    opts: SampleOptions = options if options is not None else {}
    model_input = as_model_input(prompt)
    params = as_sampling_params(sampling_params) if sampling_params is not None else None
    target = opts.get("target_prompt_logprobs")
    return t.SampleRequest(
        num_samples=num_samples,
        prompt=model_input,
        sampling_params=params if params is not None else t.SamplingParams(),
        sampling_session_id=sampling_session_id,
        seq_id=seq_id,
        prompt_logprobs=include_prompt_logprobs,
        topk_prompt_logprobs=topk_prompt_logprobs,
        topk_sample_logprobs=opts.get("topk_sample_logprobs", 0),
        target_prompt_logprobs=(
            convert(target, t.TensorData, "target_prompt_logprobs") if target is not None else None
        ),
        prompt_alt_tokens_k=opts.get("prompt_alt_tokens_k", 0),
        prompt_logprobs_last_n=opts.get("prompt_logprobs_last_n"),
        record_stability_info=opts.get("record_stability_info", False),
    )
