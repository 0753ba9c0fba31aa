"""``gspo`` and ``stable_reinforce`` (tinker 0.38): values and gradients against hand computations.

(Also the blockwise prompt extras against a row-by-row computation.)

The per-token rule (:func:`loss_and_grad`) is checked against the losses written
out in torch (Tinker's published GSPO-token formula; our documented
StableReinforce objective) and differentiated by autograd; both backends are
then checked end to end: the synthetic one against a numpy evaluation of the
formulas on its forward logprobs, the torch one against autograd through its
own model (every LoRA gradient).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from mint_async import InvalidInputError
from mint_async import types as t
from mint_async.server.backends import BackendOptions, SampleSpec, create_backend
from mint_async.server.backends._losses import LossInputs, datum_inputs, loss_and_grad
from mint_async.server.backends._sample_extras import PromptRows, prompt_extras

from ..backend_support import next_token_datum

torch = pytest.importorskip("torch")

GSPO_WIDE = {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}


def _gspo_torch(lp: Any, x: dict[str, Any], lo: float, hi: float) -> Any:
    """Tinker's GSPO-token, as its docs write it (mask: the given one, else A != 0 and w != 0)."""
    mask = x.get("sequence_ratio_mask")
    in_ratio = (x["advantages"] != 0) & (x["weights"] != 0) if mask is None else mask != 0
    log_ratio = (
        (lp.detach() - x["logprobs"])[in_ratio].mean() if bool(in_ratio.any()) else torch.zeros(())
    )
    ratio = torch.exp(log_ratio + lp - lp.detach())
    clipped = torch.clamp(ratio, lo, hi)
    return -(x["weights"] * torch.minimum(ratio * x["advantages"], clipped * x["advantages"])).sum()


def _stable_torch(lp: Any, x: dict[str, Any], kl: float) -> Any:
    """Our StableReinforce: truncated IS weight (no gradient) on REINFORCE, plus kl_coeff drift."""
    weight = torch.clamp(torch.exp(lp - x["logprobs"]), max=1.0).detach()
    drift = 0.5 * kl * (lp - x["logprobs"]) ** 2
    return -(x["weights"] * (weight * x["advantages"] * lp - drift)).sum()


def _case(seed: int, n: int = 7, *, mask: bool = False) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    lp = -rng.uniform(0.1, 4.0, n)
    case = {
        "lp": lp,
        "logprobs": lp + rng.uniform(-0.3, 0.3, n),
        "advantages": np.where(rng.random(n) < 0.3, 0.0, rng.normal(0, 1, n)),
        "weights": rng.uniform(0.0, 2.0, n),
    }
    if mask:
        case["sequence_ratio_mask"] = (rng.random(n) < 0.6).astype(np.float64)
    return case


def _inputs(case: dict[str, np.ndarray[Any, Any]]) -> LossInputs:
    return LossInputs(
        targets=np.arange(case["lp"].size, dtype=np.int64),
        weights=case["weights"],
        sampler_logprobs=case["logprobs"],
        advantages=case["advantages"],
        sequence_ratio_mask=case.get("sequence_ratio_mask"),
    )


def _reference(
    loss_fn: str, case: dict[str, np.ndarray[Any, Any]], config: dict[str, float]
) -> tuple[float, np.ndarray[Any, Any]]:
    lp = torch.tensor(case["lp"], dtype=torch.float64, requires_grad=True)
    x = {k: torch.tensor(v, dtype=torch.float64) for k, v in case.items() if k != "lp"}
    if loss_fn == "gspo":
        loss = _gspo_torch(
            lp,
            x,
            config.get("clip_low_threshold", 1 - 3e-4),
            config.get("clip_high_threshold", 1 + 4e-4),
        )
    else:
        loss = _stable_torch(lp, x, config.get("kl_coeff", 0.0))
    loss.backward()
    assert lp.grad is not None
    return float(loss.detach()), lp.grad.numpy()


