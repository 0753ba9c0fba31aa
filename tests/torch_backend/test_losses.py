"""The torch backend's losses: each one's gradients against a direct torch formula, accumulation, errors."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from mint_async import InvalidInputError
from mint_async import types as t
from mint_async.server.backends._torch_model import from_numpy
from mint_async.server.backends.torch import TorchBackend, TorchModel

from .conftest import TOKENS, assert_grads_close, datum, direct_logprobs, grads, new_model

SEQS = [TOKENS, [5, 9, 200, 31, 2], [40, 41, 42, 43, 44, 45, 46]]
"""Three sequences of different lengths (the backend pads them into one batch)."""

Formula = Callable[[torch.Tensor, dict[str, torch.Tensor], dict[str, float]], torch.Tensor]


def _ratio(lp: torch.Tensor, x: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.exp(lp - x["logprobs"])


FORMULAS: dict[str, Formula] = {
    # Written straight from protocol.md §8.3, independently of mint_async.server.backends._losses.
    "cross_entropy": lambda lp, x, c: -(x["weights"] * lp).sum(),
    "importance_sampling": lambda lp, x, c: -(x["weights"] * _ratio(lp, x) * x["advantages"]).sum(),
    "ppo": lambda lp, x, c: (
        -(
            x["weights"]
            * torch.minimum(
                _ratio(lp, x) * x["advantages"],
                torch.clamp(_ratio(lp, x), c["clip_low_threshold"], c["clip_high_threshold"])
                * x["advantages"],
            )
        ).sum()
    ),
    "cispo": lambda lp, x, c: (
        -(
            x["weights"]
            * torch.clamp(_ratio(lp, x), c["clip_low_threshold"], c["clip_high_threshold"]).detach()
            * x["advantages"]
            * lp
        ).sum()
    ),
    "dro": lambda lp, x, c: (
        -(x["weights"] * (x["advantages"] * lp - 0.5 * c["beta"] * (lp - x["logprobs"]) ** 2)).sum()
    ),
}

CASES: list[tuple[str, dict[str, float], dict[str, float]]] = [
    ("cross_entropy", {}, {}),
    ("importance_sampling", {}, {}),
    ("ppo", {}, {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
    (
        "ppo",
        {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1},
        {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1},
    ),
    ("cispo", {}, {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
    ("dro", {}, {"beta": 0.01}),
    ("dro", {"beta": 0.7}, {"beta": 0.7}),
]


def _rl_inputs(model: TorchModel, seed: int) -> list[dict[str, np.ndarray[Any, Any]]]:
    """Per sequence: weights, advantages, and sampler logprobs off-policy by up to ±0.5 nats."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, np.ndarray[Any, Any]]] = []
    for seq in SEQS:
        with torch.no_grad():
            lp = direct_logprobs(model.module, seq[:-1], seq[1:]).numpy()
        n = len(seq) - 1
        out.append(
            {
                "weights": rng.uniform(0.0, 2.0, n).astype(np.float32),
                "advantages": rng.normal(0.0, 1.0, n).astype(np.float32),
                "logprobs": (lp + rng.uniform(-0.5, 0.5, n)).astype(np.float32),
            }
        )
    return out


@pytest.mark.parametrize(("loss_fn", "config", "resolved"), CASES)
def test_gradients_match_a_direct_torch_computation(
    backend: TorchBackend, loss_fn: str, config: dict[str, float], resolved: dict[str, float]
) -> None:
    """Loss, logprobs and every LoRA gradient equal autograd through the loss written out in torch."""
    model = new_model(backend)
    reference = copy.deepcopy(model)
    inputs = _rl_inputs(model, seed=len(loss_fn))
    data = [
        datum(
            seq,
            **({k: v for k, v in x.items() if k == "weights"} if loss_fn == "cross_entropy" else x),
        )
        for seq, x in zip(SEQS, inputs, strict=True)
    ]
    out = backend.forward_backward(model, data, loss_fn, config, backward=True)

    total = torch.zeros(())
    for seq, x, result in zip(SEQS, inputs, out.loss_fn_outputs, strict=True):
        lp = direct_logprobs(reference.module, seq[:-1], seq[1:])
        np.testing.assert_allclose(result["logprobs"].to_numpy(), lp.detach().numpy(), atol=1e-5)
        total = total + FORMULAS[loss_fn](lp, {k: from_numpy(v) for k, v in x.items()}, resolved)
    torch.autograd.backward(total)

    assert out.metrics["loss:sum"] == pytest.approx(float(total.detach()), rel=1e-5, abs=1e-5)
    expected = grads(reference)
    assert all(float(g.abs().max()) > 0 for g in expected.values())
    assert_grads_close(grads(model), expected)


