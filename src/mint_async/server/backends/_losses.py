"""The loss functions of protocol.md §8.3, on per-token logprobs, in numpy.

Each loss is a sum over tokens of a function of the model's logprob ``lp`` of
the target token; :func:`loss_and_grad` returns that sum and ``d loss / d lp``
per token, which a backend chains into its own parameters.

Inputs (``loss_fn_inputs``):

* ``cross_entropy``: ``target_tokens`` ``[T]`` or ``[T, K]``, ``weights`` of the
  same shape (all ones when absent). ``loss = -sum(w * lp)``.
* ``importance_sampling``, ``ppo``, ``cispo``, ``dro``: ``target_tokens`` ``[T]``,
  ``logprobs`` (the sampler's, ``q``) and ``advantages`` (``A``) ``[T]``, optional
  ``weights``. With ``r = exp(lp - q)``:

  - importance_sampling: ``-sum(w * r * A)``
  - ppo: ``-sum(w * min(r * A, clip(r, lo, hi) * A))``; config
    ``clip_low_threshold`` (0.8), ``clip_high_threshold`` (1.2)
  - cispo: ``-sum(w * stopgrad(clip(r, lo, hi)) * A * lp)``; same config
  - dro: ``-sum(w * (A * lp - beta / 2 * (lp - q)^2))``; config ``beta`` (0.01)

* ``gspo`` [0.38] (GSPO-token, Zheng et al. 2025, as the Tinker docs define it):
  the same inputs plus an optional ``sequence_ratio_mask`` ``[T]``. The datum's
  sequence ratio ``s = exp(mean over M of (lp - q))`` over the positions ``M``
  the mask marks (non-zero); every token carries ``s``'s value with the
  gradient of its own ``lp``: ``-sum(w * min(s A, clip(s, lo, hi) A))``; config
  ``clip_low_threshold``, ``clip_high_threshold``. Open choices (our server's):
  without a mask, ``M`` is the positions with a non-zero advantage and weight
  (the sampled tokens of RL data whose prompt rows carry advantage 0 and a
  sampler logprob of 0, which would otherwise swamp the mean); the default
  thresholds are the GSPO paper's ``1 - 3e-4`` and ``1 + 4e-4``; an empty ``M``
  gives ``s = 1``.
* ``stable_reinforce`` [0.38] (the Tinker docs leave the objective unpublished;
  this is our server's, documented here): REINFORCE with a truncated importance
  weight against the *recorded* sampler logprobs ``q`` and an optional
  quadratic penalty on drifting from them:
  ``-sum(w * (stopgrad(min(r, 1)) * A * lp - kl_coeff / 2 * (lp - q)^2))``;
  config ``kl_coeff`` (0.0). The server fills ``logprobs`` from what it
  recorded when the sequences were sampled (``record_stability_info``) and
  zeroes ``weights`` outside sampled tokens, from the datum's provenance
  spans (see ``mint_async.server._stability``); a backend sees plain inputs.

Unknown input keys and config keys are rejected (the cookbook strips its
client-only ``mask`` key for that reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from mint_async._exceptions import InvalidInputError
from mint_async.types import TensorData

__all__ = ["LOSS_NAMES", "LossInputs", "datum_inputs", "loss_and_grad"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_RL: Final = frozenset({"importance_sampling", "ppo", "cispo", "dro", "stable_reinforce"})
_ALLOWED_INPUTS: Final = {
    "cross_entropy": frozenset({"target_tokens", "weights"}),
    **{name: frozenset({"target_tokens", "logprobs", "advantages", "weights"}) for name in _RL},
    "gspo": frozenset(
        {"target_tokens", "logprobs", "advantages", "weights", "sequence_ratio_mask"}
    ),
}
_CONFIG: Final[dict[str, dict[str, float]]] = {
    "cross_entropy": {},
    "importance_sampling": {},
    "ppo": {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2},
    "cispo": {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2},
    "dro": {"beta": 0.01},
    "gspo": {"clip_low_threshold": 1 - 3e-4, "clip_high_threshold": 1 + 4e-4},
    "stable_reinforce": {"kl_coeff": 0.0},
}
LOSS_NAMES: Final = frozenset(_CONFIG)
"""Every loss function this module computes."""


@dataclass(frozen=True, kw_only=True)
class LossInputs:
    """One datum's loss inputs as float64/int64 arrays."""

    targets: I64
    weights: F64
    sampler_logprobs: F64 | None = None
    advantages: F64 | None = None
    sequence_ratio_mask: F64 | None = None


def _array(td: TensorData, key: str, index: int, shape: tuple[int, ...]) -> F64:
    # The declared shape first: a sparse tensor is densified only once it fits.
    if td.dims != shape:
        msg = f"datum {index}: loss_fn_inputs[{key!r}] has shape {list(td.dims)}, expected {list(shape)}"
        raise InvalidInputError(msg)
    return np.asarray(td.to_numpy(), dtype=np.float64)


