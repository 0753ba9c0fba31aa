"""The synthetic backend: exact losses and gradients, training that learns, faithful sampling, checkpoints."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mint_async import InvalidInputError
from mint_async import types as t
from mint_async.server.backends import SampleSpec
from mint_async.server.backends._bigram import SyntheticModel
from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer
from mint_async.server.backends.synthetic import SyntheticBackend

from ..backend_support import next_token_datum, sample_spec

TOKENS = [11, 42, 7, 300, 5, 19, 2, 77]


def datum(tokens: list[int] = TOKENS, **inputs: Any) -> t.Datum:
    """A next-token datum over ``tokens`` (default: this module's TOKENS)."""
    return next_token_datum(tokens, **inputs)


def spec(**kwargs: Any) -> SampleSpec:
    """A sample spec prompting with the first four TOKENS."""
    return sample_spec(**{"prompt": np.array(TOKENS[:4]), **kwargs})


@pytest.fixture(scope="module")
def backend() -> SyntheticBackend:
    """One backend for the module (building the tokenizer is the slow part)."""
    return SyntheticBackend(tokenizer_dir=ensure_tiny_tokenizer())


def new_model(backend: SyntheticBackend, seed: int = 1, rank: int = 4) -> SyntheticModel:
    """A fresh model on the first base model."""
    return backend.create_model(
        "s:train:0", backend.models()[0], t.LoraConfig(rank=rank, seed=seed)
    )


def loss(
    backend: SyntheticBackend,
    model: SyntheticModel,
    data: list[t.Datum],
    loss_fn: str = "cross_entropy",
    config: dict[str, float] | None = None,
) -> float:
    """The loss of ``data`` without touching gradients."""
    return backend.forward_backward(model, data, loss_fn, config or {}, backward=False).metrics[
        "loss:sum"
    ]


def test_loss_is_minus_sum_of_weighted_logprobs(backend: SyntheticBackend) -> None:
    """cross_entropy loss:sum equals -sum(weights * returned logprobs), one float32 output per datum."""
    model = new_model(backend)
    weights = [0.0, 1.0, 0.5, 1.0, 2.0, 1.0, 1.0]
    out = backend.forward_backward(
        model, [datum(weights=weights), datum()], "cross_entropy", {}, backward=True
    )
    assert len(out.loss_fn_outputs) == 2
    lp0 = out.loss_fn_outputs[0]["logprobs"]
    lp1 = out.loss_fn_outputs[1]["logprobs"]
    assert lp0.dtype == "float32" and lp0.shape == [7]
    expected = -(np.dot(weights, lp0.data) + lp1.data.sum())
    assert out.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    assert list(out.metrics) == ["loss:sum"]


def test_deterministic_in_seed(backend: SyntheticBackend) -> None:
    """Same LoRA seed, same numbers; another seed, other numbers after training."""
    a, b, c = new_model(backend, 1), new_model(backend, 1), new_model(backend, 2)
    for m in (a, b, c):
        backend.forward_backward(m, [datum()], "cross_entropy", {}, backward=True)
        backend.optim_step(m, t.AdamParams(learning_rate=0.1))
    assert loss(backend, a, [datum()]) == loss(backend, b, [datum()])
    assert loss(backend, a, [datum()]) != loss(backend, c, [datum()])


def test_training_reduces_loss_on_repeated_data(backend: SyntheticBackend) -> None:
    """forward_backward + optim_step repeated lowers the loss of the same data."""
    model = new_model(backend)
    first = loss(backend, model, [datum()])
    steps: list[float] = []
    for _ in range(10):
        backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=True)
        steps.append(backend.optim_step(model, t.AdamParams(learning_rate=0.05))["step:max"])
    assert steps == list(range(1, 11))
    assert loss(backend, model, [datum()]) < 0.8 * first


def _numeric_grad(
    backend: SyntheticBackend, model: SyntheticModel, fn: Any, eps: float = 1e-5
) -> np.ndarray[Any, Any]:
    """Central differences of fn() w.r.t. a few entries of model.b (after a step so B != 0)."""
    grads: list[float] = []
    for idx in [(0, 5), (1, 42), (2, 300), (3, 19)]:
        old = model.b[idx]
        model.b[idx] = old + eps
        model.weights_changed()
        up = fn()
        model.b[idx] = old - eps
        model.weights_changed()
        down = fn()
        model.b[idx] = old
        model.weights_changed()
        grads.append((up - down) / (2 * eps))
    return np.array(grads)