@pytest.mark.parametrize(
    ("loss_fn", "config", "mask"),
    [
        ("gspo", {}, False),
        ("gspo", GSPO_WIDE, False),
        ("gspo", GSPO_WIDE, True),
        ("gspo", {"clip_low_threshold": 0.99, "clip_high_threshold": 1.01}, True),
        ("stable_reinforce", {}, False),
        ("stable_reinforce", {"kl_coeff": 0.7}, False),
    ],
)
@pytest.mark.parametrize("seed", range(4))
def test_loss_and_gradient_match_torch_autograd(
    loss_fn: str, config: dict[str, float], mask: bool, seed: int
) -> None:
    """Loss value and d loss / d lp equal autograd through the formula, token by token."""
    case = _case(seed, mask=mask)
    loss, grad = loss_and_grad(loss_fn, case["lp"], _inputs(case), config)
    expected_loss, expected_grad = _reference(loss_fn, case, config)
    assert loss == pytest.approx(expected_loss, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_gspo_by_hand() -> None:
    """Three tokens, one sequence ratio: every number worked out on paper."""
    lp = np.log(np.array([0.5, 0.25, 0.2]))
    q = np.log(np.array([0.25, 0.25, 0.1]))  # log-ratios: ln 2, 0, ln 2
    adv = np.array([1.0, 1.0, -2.0])
    inputs = LossInputs(
        targets=np.zeros(3, dtype=np.int64),
        weights=np.ones(3),
        sampler_logprobs=q,
        advantages=adv,
        sequence_ratio_mask=np.array([1.0, 1.0, 0.0]),  # s = exp((ln 2 + 0) / 2) = sqrt 2
    )
    loss, grad = loss_and_grad(
        "gspo", lp, inputs, {"clip_low_threshold": 0.5, "clip_high_threshold": 1.2}
    )
    s = math.sqrt(2)
    # A > 0: min(s A, 1.2 A) = 1.2 (clipped, no gradient); A = -2: min(-2 s, -2.4) = -2 s.
    assert loss == pytest.approx(-(1.2 + 1.2 - 2 * s))
    np.testing.assert_allclose(grad, [0.0, 0.0, 2 * s])


def test_stable_reinforce_by_hand() -> None:
    """The importance weight is capped at 1: stale tokens count fully, fresh ones are damped."""
    lp = np.log(np.array([0.5, 0.1]))
    q = np.log(np.array([0.25, 0.2]))  # ratios 2 (capped to 1) and 0.5
    inputs = LossInputs(
        targets=np.zeros(2, dtype=np.int64),
        weights=np.array([1.0, 2.0]),
        sampler_logprobs=q,
        advantages=np.array([1.0, 1.0]),
    )
    loss, grad = loss_and_grad("stable_reinforce", lp, inputs, {})
    assert loss == pytest.approx(-(1.0 * np.log(0.5) + 2.0 * 0.5 * np.log(0.1)))
    np.testing.assert_allclose(grad, [-1.0, -1.0])


def test_new_losses_check_their_inputs_and_config() -> None:
    """Unknown keys, a mask of the wrong shape, a negative kl_coeff: user errors."""
    datum = next_token_datum([1, 2, 3, 4], logprobs=[-1.0] * 3, advantages=[1.0] * 3)
    with pytest.raises(InvalidInputError, match="not inputs of stable_reinforce"):
        datum_inputs(
            "stable_reinforce",
            {**datum.loss_fn_inputs, "sequence_ratio_mask": datum.loss_fn_inputs["weights"]},
            3,
            0,
        )
    bad_mask = t.TensorData(data=[1.0, 1.0], dtype="float32", shape=[2])
    with pytest.raises(InvalidInputError, match="sequence_ratio_mask"):
        datum_inputs("gspo", {**datum.loss_fn_inputs, "sequence_ratio_mask": bad_mask}, 3, 0)
    inputs = datum_inputs("stable_reinforce", datum.loss_fn_inputs, 3, 0)
    with pytest.raises(InvalidInputError, match="kl_coeff"):
        loss_and_grad("stable_reinforce", np.zeros(3), inputs, {"kl_coeff": -1.0})
    with pytest.raises(InvalidInputError, match="not used by gspo"):
        loss_and_grad("gspo", np.zeros(3), inputs, {"beta": 1.0})


SEQS = [[11, 42, 7, 300, 5, 19, 2], [5, 9, 200, 31, 2], [40, 41, 42, 43, 44, 45]]


def _rl_data(
    logprobs: list[np.ndarray[Any, Any]], seed: int, *, mask: bool
) -> tuple[list[t.Datum], list[dict[str, np.ndarray[Any, Any]]]]:
    rng = np.random.default_rng(seed)
    data: list[t.Datum] = []
    cases: list[dict[str, np.ndarray[Any, Any]]] = []
    for seq, lp in zip(SEQS, logprobs, strict=True):
        n = len(seq) - 1
        case = {
            "weights": rng.uniform(0.5, 1.5, n).astype(np.float32),
            "advantages": rng.normal(0, 1, n).astype(np.float32),
            "logprobs": (lp + rng.uniform(-0.1, 0.1, n)).astype(np.float32),
        }
        if mask:
            case["sequence_ratio_mask"] = (rng.random(n) < 0.7).astype(np.float32)
        cases.append(case)
        data.append(next_token_datum(seq, **case))
    return data, cases


@pytest.mark.parametrize(
    ("loss_fn", "config", "mask"),
    [
        ("gspo", GSPO_WIDE, True),
        ("gspo", {}, False),
        ("stable_reinforce", {"kl_coeff": 0.3}, False),
    ],
)
def test_synthetic_backend_losses_match_the_formula(
    loss_fn: str, config: dict[str, float], mask: bool
) -> None:
    """The synthetic backend's loss:sum equals the torch formula on its forward logprobs."""
    backend = create_backend("synthetic", BackendOptions(seed=0))
    model = backend.create_model("s:train:0", backend.models()[0], t.LoraConfig(rank=4, seed=1))
    plain = [next_token_datum(seq) for seq in SEQS]
    fwd = backend.forward_backward(model, plain, "cross_entropy", {}, backward=False)
    lps = [o["logprobs"].to_numpy().astype(np.float64) for o in fwd.loss_fn_outputs]
    data, cases = _rl_data(lps, seed=3, mask=mask)
    out = backend.forward_backward(model, data, loss_fn, config, backward=True)
    expected = sum(
        _reference(loss_fn, {"lp": lp, **{k: v.astype(np.float64) for k, v in c.items()}}, config)[
            0
        ]
        for lp, c in zip(lps, cases, strict=True)
    )
    assert out.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(np.abs(model.grad_logits).max()) > 0


@pytest.mark.parametrize(
    ("loss_fn", "config", "mask"),
    [("gspo", GSPO_WIDE, True), ("stable_reinforce", {"kl_coeff": 0.3}, False)],
)
def test_torch_backend_gradients_match_autograd(
    loss_fn: str, config: dict[str, float], mask: bool
) -> None:
    """Every LoRA gradient of the torch backend equals autograd through the written-out loss."""
    backend: Any = create_backend("torch", BackendOptions(seed=0))
    model = backend.create_model("s:train:0", backend.models()[0], t.LoraConfig(rank=4, seed=1))
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for layer in model.layers.values():  # B != 0, so gradients reach A too
            layer.lora_B.copy_(0.05 * torch.randn(layer.lora_B.shape, generator=generator))
    reference = copy.deepcopy(model)

    def direct(module: Any, seq: list[int]) -> Any:
        logits = module(input_ids=torch.tensor([seq[:-1]])).logits[0].float()
        return torch.log_softmax(logits, -1).gather(-1, torch.tensor(seq[1:])[:, None])[:, 0]

    with torch.no_grad():
        lps = [direct(reference.module, seq).double().numpy() for seq in SEQS]
    data, cases = _rl_data(lps, seed=4, mask=mask)
    out = backend.forward_backward(model, data, loss_fn, config, backward=True)
    total = torch.zeros(())
    for seq, case in zip(SEQS, cases, strict=True):
        lp = direct(reference.module, seq)
        x = {k: torch.tensor(v) for k, v in case.items()}
        if loss_fn == "gspo":
            total = total + _gspo_torch(
                lp, x, config["clip_low_threshold"], config["clip_high_threshold"]
            )
        else:
            total = total + _stable_torch(lp, x, config["kl_coeff"])
    total.backward()
    assert out.metrics["loss:sum"] == pytest.approx(float(total.detach()), rel=1e-4, abs=1e-5)
    for (name, got), (_, want) in zip(
        model.named_parameters(), reference.named_parameters(), strict=True
    ):
        assert want.grad is not None and got.grad is not None, name
        scale = float(want.grad.abs().max())
        assert scale > 0, name
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-5 * max(scale, 1e-3))


