"""RLConfig: every knob of the engine, validated before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from .. import types as t
from .._exceptions import InvalidInputError
from ._data import AdvantageMode

__all__ = ["RLConfig"]

_RL_LOSSES: Final = ("importance_sampling", "ppo", "cispo", "dro", "gspo", "stable_reinforce")
"""The losses the engine builds datums for (``stable_reinforce`` with provenance spans)."""


def _default_params() -> t.SamplingParams:
    return t.SamplingParams(max_tokens=16, temperature=1.0)


def _default_adam() -> t.AdamParams:
    return t.AdamParams(learning_rate=1e-4)


@dataclass(frozen=True, kw_only=True)
class RLConfig:
    """How the engine samples, filters, trains and checkpoints.

    Example::

        config = RLConfig(steps=50, groups_per_step=8, max_steps_off_policy=2,
                          loss_fn="ppo", adam=types.AdamParams(learning_rate=1e-4))
    """

    steps: int
    """Training steps to run (a resumed run continues up to this total)."""
    groups_per_step: int
    """Groups in each step's batch (constant-reward groups among them train nothing)."""
    max_steps_off_policy: int = 1
    """A step ``s`` trains on samples of policy versions ``>= s - max_steps_off_policy``;
    0 is exactly synchronous on-policy training."""
    stale: Literal["drop", "downweight"] = "drop"
    """What happens to an older group: dropped, or trained with its advantages scaled
    by ``stale_weight ** (staleness - max_steps_off_policy)``. Both are counted."""
    stale_weight: float = 0.5
    oversample: int = 0
    """Groups kept in flight beyond what the coming steps can use: with free sampler
    capacity they spare the trainer the wait for the slowest group; the extra results
    go stale and are dropped (or down-weighted). 0 with ``max_steps_off_policy=0`` is
    exactly the synchronous loop."""
    sync_weights_every: int = 1
    """Export the trained weights to the samplers every N steps (and before every
    checkpoint and after the last step). 1 exports after every step; N > 1 takes N - 1
    of every N exports off the trainer's critical path, at the price of samples up to
    N - 1 versions older. Needs ``N <= max(1, max_steps_off_policy)``: with fewer steps
    of staleness allowed, a step would wait for data of a version that is never exported."""
    max_rollouts_in_flight: int | None = None
    """Hard cap on group rollouts in flight (``None``: only the staleness budget)."""
    sampling_params: t.SamplingParams = field(default_factory=_default_params)
    loss_fn: t.LossFnType = "importance_sampling"
    """``stable_reinforce`` makes rollouts sample with ``record_stability_info=True`` and
    every datum carry provenance spans naming those samples (the server checks them)."""
    loss_fn_config: dict[str, float] | None = None
    advantage: AdvantageMode = "mean"
    adam: t.AdamParams = field(default_factory=_default_adam)
    checkpoint_every: int = 0
    """Save a resumable checkpoint every N steps (0: never); needs ``run_dir``."""
    run_dir: Path | None = None
    """Where ``checkpoint.json`` and ``metrics.jsonl`` go (``None``: nowhere)."""
    name: str = "rl"
    """Prefix of the server-side checkpoint names."""
    max_sample_in_flight: int = 1024
    """``max_in_flight`` of each sampler version's pipeline."""
    drain_timeout: float = 60.0
    """On cancellation, seconds to wait for submitted training ops (and their checkpoint)."""

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 0, f"steps must be >= 0, got {self.steps}"),
            (
                self.groups_per_step >= 1,
                f"groups_per_step must be >= 1, got {self.groups_per_step}",
            ),
            (
                self.max_steps_off_policy >= 0,
                f"max_steps_off_policy must be >= 0, got {self.max_steps_off_policy}",
            ),
            (
                self.stale in ("drop", "downweight"),
                f"stale must be 'drop' or 'downweight', got {self.stale!r}",
            ),
            (
                0.0 <= self.stale_weight <= 1.0,
                f"stale_weight must be in [0, 1], got {self.stale_weight}",
            ),
            (
                1 <= self.sync_weights_every <= max(1, self.max_steps_off_policy),
                (
                    "sync_weights_every must be between 1 and max(1, max_steps_off_policy)"
                    f" = {max(1, self.max_steps_off_policy)}, got {self.sync_weights_every}"
                ),
            ),
            (self.oversample >= 0, f"oversample must be >= 0, got {self.oversample}"),
            (
                self.max_rollouts_in_flight is None or self.max_rollouts_in_flight >= 1,
                "max_rollouts_in_flight must be >= 1 or None",
            ),
            (
                self.loss_fn in _RL_LOSSES,
                f"loss_fn must be an RL loss ({', '.join(_RL_LOSSES)}), got {self.loss_fn!r}",
            ),
            (
                self.advantage in ("mean", "mean_std"),
                f"advantage must be 'mean' or 'mean_std', got {self.advantage!r}",
            ),
            (
                self.checkpoint_every >= 0,
                f"checkpoint_every must be >= 0, got {self.checkpoint_every}",
            ),
            (
                self.checkpoint_every == 0 or self.run_dir is not None,
                "checkpoint_every needs run_dir (where checkpoint.json is written)",
            ),
            (self.max_sample_in_flight >= 1, "max_sample_in_flight must be >= 1"),
            (
                bool(self.name) and "/" not in self.name,
                f"name must be non-empty without '/', got {self.name!r}",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise InvalidInputError(msg)