@pytest.mark.parametrize(
    ("loss_fn", "config"),
    [
        ("cross_entropy", {}),
        ("importance_sampling", {}),
        ("ppo", {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1}),
        ("cispo", {}),
        ("dro", {"beta": 0.5}),
    ],
)
def test_gradients_match_finite_differences(
    backend: SyntheticBackend, loss_fn: str, config: dict[str, float]
) -> None:
    """Every loss function's accumulated gradient equals a numerical derivative of its loss."""
    model = new_model(backend, rank=4)
    backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=True)
    backend.optim_step(model, t.AdamParams(learning_rate=0.05))
    rng = np.random.default_rng(0)
    n = len(TOKENS) - 1
    extra: dict[str, Any] = {}
    if loss_fn != "cross_entropy":
        sampler_lp = (
            backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=False)
            .loss_fn_outputs[0]["logprobs"]
            .data
        )
        extra = {
            "logprobs": (sampler_lp + rng.normal(0, 0.05, n)).tolist(),
            "advantages": rng.normal(0, 1, n).tolist(),
        }
    data = [datum(**extra)]
    backend.forward_backward(model, data, loss_fn, config, backward=True)
    grad_b = model.lora_grads()[1]
    analytic = np.array([grad_b[idx] for idx in [(0, 5), (1, 42), (2, 300), (3, 19)]])
    model.zero_grad()
    objective = data
    if loss_fn == "cispo":
        # CISPO stops the gradient through its clipped ratio: its gradient is that of
        # cross-entropy weighted by the frozen coefficients clip(r) * A.
        lp = (
            backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=False)
            .loss_fn_outputs[0]["logprobs"]
            .data
        )
        coeff = np.clip(np.exp(lp - np.array(extra["logprobs"])), 0.8, 1.2) * np.array(
            extra["advantages"]
        )
        objective, loss_fn, config = [datum(weights=coeff.tolist())], "cross_entropy", {}
    numeric = _numeric_grad(
        backend, model, lambda: loss(backend, model, objective, loss_fn, config)
    )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-7)


def test_loss_input_validation(backend: SyntheticBackend) -> None:
    """Unknown inputs, missing RL inputs, out-of-vocabulary tokens and unknown config keys are user errors."""
    model = new_model(backend)
    with pytest.raises(InvalidInputError, match="mask"):
        backend.forward_backward(
            model, [datum(mask=[1.0] * 7)], "cross_entropy", {}, backward=False
        )
    with pytest.raises(InvalidInputError, match="advantages"):
        backend.forward_backward(model, [datum(logprobs=[0.0] * 7)], "ppo", {}, backward=False)
    with pytest.raises(InvalidInputError, match="vocabulary"):
        backend.forward_backward(
            model, [datum([1, 2, 100_000])], "cross_entropy", {}, backward=False
        )
    with pytest.raises(InvalidInputError, match="beta"):
        backend.forward_backward(model, [datum()], "cross_entropy", {"beta": 1.0}, backward=False)


def test_two_dimensional_targets(backend: SyntheticBackend) -> None:
    """[T, K] targets give [T, K] logprobs and a loss over all of them."""
    model = new_model(backend)
    targets = [[1, 2], [3, 4], [5, 6]]
    d = t.Datum(
        model_input=t.ModelInput.from_ints([7, 8, 9]),
        loss_fn_inputs={
            "target_tokens": t.TensorData.from_numpy(np.array(targets)),
            "weights": t.TensorData.from_numpy(np.ones((3, 2), dtype=np.float32)),
        },
    )
    out = backend.forward_backward(model, [d], "cross_entropy", {}, backward=True)
    lp = out.loss_fn_outputs[0]["logprobs"]
    assert lp.shape == [3, 2]
    assert out.metrics["loss:sum"] == pytest.approx(-float(lp.data.sum()), rel=1e-5)


def test_sampled_logprobs_match_forward(backend: SyntheticBackend) -> None:
    """Logprobs of sampled tokens equal what forward returns for the same continuation."""
    model = new_model(backend)
    sampler = backend.snapshot_sampler(model)
    seq = backend.sample(sampler, spec(max_tokens=6)).sequences[0]
    tokens = [TOKENS[3], *seq.tokens]
    out = backend.forward_backward(model, [datum(tokens)], "cross_entropy", {}, backward=False)
    assert seq.logprobs_np is not None
    np.testing.assert_allclose(out.loss_fn_outputs[0]["logprobs"].data, seq.logprobs_np, rtol=1e-5)