def datum_inputs(
    loss_fn: str, inputs: Mapping[str, TensorData], length: int, index: int
) -> LossInputs:
    """Check one datum's inputs for ``loss_fn`` against its model-input ``length``."""
    allowed = _ALLOWED_INPUTS.get(loss_fn)
    if allowed is None:
        msg = f"unknown loss function {loss_fn!r}"
        raise InvalidInputError(msg)
    unknown = sorted(set(inputs) - allowed)
    if unknown:
        msg = f"datum {index}: loss_fn_inputs {unknown} are not inputs of {loss_fn} (allowed: {sorted(allowed)})"
        raise InvalidInputError(msg)
    target_td = inputs.get("target_tokens")
    if target_td is None:
        msg = f"datum {index}: {loss_fn} needs loss_fn_inputs['target_tokens']"
        raise InvalidInputError(msg)
    dims = target_td.dims
    if len(dims) not in (1, 2) or dims[0] != length:
        msg = f"datum {index}: target_tokens must be [T] or [T, K] with T = {length} input tokens, got {list(dims)}"
        raise InvalidInputError(msg)
    targets = np.asarray(target_td.to_numpy(), dtype=np.int64)
    weights_td = inputs.get("weights")
    weights = (
        np.ones(targets.shape)
        if weights_td is None
        else _array(weights_td, "weights", index, targets.shape)
    )
    if loss_fn == "cross_entropy":
        return LossInputs(targets=targets, weights=weights)
    if targets.ndim != 1:
        msg = f"datum {index}: {loss_fn} needs 1-D target_tokens"
        raise InvalidInputError(msg)
    arrays: dict[str, F64] = {}
    for key in ("logprobs", "advantages"):
        td = inputs.get(key)
        if td is None:
            msg = f"datum {index}: {loss_fn} needs loss_fn_inputs[{key!r}]"
            raise InvalidInputError(msg)
        arrays[key] = _array(td, key, index, targets.shape)
    mask_td = inputs.get("sequence_ratio_mask")
    return LossInputs(
        targets=targets,
        weights=weights,
        sampler_logprobs=arrays["logprobs"],
        advantages=arrays["advantages"],
        sequence_ratio_mask=None
        if mask_td is None
        else _array(mask_td, "sequence_ratio_mask", index, targets.shape),
    )


def _config(loss_fn: str, given: Mapping[str, float]) -> dict[str, float]:
    defaults = _CONFIG[loss_fn]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        msg = f"loss_fn_config keys {unknown} are not used by {loss_fn} (known: {sorted(defaults)})"
        raise InvalidInputError(msg)
    merged = {**defaults, **{k: float(v) for k, v in given.items()}}
    if "clip_low_threshold" in merged and not (
        0 <= merged["clip_low_threshold"] <= merged["clip_high_threshold"]
    ):
        msg = "need 0 <= clip_low_threshold <= clip_high_threshold"
        raise InvalidInputError(msg)
    if merged.get("kl_coeff", 0.0) < 0:
        msg = f"kl_coeff must be >= 0, got {merged['kl_coeff']}"
        raise InvalidInputError(msg)
    return merged


def loss_and_grad(
    loss_fn: str, lp: F64, inputs: LossInputs, config: Mapping[str, float]
) -> tuple[float, F64]:
    """The summed loss and ``d loss / d lp`` (same shape as ``lp``)."""
    cfg = _config(loss_fn, config)
    w = inputs.weights
    if loss_fn == "cross_entropy":
        return float(-(w * lp).sum()), -w
    q, adv = inputs.sampler_logprobs, inputs.advantages
    assert q is not None and adv is not None
    ratio = np.exp(lp - q)
    match loss_fn:
        case "importance_sampling":
            objective = ratio * adv
            grad = ratio * adv  # d(r A)/d lp = r A
        case "ppo":
            lo, hi = cfg["clip_low_threshold"], cfg["clip_high_threshold"]
            unclipped = ratio * adv
            clipped = np.clip(ratio, lo, hi) * adv
            objective = np.minimum(unclipped, clipped)
            grad = np.where(unclipped <= clipped, ratio * adv, 0.0)
        case "cispo":
            lo, hi = cfg["clip_low_threshold"], cfg["clip_high_threshold"]
            coeff = np.clip(ratio, lo, hi) * adv
            objective = coeff * lp
            grad = coeff
        case "dro":
            beta = cfg["beta"]
            objective = adv * lp - 0.5 * beta * (lp - q) ** 2
            grad = adv - beta * (lp - q)
        case "gspo":
            lo, hi = cfg["clip_low_threshold"], cfg["clip_high_threshold"]
            mask = inputs.sequence_ratio_mask
            in_ratio = (adv != 0) & (w != 0) if mask is None else mask != 0
            log_ratio = float((lp - q)[in_ratio].mean()) if in_ratio.any() else 0.0
            # Each token's ratio has the sequence ratio's value and d/d lp_t = s.
            seq_ratio = np.full_like(lp, np.exp(min(log_ratio, 700.0)))
            unclipped = seq_ratio * adv
            clipped = np.clip(seq_ratio, lo, hi) * adv
            objective = np.minimum(unclipped, clipped)
            grad = np.where(unclipped <= clipped, seq_ratio * adv, 0.0)
        case "stable_reinforce":
            kl = cfg["kl_coeff"]
            weight = np.minimum(ratio, 1.0)  # truncated importance weight, no gradient
            objective = weight * adv * lp - 0.5 * kl * (lp - q) ** 2
            grad = weight * adv - kl * (lp - q)
        case _:
            msg = f"unknown loss function {loss_fn!r}"
            raise InvalidInputError(msg)
    return float(-(w * objective).sum()), -(w * grad)
