"""mint_async.rl data: group-relative advantages and RL datums (shifted, masked, exact logprobs)."""

from __future__ import annotations

import numpy as np
import pytest

from mint_async import rl
from mint_async import types as t


def _traj(*turns: tuple[list[int], list[int], list[float], float]) -> rl.Trajectory:
    return rl.Trajectory(
        [
            rl.Transition(ob, rl.Action(tokens=ac, logprobs=lp, stop_reason="stop"), reward)
            for ob, ac, lp, reward in turns
        ]
    )


def _col(datum: t.Datum, key: str) -> list[float]:
    value = datum.loss_fn_inputs[key]
    data = value.data if isinstance(value, t.TensorData) else value
    return [float(x) for x in np.asarray(data).ravel()]


def test_mean_advantages_are_centred() -> None:
    """ "mean" subtracts the group mean."""
    assert rl.group_advantages([1.0, 0.0, 0.0, 1.0]) == [0.5, -0.5, -0.5, 0.5]


def test_mean_std_advantages_are_scaled() -> None:
    """ "mean_std" divides by the group's standard deviation."""
    adv = rl.group_advantages([1.0, 0.0, 0.0, 1.0], "mean_std")
    assert adv is not None
    assert adv == pytest.approx([1.0, -1.0, -1.0, 1.0], rel=1e-4)


def test_constant_group_has_no_advantages() -> None:
    """A group whose rewards are all equal carries no signal: None."""
    assert rl.group_advantages([0.3, 0.3, 0.3]) is None
    group = rl.TrajectoryGroup(
        index=0, version=0, trajectories=[_traj(([1, 2], [3], [-0.1], 0.3))] * 2
    )
    assert rl.group_datums(group) is None


def test_single_turn_datum_is_shifted_and_masked() -> None:
    """Targets are tokens[1:]; only action positions carry sampler logprobs and the advantage."""
    (datum,) = rl.trajectory_datums(_traj(([1, 2, 3], [7, 8], [-0.5, -0.25], 1.0)), 2.0)
    assert datum.model_input.to_ints() == [1, 2, 3, 7]
    assert _col(datum, "target_tokens") == [2, 3, 7, 8]
    assert _col(datum, "logprobs") == [0.0, 0.0, -0.5, -0.25]
    assert _col(datum, "advantages") == [0.0, 0.0, 2.0, 2.0]


def test_multi_turn_prefix_turns_merge_into_one_datum() -> None:
    """A turn whose observation extends the previous one joins its datum; the new tokens are masked."""
    traj = _traj(([1, 2], [5], [-0.1], 0.0), ([1, 2, 5, 9], [6], [-0.2], 1.0))
    (datum,) = rl.trajectory_datums(traj, 1.0)
    assert _col(datum, "target_tokens") == [2, 5, 9, 6]
    assert _col(datum, "advantages") == [0.0, 1.0, 0.0, 1.0]
    assert _col(datum, "logprobs") == pytest.approx([0.0, -0.1, 0.0, -0.2])


def test_multi_turn_without_prefix_gives_one_datum_per_turn() -> None:
    """A turn that does not extend the previous sequence starts a new datum."""
    traj = _traj(([1, 2], [5], [-0.1], 0.0), ([4, 4], [6], [-0.2], 1.0))
    assert len(rl.trajectory_datums(traj, 1.0)) == 2


def test_group_weight_scales_advantages() -> None:
    """Down-weighted (stale) groups train with scaled advantages."""
    group = rl.TrajectoryGroup(
        index=3,
        version=0,
        trajectories=[_traj(([1, 2], [3], [-0.1], 1.0)), _traj(([1, 2], [4], [-0.2], 0.0))],
    )
    full = rl.group_datums(group)
    half = rl.group_datums(group, weight=0.5)
    assert full is not None and half is not None
    assert _col(half[0], "advantages")[-1] == pytest.approx(0.5 * _col(full[0], "advantages")[-1])