def test_sampling_honours_its_parameters(backend: SyntheticBackend) -> None:
    """max_tokens, num_samples, seed and temperature 0 behave as documented."""
    sampler = backend.base_sampler(backend.models()[0])
    res = backend.sample(sampler, spec(num_samples=5, max_tokens=3))
    assert len(res.sequences) == 5 and all(
        len(s.tokens) == 3 and s.stop_reason == "length" for s in res.sequences
    )
    assert backend.sample(sampler, spec()) == backend.sample(sampler, spec())
    assert (
        backend.sample(sampler, spec(seed=8)).sequences
        != backend.sample(sampler, spec(seed=9)).sequences
    )
    greedy = [
        backend.sample(sampler, spec(temperature=0.0, seed=s)).sequences[0].tokens for s in range(3)
    ]
    assert greedy[0] == greedy[1] == greedy[2]
    assert backend.sample(sampler, spec(max_tokens=0)).sequences[0].tokens == []


def test_stop_tokens_and_strings(backend: SyntheticBackend) -> None:
    """A stop token ends the sequence (included, stop_reason=stop); so does a stop string."""
    sampler = backend.base_sampler(backend.models()[0])
    free = backend.sample(sampler, spec(max_tokens=20, seed=3)).sequences[0].tokens
    stop_at = free[4]
    cut = backend.sample(sampler, spec(max_tokens=20, seed=3, stop_token_ids=(stop_at,))).sequences[
        0
    ]
    assert cut.stop_reason == "stop" and cut.tokens == free[: free.index(stop_at) + 1]
    from tokenizers import Tokenizer

    text = Tokenizer.from_file(str(ensure_tiny_tokenizer() / "tokenizer.json")).decode(free)
    needle = text[len(text) // 2 : len(text) // 2 + 2]
    by_string = backend.sample(
        sampler, spec(max_tokens=20, seed=3, stop_strings=(needle,))
    ).sequences[0]
    assert by_string.stop_reason == "stop" and len(by_string.tokens) < len(free)


def test_top_k_and_top_p_restrict_choices(backend: SyntheticBackend) -> None:
    """With top_k=1 or a tiny top_p, sampling is greedy."""
    sampler = backend.base_sampler(backend.models()[0])
    greedy = backend.sample(sampler, spec(temperature=0.0)).sequences[0].tokens
    assert backend.sample(sampler, spec(top_k=1, seed=5)).sequences[0].tokens == greedy
    assert backend.sample(sampler, spec(top_p=1e-9, seed=6)).sequences[0].tokens == greedy


def test_prompt_logprobs_and_topk(backend: SyntheticBackend) -> None:
    """Prompt logprobs start with None; top-k rows are sorted and contain the actual token's logprob when it is likely."""
    sampler = backend.base_sampler(backend.models()[0])
    res = backend.sample(sampler, spec(prompt_logprobs=True, topk_prompt_logprobs=386))
    assert res.prompt_logprobs is not None and res.topk_prompt_logprobs is not None
    assert res.prompt_logprobs[0] is None and len(res.prompt_logprobs) == 4
    assert res.topk_prompt_logprobs[0] is None
    for pos in range(1, 4):
        row = res.topk_prompt_logprobs[pos]
        assert row is not None
        values = [lp for _, lp in row]
        assert values == sorted(values, reverse=True)
        assert dict(row)[TOKENS[pos]] == pytest.approx(res.prompt_logprobs[pos])


def test_save_load_round_trip(backend: SyntheticBackend, tmp_path: Path) -> None:
    """Saved weights load back to identical logprobs; optimizer state only from training checkpoints."""
    model = new_model(backend)
    backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=True)
    backend.optim_step(model, t.AdamParams(learning_rate=0.1))
    (tmp_path / "train").mkdir()
    (tmp_path / "sampler").mkdir()
    backend.save_state(model, tmp_path / "train", kind="training")
    backend.save_state(model, tmp_path / "sampler", kind="sampler")
    before = loss(backend, model, [datum()])
    other = new_model(backend, seed=9)
    backend.load_state(other, tmp_path / "train", optimizer=True)
    assert loss(backend, other, [datum()]) == before and other.step == 1
    with pytest.raises(InvalidInputError, match="optimizer"):
        backend.load_state(other, tmp_path / "sampler", optimizer=True)
    with pytest.raises(InvalidInputError, match="rank"):
        backend.load_state(new_model(backend, rank=8), tmp_path / "train", optimizer=False)
    loaded = backend.load_sampler(backend.models()[0], tmp_path / "sampler")
    assert backend.sample(loaded, spec()) == backend.sample(backend.snapshot_sampler(model), spec())


