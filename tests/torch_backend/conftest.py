"""Fixtures and helpers for the torch backend's tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from mint_async import types as t
from mint_async.server.backends import SampleSpec
from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer
from mint_async.server.backends.torch import TorchBackend, TorchModel

from ..backend_support import next_token_datum, sample_spec

TOKENS = [11, 42, 7, 300, 5, 19, 2, 77, 120, 33]


def datum(tokens: list[int] = TOKENS, **inputs: Any) -> t.Datum:
    """A next-token datum over ``tokens`` (default: this module's TOKENS)."""
    return next_token_datum(tokens, **inputs)


def spec(**kwargs: Any) -> SampleSpec:
    """A sample spec prompting with the first four TOKENS."""
    return sample_spec(**{"prompt": np.array(TOKENS[:4]), **kwargs})


@pytest.fixture(scope="session")
def backend() -> TorchBackend:
    """One backend for the session: its base model is immutable, runs are independent."""
    return TorchBackend(tokenizer_dir=ensure_tiny_tokenizer(), seed=0)


def new_model(
    backend: TorchBackend, seed: int = 1, rank: int = 4, *, trained: bool = True, **flags: bool
) -> TorchModel:
    """A fresh run; ``trained`` gives ``B`` random values so gradients reach ``A`` too."""
    lora = t.LoraConfig(rank=rank, seed=seed, **flags)
    model = backend.create_model("s:train:0", backend.models()[0], lora)
    if trained:
        generator = torch.Generator().manual_seed(seed + 1000)
        with torch.no_grad():
            for layer in model.layers.values():
                layer.lora_B.copy_(0.05 * torch.randn(layer.lora_B.shape, generator=generator))
    return model


def direct_logprobs(module: torch.nn.Module, tokens: list[int], targets: list[int]) -> torch.Tensor:
    """Logprobs of ``targets`` from one unbatched, uncached forward pass (the brute-force path)."""
    logits = module(input_ids=torch.tensor([tokens])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, torch.tensor(targets)[:, None])[:, 0]


def grads(model: TorchModel) -> dict[str, torch.Tensor]:
    """Copies of the accumulated gradients (zeros where none)."""
    return {
        name: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
        for name, p in model.named_parameters()
    }


def assert_grads_close(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Equal up to float32 noise: batched and unbatched passes round differently (~1e-6 of the scale)."""
    assert got.keys() == expected.keys()
    for name, g in expected.items():
        scale = float(g.abs().max())
        torch.testing.assert_close(got[name], g, rtol=1e-4, atol=1e-5 * max(scale, 1e-3))


def weights(model: TorchModel) -> dict[str, torch.Tensor]:
    """Copies of the LoRA weights."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}
