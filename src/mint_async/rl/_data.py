"""From trajectory groups to training data: group-relative advantages, RL datums.

Every datum carries the *sampler's* logprobs of its action tokens under
``logprobs``, so ``importance_sampling``, ``ppo``, ``cispo`` and ``dro`` correct
for exactly the policy that produced the sample, however stale it is.

Advantages are ``reward - mean(group)`` (``"mean"``) or that divided by the
group's standard deviation (``"mean_std"``). A group whose rewards are all
equal has no signal and is left out (the caller counts it).

Multi-turn trajectories become one datum when each observation extends the
previous observation + action (the usual chat case), else one datum per turn.
Observation tokens get advantage 0, so only the policy's own tokens are trained.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .. import types as t
from ._rollout import Trajectory, TrajectoryGroup

__all__ = ["AdvantageMode", "group_advantages", "trajectory_datums", "group_datums"]

AdvantageMode = Literal["mean", "mean_std"]


def group_advantages(rewards: list[float], mode: AdvantageMode = "mean") -> list[float] | None:
    """Group-relative advantages, or ``None`` if the rewards are all equal (no signal)."""
    r = np.asarray(rewards, dtype=np.float64)
    centred = r - r.mean()
    if r.size == 0 or not np.any(np.abs(centred) > 1e-12):
        return None
    if mode == "mean_std":
        centred = centred / (r.std() + 1e-6)
    return [float(a) for a in centred]


def _segments(trajectory: Trajectory) -> list[tuple[list[int], list[bool], list[float]]]:
    """(tokens, is_action, sampler logprob) per datum; consecutive turns merged when prefixed."""
    out: list[tuple[list[int], list[bool], list[float]]] = []
    for tr in trajectory.transitions:
        if out and tr.observation[: len(out[-1][0])] == out[-1][0]:
            tokens, mask, logprobs = out[-1]
            extra = tr.observation[len(tokens) :]
        else:
            tokens, mask, logprobs = list[int](), list[bool](), list[float]()
            out.append((tokens, mask, logprobs))
            extra = tr.observation
        tokens += extra
        mask += [False] * len(extra)
        logprobs += [0.0] * len(extra)
        tokens += tr.action.tokens
        mask += [True] * len(tr.action.tokens)
        logprobs += tr.action.logprobs
    return out


def trajectory_datums(trajectory: Trajectory, advantage: float) -> list[t.Datum]:
    """RL datums (``target_tokens``, ``logprobs``, ``advantages``) for one trajectory."""
    datums: list[t.Datum] = []
    for tokens, mask, logprobs in _segments(trajectory):
        if len(tokens) < 2 or not any(mask[1:]):
            continue
        # Position i predicts token i + 1: shift the per-token columns by one.
        action = np.asarray(mask[1:], dtype=bool)
        datums.append(
            t.Datum(
                model_input=t.ModelInput.from_ints(tokens[:-1]),
                loss_fn_inputs={
                    "target_tokens": np.asarray(tokens[1:], dtype=np.int64),
                    "logprobs": np.where(
                        action, np.asarray(logprobs[1:], dtype=np.float32), 0.0
                    ).astype(np.float32),
                    "advantages": np.where(action, advantage, 0.0).astype(np.float32),
                },
            )
        )
    return datums


def group_datums(
    group: TrajectoryGroup, mode: AdvantageMode = "mean", weight: float = 1.0
) -> list[t.Datum] | None:
    """All datums of a group (advantages scaled by ``weight``), ``None`` for a constant group."""
    advantages = group_advantages(group.rewards, mode)
    if advantages is None:
        return None
    datums: list[t.Datum] = []
    for trajectory, adv in zip(group.trajectories, advantages, strict=True):
        datums += trajectory_datums(trajectory, adv * weight)
    return datums