def test_ppo_case_clips_some_tokens(backend: TorchBackend) -> None:
    """The PPO test data really exercises clipping: some ratios fall outside [0.8, 1.2], some inside."""
    model = new_model(backend)
    ratios = np.concatenate(
        [
            np.exp(direct_logprobs(model.module, s[:-1], s[1:]).detach().numpy() - x["logprobs"])
            for s, x in zip(SEQS, _rl_inputs(model, seed=3), strict=True)
        ]
    )
    assert (ratios < 0.8).any() and (ratios > 1.2).any() and ((ratios > 0.8) & (ratios < 1.2)).any()


def test_two_dimensional_targets(backend: TorchBackend) -> None:
    """cross_entropy with [T, K] targets and weights gives [T, K] logprobs and the matching gradient."""
    model = new_model(backend)
    reference = copy.deepcopy(model)
    seq = TOKENS
    targets = np.stack([seq[1:], [3] * (len(seq) - 1)], axis=1)
    w = np.tile([1.0, 0.25], (len(seq) - 1, 1)).astype(np.float32)
    d = t.Datum(
        model_input=t.ModelInput.from_ints(seq[:-1]),
        loss_fn_inputs={"target_tokens": targets, "weights": w},
    )
    out = backend.forward_backward(model, [d], "cross_entropy", {}, backward=True)
    assert out.loss_fn_outputs[0]["logprobs"].to_numpy().shape == targets.shape
    logits = reference.module(input_ids=torch.tensor([seq[:-1]])).logits[0]
    lp = torch.log_softmax(logits, -1).gather(-1, from_numpy(targets))
    loss = -(from_numpy(w) * lp).sum()
    torch.autograd.backward(loss)
    assert out.metrics["loss:sum"] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert_grads_close(grads(model), grads(reference))


def test_gradients_accumulate_until_the_optimizer_step(backend: TorchBackend) -> None:
    """Two calls accumulate what one call on both data gives; forward alone leaves gradients alone."""
    split, joint = new_model(backend), new_model(backend)
    d1, d2 = datum(SEQS[0]), datum(SEQS[1])
    backend.forward_backward(split, [d1], "cross_entropy", {}, backward=True)
    backend.forward_backward(split, [d2], "cross_entropy", {}, backward=False)
    backend.forward_backward(split, [d2], "cross_entropy", {}, backward=True)
    backend.forward_backward(joint, [d1, d2], "cross_entropy", {}, backward=True)
    assert_grads_close(grads(split), grads(joint))
    backend.optim_step(split, t.AdamParams(learning_rate=1e-3))
    assert all(p.grad is None for _, p in split.named_parameters())


def test_forward_equals_forward_backward(backend: TorchBackend) -> None:
    """forward returns exactly the logprobs and loss forward_backward does (deterministic passes)."""
    model = new_model(backend)
    data = [datum(s) for s in SEQS]
    fwd = backend.forward_backward(model, data, "cross_entropy", {}, backward=False)
    fb = backend.forward_backward(model, data, "cross_entropy", {}, backward=True)
    assert fwd.metrics == fb.metrics
    for a, b in zip(fwd.loss_fn_outputs, fb.loss_fn_outputs, strict=True):
        assert np.array_equal(a["logprobs"].to_numpy(), b["logprobs"].to_numpy())


