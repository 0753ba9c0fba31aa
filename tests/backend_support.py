"""Helpers shared by the backend unit tests (synthetic and torch)."""

from __future__ import annotations

from typing import Any

from mint_async import types as t
from mint_async.server.backends import SampleSpec


def next_token_datum(tokens: list[int], **inputs: Any) -> t.Datum:
    """A next-token datum (targets are the input shifted by one), unit weights unless overridden."""
    base: dict[str, Any] = {"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)}
    base.update(inputs)
    return t.Datum(model_input=t.ModelInput.from_ints(tokens[:-1]), loss_fn_inputs=base)


def sample_spec(**kwargs: Any) -> SampleSpec:
    """A sample spec with small defaults (``prompt`` is required)."""
    values: dict[str, Any] = {
        "num_samples": 1,
        "max_tokens": 8,
        "temperature": 1.0,
        "top_k": -1,
        "top_p": 1.0,
        "stop_token_ids": (),
        "stop_strings": (),
        "seed": 7,
        "prompt_logprobs": False,
        "topk_prompt_logprobs": 0,
    }
    values.update(kwargs)
    return SampleSpec(**values)