def test_interpolation_is_linear(backend: SyntheticBackend, tmp_path: Path) -> None:
    """Coefficients (1, 0) reproduce the first checkpoint; (0.5, 0.5) averages the weights."""
    a, b = new_model(backend, 1), new_model(backend, 2)
    for m, lr in ((a, 0.1), (b, 0.3)):
        backend.forward_backward(m, [datum()], "cross_entropy", {}, backward=True)
        backend.optim_step(m, t.AdamParams(learning_rate=lr))
    dirs = [tmp_path / name for name in ("a", "b", "first", "mid")]
    for d in dirs:
        d.mkdir()
    backend.save_state(a, dirs[0], kind="sampler")
    backend.save_state(b, dirs[1], kind="sampler")
    backend.interpolate(dirs[:2], [1.0, 0.0], dirs[2])
    backend.interpolate(dirs[:2], [0.5, 0.5], dirs[3])
    first = backend.load_sampler(backend.models()[0], dirs[2])
    np.testing.assert_allclose(first.logits, backend.snapshot_sampler(a).logits)
    with np.load(dirs[3] / "lora.npz") as mid:
        np.testing.assert_allclose(mid["a"], (a.a + b.a) / 2)


def test_interpolation_that_overflows_float32_is_the_users_error(
    backend: SyntheticBackend, tmp_path: Path
) -> None:
    """A finite but huge coefficient (1.2e308) is an InvalidInputError, not an overflow warning."""
    model = new_model(backend, 1)
    backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=True)
    backend.optim_step(model, t.AdamParams(learning_rate=0.1))
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    backend.save_state(model, src, kind="sampler")
    with pytest.raises(InvalidInputError, match="too large"):
        backend.interpolate([src, src], [1.2034280994825297e308, 0.5], out)


def test_reverse_kl(backend: SyntheticBackend) -> None:
    """KL is zero against itself, positive against another model, and its gradient matches finite differences."""
    model = new_model(backend)
    backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=True)
    backend.optim_step(model, t.AdamParams(learning_rate=0.1))
    n = 5
    item = t.ReverseKLDatum(
        student_input=t.ModelInput.from_ints(TOKENS[:n]),
        reference_input=t.ModelInput.from_ints([1, *TOKENS[:n]]),
        target_tokens=TOKENS[1 : n + 1],
        weights=[1.0] * n,
    )
    same = backend.forward_backward_reverse_kl(model, backend.snapshot_sampler(model), [item], 1.0)
    assert same.metrics["loss:sum"] == pytest.approx(0.0, abs=1e-9)
    model.zero_grad()
    base = backend.base_sampler(backend.models()[1])
    out = backend.forward_backward_reverse_kl(model, base, [item], 0.7)
    assert out.metrics["loss:sum"] > 0 and out.outputs[0].loss.shape == [n]
    grad_b = model.lora_grads()[1]
    analytic = np.array([grad_b[idx] for idx in [(0, 5), (1, 42), (2, 300), (3, 19)]])
    model.zero_grad()

    def kl() -> float:
        value = backend.forward_backward_reverse_kl(model, base, [item], 0.7).metrics["loss:sum"]
        model.zero_grad()
        return value

    np.testing.assert_allclose(analytic, _numeric_grad(backend, model, kl), rtol=1e-4, atol=1e-8)


def test_models_report_the_offline_tokenizer(backend: SyntheticBackend) -> None:
    """Every model's tokenizer_id is the tiny tokenizer's directory and its vocabulary size."""
    for model_spec in backend.models():
        assert model_spec.tokenizer_id == str(ensure_tiny_tokenizer())
        assert model_spec.vocab_size == 386
    assert replace(backend.models()[0], name="x").name == "x"