@pytest.mark.parametrize(
    ("loss_fn", "inputs", "config", "message"),
    [
        (
            "cross_entropy",
            {"target_tokens": [1, 2, 3, 4, 5, 6, 7, 8, 9999]},
            {},
            "outside the vocabulary",
        ),
        ("cross_entropy", {"mask": [1.0] * 9}, {}, "not inputs of"),
        ("ppo", {}, {}, "needs loss_fn_inputs['logprobs']"),
        (
            "dro",
            {"logprobs": [0.0] * 9, "advantages": [0.0] * 9},
            {"gamma": 1.0},
            "not used by dro",
        ),
        ("nonsense", {}, {}, "unknown loss function"),
    ],
)
def test_bad_inputs_are_user_errors_and_leave_gradients_alone(
    backend: TorchBackend,
    loss_fn: str,
    inputs: dict[str, Any],
    config: dict[str, float],
    message: str,
) -> None:
    """Invalid loss inputs raise InvalidInputError before any gradient is accumulated."""
    model = new_model(backend)
    n = len(TOKENS) - 1
    rl = {"logprobs": [-1.0] * n, "advantages": [1.0] * n}
    good = datum(TOKENS, **({} if loss_fn == "cross_entropy" else rl))
    bad = datum(**inputs)
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        backend.forward_backward(model, [good, bad], loss_fn, config, backward=True)
    assert all(p.grad is None for _, p in model.named_parameters())


def test_non_text_chunks_are_refused(backend: TorchBackend) -> None:
    """Image chunks are a user error (the tiny model reads text only)."""
    model = new_model(backend)
    image = t.ModelInput(chunks=[t.ImageChunk(data=b"\x89PNG", format="png", expected_tokens=4)])
    d = t.Datum(model_input=image, loss_fn_inputs={"target_tokens": [1, 2, 3, 4]})
    with pytest.raises(InvalidInputError, match="text only"):
        backend.forward_backward(model, [d], "cross_entropy", {}, backward=False)


def test_reverse_kl_matches_a_direct_computation(backend: TorchBackend) -> None:
    """Reverse KL loss and gradients equal the KL written out in torch; zero against itself."""
    model = new_model(backend)
    reference_run = copy.deepcopy(model)
    teacher = backend.snapshot_sampler(new_model(backend, seed=9))
    student_tokens, reference_tokens = TOKENS[:-1], [3, 4, *TOKENS[:-1]]
    n, temperature = 5, 0.7
    w = np.linspace(0.5, 1.5, n).astype(np.float32)
    rk = t.ReverseKLDatum(
        student_input=t.ModelInput.from_ints(student_tokens),
        reference_input=t.ModelInput.from_ints(reference_tokens),
        target_tokens=t.TensorData(data=TOKENS[-n:], dtype="int64"),
        weights=t.TensorData(data=w, dtype="float32"),
    )
    out = backend.forward_backward_reverse_kl(model, teacher, [rk], temperature)

    s_logits = reference_run.module(input_ids=torch.tensor([student_tokens])).logits[0, -n:]
    with torch.no_grad():
        r_logits = teacher.module(input_ids=torch.tensor([reference_tokens])).logits[0, -n:]
    log_p = torch.log_softmax(s_logits / temperature, -1)
    log_q = torch.log_softmax(r_logits / temperature, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    loss = (from_numpy(w) * kl).sum()
    torch.autograd.backward(loss)
    assert out.metrics["loss:sum"] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert out.metrics["reverse_kl:mean"] == pytest.approx(
        float(loss.detach()) / float(w.sum()), rel=1e-5
    )
    np.testing.assert_allclose(
        out.outputs[0].loss.data, (from_numpy(w) * kl).detach().numpy(), rtol=1e-5
    )
    assert_grads_close(grads(model), grads(reference_run))

    same = backend.snapshot_sampler(model)
    rk_self = t.ReverseKLDatum(
        student_input=t.ModelInput.from_ints(student_tokens),
        reference_input=t.ModelInput.from_ints(student_tokens),
        target_tokens=t.TensorData(data=TOKENS[-n:], dtype="int64"),
        weights=t.TensorData(data=w, dtype="float32"),
    )
    self_kl = backend.forward_backward_reverse_kl(model, same, [rk_self], 1.0)
    assert abs(self_kl.metrics["loss:sum"]) < 1e-5


def test_read_only_inputs_are_accepted(backend: TorchBackend) -> None:
    """Read-only arrays (as decoded from a binary body) are copied, not refused or warned about."""
    targets = np.array(TOKENS[1:], dtype=np.int64)
    w = np.ones(len(TOKENS) - 1, dtype=np.float32)
    targets.flags.writeable = False
    w.flags.writeable = False
    d = t.Datum(
        model_input=t.ModelInput.from_ints(TOKENS[:-1]),
        loss_fn_inputs={"target_tokens": targets, "weights": w},
    )
    out = backend.forward_backward(new_model(backend), [d], "cross_entropy", {}, backward=True)
    assert out.metrics["loss:sum"] > 0
