"""The torch backend's model: a seeded tiny Qwen3, LoRA per LoraConfig, AdamW with every AdamParams field."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mint_async import types as t
from mint_async.server.backends import BackendOptions, create_backend
from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer, load_tokenizer
from mint_async.server.backends._torch_lora import LORA_ALPHA
from mint_async.server.backends.torch import DEFAULT_MODELS, TorchBackend, TorchModel

from .conftest import TOKENS, datum, direct_logprobs, new_model, weights


def test_registered_and_serving_every_default_name(backend: TorchBackend) -> None:
    """--backend torch builds this backend; every name is the tiny Qwen3 with the offline tokenizer."""
    built = create_backend("torch", BackendOptions(seed=0, model_names=("mint-tiny-qwen3",)))
    assert isinstance(built, TorchBackend)
    assert [s.name for s in built.models()] == ["mint-tiny-qwen3"]
    names = [s.name for s in backend.models()]
    assert names == list(DEFAULT_MODELS) and "Qwen/Qwen3-0.6B" in names
    spec = backend.models()[0]
    assert spec.arch == "Qwen3ForCausalLM" and backend.execution.threaded
    assert backend.execution.max_concurrency == 1
    tokenizer = load_tokenizer(spec.tokenizer_id)
    assert len(tokenizer) == spec.vocab_size
    parameters = sum(p.numel() for p in backend.base_module.parameters())
    assert 100_000 < parameters < 1_000_000


def test_base_model_is_a_function_of_the_seed() -> None:
    """The same seed builds identical weights; another seed others; the global RNG is left alone."""
    directory = ensure_tiny_tokenizer()
    rng_state = torch.get_rng_state()
    a = TorchBackend(tokenizer_dir=directory, seed=5, num_threads=None)
    assert torch.equal(torch.get_rng_state(), rng_state)
    b = TorchBackend(tokenizer_dir=directory, seed=5, num_threads=None)
    c = TorchBackend(tokenizer_dir=directory, seed=6, num_threads=None)
    sa, sb, sc = (x.base_module.state_dict() for x in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_new_adapter_leaves_the_model_unchanged(backend: TorchBackend) -> None:
    """B starts at zero: a fresh run's logprobs are exactly the base model's."""
    model = new_model(backend, trained=False)
    out = backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=False)
    with torch.no_grad():
        base = direct_logprobs(backend.base_module, TOKENS[:-1], TOKENS[1:]).numpy()
    np.testing.assert_allclose(out.loss_fn_outputs[0]["logprobs"].to_numpy(), base, atol=1e-6)


@pytest.mark.parametrize(
    ("flags", "suffixes"),
    [
        (
            {},
            {
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
                "lm_head",
            },
        ),
        ({"train_mlp": False, "train_unembed": False}, {"q_proj", "k_proj", "v_proj", "o_proj"}),
        ({"train_attn": False, "train_unembed": False}, {"gate_proj", "up_proj", "down_proj"}),
        ({"train_attn": False, "train_mlp": False}, {"lm_head"}),
    ],
)
def test_lora_config_selects_layers_and_rank(
    backend: TorchBackend, flags: dict[str, bool], suffixes: set[str]
) -> None:
    """train_attn / train_mlp / train_unembed pick the adapted layers; rank sets the factor shapes."""
    model = new_model(backend, rank=3, trained=False, **flags)
    assert {name.rsplit(".", 1)[-1] for name in model.layers} == suffixes
    per_layer = suffixes - {"lm_head"}
    assert len(model.layers) == 2 * len(per_layer) + ("lm_head" in suffixes)  # two decoder layers
    for layer in model.layers.values():
        assert layer.lora_A.shape == (3, layer.base.in_features)
        assert layer.lora_B.shape == (layer.base.out_features, 3)
        assert layer.scaling == pytest.approx(LORA_ALPHA / 3)
        assert not layer.base.weight.requires_grad
    trainable = {n for n, p in model.module.named_parameters() if p.requires_grad}
    assert trainable == {name for name, _ in model.named_parameters()}


def test_lora_seed_fixes_the_initialisation(backend: TorchBackend) -> None:
    """The same LoRA seed gives the same A; another seed another A."""
    a, b, c = (new_model(backend, seed=s, trained=False) for s in (1, 1, 2))
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa if k.endswith("lora_A"))


def _reference_adamw(
    p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, params: t.AdamParams, step: int
) -> np.ndarray:
    """AdamW written out (bias-corrected moments, decoupled weight decay); updates m and v in place."""
    m *= params.beta1
    m += (1 - params.beta1) * g
    v *= params.beta2
    v += (1 - params.beta2) * g * g
    m_hat = m / (1 - params.beta1**step)
    v_hat = v / (1 - params.beta2**step)
    out: np.ndarray = p * (1 - params.learning_rate * params.weight_decay)
    return out - params.learning_rate * m_hat / (np.sqrt(v_hat) + params.eps)


def _step_and_compare(
    backend: TorchBackend,
    model: TorchModel,
    params: t.AdamParams,
    state: dict[str, tuple[np.ndarray, np.ndarray]],
    step: int,
) -> dict[str, float]:
    backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=True)
    before = {n: p.detach().double().numpy().copy() for n, p in model.named_parameters()}
    g = {
        n: p.grad.double().numpy().copy() for n, p in model.named_parameters() if p.grad is not None
    }
    norm = math.sqrt(sum(float((x**2).sum()) for x in g.values()))
    scale = params.grad_clip_norm / norm if 0 < params.grad_clip_norm < norm else 1.0
    metrics = backend.optim_step(model, params)
    assert metrics["grad_norm:mean"] == pytest.approx(norm, rel=1e-6)
    assert metrics["step:max"] == step
    for name, p in model.named_parameters():
        m, v = state.setdefault(name, (np.zeros_like(before[name]), np.zeros_like(before[name])))
        expected = _reference_adamw(before[name], g[name] * scale, m, v, params, step)
        np.testing.assert_allclose(p.detach().double().numpy(), expected, rtol=1e-5, atol=1e-7)
    return metrics


def test_adamw_uses_every_field_at_every_step(backend: TorchBackend) -> None:
    """Each step applies that step's lr, betas, eps, decoupled weight decay and grad clipping exactly."""
    model = new_model(backend)
    state: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    steps = [
        t.AdamParams(learning_rate=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1),
        t.AdamParams(learning_rate=3e-3, beta1=0.5, beta2=0.9, eps=1e-3, grad_clip_norm=0.5),
        t.AdamParams(
            learning_rate=1e-3,
            beta1=0.8,
            beta2=0.99,
            eps=1e-6,
            weight_decay=0.5,
            grad_clip_norm=1e3,
        ),
    ]
    clipped: list[bool] = []
    for i, params in enumerate(steps, start=1):
        metrics = _step_and_compare(backend, model, params, state, i)
        clipped.append(0 < params.grad_clip_norm < metrics["grad_norm:mean"])
    assert clipped == [False, True, False]


def test_optim_step_without_gradients_still_decays(backend: TorchBackend) -> None:
    """A step with no forward_backward before it counts, and weight decay still applies."""
    model = new_model(backend)
    before = weights(model)
    metrics = backend.optim_step(model, t.AdamParams(learning_rate=0.1, weight_decay=0.5))
    assert metrics == {"grad_norm:mean": 0.0, "step:max": 1.0}
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[name] * (1 - 0.1 * 0.5))


def test_training_reduces_loss_on_repeated_data(backend: TorchBackend) -> None:
    """forward_backward + optim_step repeated lowers the loss of the same data a lot."""
    model = new_model(backend, trained=False)

    def loss() -> float:
        out = backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=False)
        return out.metrics["loss:sum"]

    first = loss()
    for _ in range(15):
        backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=True)
        backend.optim_step(model, t.AdamParams(learning_rate=1e-2))
    assert loss() < 0.5 * first
