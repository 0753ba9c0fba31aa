"""Third-party warnings in the torch backend: none from today's APIs, and any new one is contained."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from mint_async.server.backends import _torch_sampling
from mint_async.server.backends import torch as torch_backend
from mint_async.server.backends._torch_model import cached_step
from mint_async.server.backends._warnings import contain_warnings, reported_warnings
from mint_async.server.backends.torch import TorchBackend

from .conftest import new_model, spec


def test_sampling_uses_current_transformers_apis_without_warnings(
    backend: TorchBackend, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Cached sampling (uncontained) raises no Python warning and logs nothing through transformers."""
    sampler = backend.snapshot_sampler(new_model(backend, seed=3))
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _torch_sampling.sample(
            sampler.module,
            spec(max_tokens=6, num_samples=2),
            vocab=backend.models()[0].vocab_size,
            eos_id=2,
            detokenize=None,
        )
    assert len(res.sequences) == 2
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records] == []
    assert capfd.readouterr().err == ""


@dataclass
class _Out:
    logits: torch.Tensor
    past_key_values: Any


class _OldStyleLM(nn.Module):
    """A causal LM whose forward spells the cache ``past_key_values`` (transformers < 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def forward(
        self, input_ids: torch.Tensor, past_key_values: Any = None, use_cache: bool = False
    ) -> _Out:
        self.seen.append(past_key_values)
        cache = (past_key_values or 0) + input_ids.shape[1]
        return _Out(logits=torch.zeros((*input_ids.shape, 5)), past_key_values=cache)


@dataclass
class _NewOut:
    logits: torch.Tensor
    cache: Any


class _NewStyleLM(nn.Module):
    """A causal LM with transformers 5's ``cache`` keyword and output field."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def forward(
        self, input_ids: torch.Tensor, cache: Any = None, use_cache: bool = False
    ) -> _NewOut:
        self.seen.append(cache)
        return _NewOut(
            logits=torch.zeros((*input_ids.shape, 5)), cache=(cache or 0) + input_ids.shape[1]
        )


def test_cached_step_falls_back_to_past_key_values_on_older_transformers() -> None:
    """A model without a ``cache`` keyword gets ``past_key_values``; the returned cache is threaded through."""
    model = _OldStyleLM()
    logits, cache = cached_step(model, torch.zeros((2, 4), dtype=torch.long), None)
    assert logits.shape == (2, 4, 5) and cache == 4
    _, cache = cached_step(model, torch.zeros((2, 1), dtype=torch.long), cache)
    assert cache == 5
    assert model.seen == [None, 4]


def test_cached_step_uses_the_cache_keyword_where_it_exists() -> None:
    """A model with the ``cache`` keyword gets it, and the cache is read from ``out.cache``."""
    model = _NewStyleLM()
    _, cache = cached_step(model, torch.zeros((1, 3), dtype=torch.long), None)
    _, cache = cached_step(model, torch.zeros((1, 1), dtype=torch.long), cache)
    assert cache == 4
    assert model.seen == [None, 3]


def test_a_third_party_warning_in_a_backend_call_is_contained_and_logged_once(
    backend: TorchBackend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Under filterwarnings=error a library's FutureWarning neither fails sampling nor repeats in the log."""
    real = _torch_sampling.sample

    def warning_sample(*args: Any, **kwargs: Any) -> Any:
        warnings.warn("`old_kwarg` is deprecated; use `new_kwarg`", FutureWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch_backend, "sample", warning_sample)
    sampler = backend.base_sampler(backend.models()[0])
    caplog.set_level(logging.DEBUG, logger="mint_async.server")
    for _ in range(2):
        res = backend.sample(sampler, spec(max_tokens=3))
        assert len(res.sequences) == 1
    logged = [r.getMessage() for r in caplog.records if "old_kwarg" in r.getMessage()]
    assert len(logged) == 1
    assert ("FutureWarning", "`old_kwarg` is deprecated; use `new_kwarg`") in reported_warnings()


def test_contained_function_still_raises_its_own_exceptions() -> None:
    """Containment records warnings only: the wrapped call's exception propagates, its warning is kept."""

    @contain_warnings
    def failing() -> None:
        warnings.warn("about to fail", UserWarning, stacklevel=1)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        failing()
    assert ("UserWarning", "about to fail") in reported_warnings()