def test_prompt_extras_visit_long_prompts_in_blocks() -> None:
    """Past one block of rows, every field equals the row-by-row answer."""
    rng = np.random.default_rng(0)
    table = np.log(rng.dirichlet(np.ones(50), size=50))
    prompt = rng.integers(0, 50, 5000).astype(np.int64)
    ids = rng.integers(-1, 50, (prompt.size - 1, 2)).astype(np.int64)
    spec = SampleSpec(
        prompt=prompt,
        num_samples=1,
        max_tokens=1,
        temperature=0.7,
        top_k=-1,
        top_p=1.0,
        stop_token_ids=None,
        stop_strings=(),
        seed=3,
        prompt_logprobs=True,
        topk_prompt_logprobs=2,
        prompt_logprobs_last_n=4500,
        target_prompt_logprobs=t.TensorData(
            data=ids.reshape(-1), dtype="int64", shape=list(ids.shape)
        ),
        prompt_alt_tokens_k=3,
    )
    out = prompt_extras(PromptRows(table, prompt[:-1]), prompt, spec)
    rows = table[prompt[:-1]]
    start = prompt.size - 1 - 4500
    assert out.prompt_logprobs is not None and out.topk_prompt_logprobs is not None
    assert out.prompt_logprobs[: start + 1] == [None] * (start + 1)
    np.testing.assert_allclose(
        np.array(out.prompt_logprobs[start + 1 :], dtype=np.float64),
        rows[np.arange(start, rows.shape[0]), prompt[start + 1 :]],
    )
    best = np.argmax(rows, axis=1)
    assert [row[0][0] for row in out.topk_prompt_logprobs[start + 1 :] if row] == best[
        start:
    ].tolist()
    assert out.target_prompt_logprobs is not None
    expected = np.where(ids >= 0, np.take_along_axis(rows, np.maximum(ids, 0), axis=1), 0.0)
    np.testing.assert_allclose(out.target_prompt_logprobs.to_numpy(), expected, rtol=1e-6)
    assert out.prompt_alt_tokens is not None
    alt = out.prompt_alt_tokens.tokens.to_numpy()
    np.testing.assert_allclose(
        out.prompt_alt_tokens.logprobs.to_numpy(), np.take_along_axis(rows, alt, axis=1), rtol=1e-6
    )
