"""Batches shared by the integration tests."""

from __future__ import annotations

import numpy as np

from mint_async import types as t


def sft_datum(prompt: list[int], answer: list[int]) -> t.Datum:
    """A supervised datum: the prompt at weight 0, the answer at weight 1, shifted for teacher forcing."""
    tokens = prompt + answer
    weights = [0.0] * len(prompt) + [1.0] * len(answer)
    return t.Datum(
        model_input=t.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights[1:]},
    )


def rl_datum(n: int, advantage: float) -> t.Datum:
    """An RL datum of ``n`` sampled tokens with sampler logprobs and one advantage."""
    tokens = list(range(5, 5 + n + 1))
    return t.Datum(
        model_input=t.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": tokens[1:],
            "logprobs": np.full(n, -1.5, dtype=np.float32),
            "advantages": np.full(n, advantage, dtype=np.float32),
        },
    )
