"""The torch backend's checkpoints: safetensors round trips, sampler checkpoints, interpolation, refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file  # pyright: ignore[reportUnknownVariableType]

from mint_async import InvalidInputError
from mint_async import types as t
from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer
from mint_async.server.backends._torch_checkpoint import (
    ADAPTER_FILE,
    CONFIG_FILE,
    OPTIMIZER_FILE,
)
from mint_async.server.backends.torch import TorchBackend, TorchModel

from .conftest import TOKENS, datum, new_model, spec, weights

ADAM = t.AdamParams(learning_rate=1e-2, weight_decay=0.01)


def _train(backend: TorchBackend, model: TorchModel, steps: int = 2) -> None:
    for _ in range(steps):
        backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=True)
        backend.optim_step(model, ADAM)


def _logprobs(backend: TorchBackend, model: TorchModel) -> np.ndarray:
    out = backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=False)
    values: np.ndarray = out.loss_fn_outputs[0]["logprobs"].to_numpy()
    return values


def _save(backend: TorchBackend, model: TorchModel, directory: Path, kind: str) -> Path:
    directory.mkdir()
    backend.save_state(model, directory, kind="training" if kind == "training" else "sampler")
    return directory


def test_training_checkpoint_round_trip_is_exact(backend: TorchBackend, tmp_path: Path) -> None:
    """Save -> load (with optimizer) into another run: identical logprobs, and the next step is identical too."""
    model = new_model(backend, seed=1)
    _train(backend, model)
    ckpt = _save(backend, model, tmp_path / "ckpt", "training")
    assert {p.name for p in ckpt.iterdir()} == {ADAPTER_FILE, CONFIG_FILE, OPTIMIZER_FILE}
    assert set(load_file(ckpt / ADAPTER_FILE)) == {name for name, _ in model.named_parameters()}

    other = new_model(backend, seed=2)
    backend.load_state(other, ckpt, optimizer=True)
    assert np.array_equal(_logprobs(backend, other), _logprobs(backend, model))
    assert other.steps == model.steps == 2
    _train(backend, model, 1)
    _train(backend, other, 1)
    wm, wo = weights(model), weights(other)
    assert all(torch.equal(wm[k], wo[k]) for k in wm)


def test_load_without_optimizer_resets_it(backend: TorchBackend, tmp_path: Path) -> None:
    """load_state (weights only) restores the weights and starts AdamW afresh."""
    model = new_model(backend, seed=1)
    _train(backend, model)
    ckpt = _save(backend, model, tmp_path / "ckpt", "training")
    other = new_model(backend, seed=2)
    _train(backend, other, 3)
    backend.load_state(other, ckpt, optimizer=False)
    assert np.array_equal(_logprobs(backend, other), _logprobs(backend, model))
    backend.forward_backward(other, [datum()], "cross_entropy", {}, backward=True)
    assert backend.optim_step(other, ADAM)["step:max"] == 1


def test_sampler_checkpoint_samples_like_the_live_weights(
    backend: TorchBackend, tmp_path: Path
) -> None:
    """A sampler checkpoint, loaded, samples exactly what a snapshot of the in-process weights does."""
    model = new_model(backend, seed=3)
    _train(backend, model, 3)
    ckpt = _save(backend, model, tmp_path / "sampler", "sampler")
    assert not (ckpt / OPTIMIZER_FILE).exists()
    live = backend.snapshot_sampler(model)
    loaded = backend.load_sampler(backend.models()[0], ckpt)
    for s in (spec(temperature=0.0, max_tokens=12), spec(temperature=1.0, seed=11, num_samples=3)):
        a, b = backend.sample(live, s), backend.sample(loaded, s)
        for x, y in zip(a.sequences, b.sequences, strict=True):
            assert x.tokens == y.tokens and x.logprobs == y.logprobs
    victim = new_model(backend, seed=8)
    untouched = _logprobs(backend, victim)
    with pytest.raises(InvalidInputError, match="no optimizer state"):
        backend.load_state(victim, ckpt, optimizer=True)
    assert np.array_equal(_logprobs(backend, victim), untouched)  # a failed load changes nothing
    # Sampler checkpoints still load as weights.
    fresh = new_model(backend, seed=4)
    backend.load_state(fresh, ckpt, optimizer=False)
    assert np.array_equal(_logprobs(backend, fresh), _logprobs(backend, model))


def test_snapshot_is_frozen(backend: TorchBackend) -> None:
    """A sampler does not change when its run trains on."""
    model = new_model(backend, seed=3)
    sampler = backend.snapshot_sampler(model)
    before = backend.sample(sampler, spec(temperature=0.0, prompt_logprobs=True))
    _train(backend, model, 3)
    after = backend.sample(sampler, spec(temperature=0.0, prompt_logprobs=True))
    assert before.prompt_logprobs == after.prompt_logprobs
    assert before.sequences[0].tokens == after.sequences[0].tokens


def _rank_two(backend: TorchBackend) -> TorchModel:
    return new_model(backend, rank=2)


def _without_unembed(backend: TorchBackend) -> TorchModel:
    return new_model(backend, rank=4, train_unembed=False)


@pytest.mark.parametrize(("make", "message"), [(_rank_two, "rank"), (_without_unembed, "modules")])
def test_incompatible_runs_are_refused(
    backend: TorchBackend,
    tmp_path: Path,
    make: Callable[[TorchBackend], TorchModel],
    message: str,
) -> None:
    """Loading into a run of another rank or other adapted layers is a user error."""
    ckpt = _save(backend, new_model(backend, rank=4), tmp_path / "ckpt", "training")
    with pytest.raises(InvalidInputError, match=message):
        backend.load_state(make(backend), ckpt, optimizer=False)


def test_foreign_checkpoints_are_refused(backend: TorchBackend, tmp_path: Path) -> None:
    """Another base (seed), another base-model name, or no checkpoint at all: InvalidInputError."""
    ckpt = _save(backend, new_model(backend), tmp_path / "ckpt", "training")
    other_base = TorchBackend(tokenizer_dir=ensure_tiny_tokenizer(), seed=1, num_threads=None)
    with pytest.raises(InvalidInputError, match="another base model"):
        other_base.load_sampler(other_base.models()[0], ckpt)
    with pytest.raises(InvalidInputError, match="is of"):
        backend.load_sampler(backend.models()[1], ckpt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="not a torch-backend checkpoint"):
        backend.load_state(new_model(backend), empty, optimizer=False)
    (empty / CONFIG_FILE).write_text("{}")
    (empty / ADAPTER_FILE).write_bytes(b"not safetensors")
    with pytest.raises(InvalidInputError, match="not a torch-backend checkpoint"):
        backend.load_sampler(backend.models()[0], empty)


def _merged_weights(backend: TorchBackend, directory: Path) -> dict[str, torch.Tensor]:
    sampler = backend.load_sampler(backend.models()[0], directory)
    return {k: v.clone() for k, v in sampler.module.state_dict().items()}


def test_interpolation_mixes_the_updates_exactly(backend: TorchBackend, tmp_path: Path) -> None:
    """interpolate(c) gives base + sum(c_i * update_i) for every weight; c=[1] reproduces a source."""
    a, b = new_model(backend, seed=1), new_model(backend, seed=2, rank=3, train_mlp=False)
    _train(backend, a)
    _train(backend, b)
    pa = _save(backend, a, tmp_path / "a", "sampler")
    pb = _save(backend, b, tmp_path / "b", "training")
    out = tmp_path / "mix"
    out.mkdir()
    backend.interpolate([pa, pb], [0.3, 0.7], out)
    base = {k: v.clone() for k, v in backend.base_module.state_dict().items()}
    wa, wb, mixed = (
        _merged_weights(backend, pa),
        _merged_weights(backend, pb),
        _merged_weights(backend, out),
    )
    for key, w in base.items():
        expected = w + 0.3 * (wa[key] - w) + 0.7 * (wb[key] - w)
        torch.testing.assert_close(mixed[key], expected, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(mixed[k], base[k]) for k in base)

    single = tmp_path / "single"
    single.mkdir()
    backend.interpolate([pa], [1.0], single)
    again = _merged_weights(backend, single)
    for key, w in wa.items():
        torch.testing.assert_close(again[key], w, rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidInputError, match="rank"):
        backend.load_state(new_model(backend, seed=1), out, optimizer=False)


def test_load_clears_pending_gradients(backend: TorchBackend, tmp_path: Path) -> None:
    """Gradients accumulated before a load are dropped (they belong to the old weights)."""
    model = new_model(backend)
    ckpt = _save(backend, model, tmp_path / "ckpt", "training")
    backend.forward_backward(model, [datum(TOKENS)], "cross_entropy", {}, backward=True)
    backend.load_state(model, ckpt, optimizer=True)
    assert all(p.grad is None for _, p in model.named_parameters())


def test_interpolation_that_overflows_float32_is_the_users_error(
    backend: TorchBackend, tmp_path: Path
) -> None:
    """A finite but huge coefficient overflows the mixed factors: InvalidInputError, nothing written."""
    a = new_model(backend, seed=1)
    _train(backend, a)
    pa = _save(backend, a, tmp_path / "a", "sampler")
    out = tmp_path / "mix"
    out.mkdir()
    with pytest.raises(InvalidInputError, match="too large"):
        backend.interpolate([pa, pa], [1.2034280994825297e308, 0.5], out)
    assert list(out.iterdir()) == []
