"""The RL engine: synchronous at K=0, bounded staleness above, drop/down-weight, losses, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mint_async import InvalidInputError, rl
from mint_async import types as t

from .conftest import digits_run, rl_config

pytestmark = pytest.mark.anyio


def _config(**kwargs: Any) -> rl.RLConfig:
    return rl_config(**{"steps": 4, **kwargs})


def _all_indices(history: list[rl.StepMetrics]) -> list[int]:
    return [i for h in history for i in h.data_indices]


async def test_k0_is_synchronous_on_policy() -> None:
    """K=0: every batch is sampled by the current policy, exactly one batch per step, nothing dropped."""
    async with digits_run() as run:
        history = await rl.RLLoop(run.tc, run.dataset, _config(max_steps_off_policy=0)).run()
        sample_requests = sum(1 for rid in run.server.execution_counts() if ":sample:" in rid)
    assert [h.step for h in history] == [0, 1, 2, 3]
    assert all(h.staleness == {"0": 4} and h.dropped == 0 for h in history)
    # Step s trains data positions 4s..4s+3: no rollout beyond the batch was ever started.
    assert [h.data_indices for h in history] == [list(range(4 * s, 4 * s + 4)) for s in range(4)]
    assert sample_requests == 16


async def test_k2_overlaps_with_bounded_staleness() -> None:
    """K=2: batches use older policies (never older than 2 steps) and no data is trained twice."""
    async with digits_run() as run:
        history = await rl.RLLoop(
            run.tc, run.dataset, _config(steps=6, max_steps_off_policy=2, oversample=2)
        ).run()
    stale = [int(s) for h in history for s in h.staleness for _ in range(h.staleness[s])]
    assert max(stale) <= 2 and max(stale) > 0
    indices = _all_indices(history)
    assert len(indices) == len(set(indices)) == 24


@pytest.mark.parametrize("stale", ["drop", "downweight"])
async def test_stale_groups_are_dropped_or_downweighted(stale: str) -> None:
    """Oversampled groups that fall behind are dropped (counted) or trained at reduced weight (counted)."""
    async with digits_run() as run:
        config = _config(steps=3, max_steps_off_policy=0, oversample=4, stale=stale)
        history = await rl.RLLoop(run.tc, run.dataset, config).run()
    if stale == "drop":
        assert sum(h.dropped for h in history) > 0
        assert all(set(h.staleness) == {"0"} for h in history)
        assert all(h.downweighted == 0 for h in history)
    else:
        assert sum(h.downweighted for h in history) > 0
        assert all(h.dropped == 0 for h in history)


@pytest.mark.parametrize("loss_fn", ["importance_sampling", "ppo", "cispo", "dro", "gspo"])
async def test_rl_losses_train(loss_fn: t.LossFnType) -> None:
    """Each RL loss trains end to end on the sampler's logprobs."""
    async with digits_run("default=0") as run:
        # 4 steps of 4 groups: a group trains nothing when its 4 rewards are equal (all zero,
        # p ~ 0.47 for the untrained model), so 2 steps left every group constant in ~1 run of 400.
        history = await rl.RLLoop(run.tc, run.dataset, _config(steps=4, loss_fn=loss_fn)).run()
    assert any(h.loss is not None and h.datums > 0 for h in history)


async def test_metrics_jsonl_has_the_step_records(tmp_path: Path) -> None:
    """run_dir gets one JSON line per step with rewards, staleness, drops, busy fractions, queues."""
    async with digits_run() as run:
        await rl.RLLoop(run.tc, run.dataset, _config(steps=3, run_dir=tmp_path)).run()
    records = rl.MetricsLog.read(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2]
    for key in (
        "reward_mean",
        "reward_std",
        "staleness",
        "dropped",
        "tokens_per_second",
        "trainer_busy_fraction",
        "sampler_busy_fraction",
        "rollouts_in_flight",
        "pool",
    ):
        assert key in records[-1]
    assert 0.0 < records[-1]["trainer_busy_fraction"] <= 1.0
    assert records[-1]["tokens_per_second"] > 0


async def test_checkpoint_and_resume_continue_exactly(tmp_path: Path) -> None:
    """A run stopped after a checkpoint resumes at its step, trains pending data first, repeats nothing."""
    async with digits_run() as run:
        config = _config(
            steps=4, max_steps_off_policy=1, oversample=2, checkpoint_every=2, run_dir=tmp_path
        )
        first = await rl.train(run.svc, run.dataset, config)
        checkpoint = rl.Checkpoint.load(tmp_path)
        assert checkpoint is not None and checkpoint.step == 4
        second = await rl.train(
            run.svc,
            run.dataset,
            _config(
                steps=6, max_steps_off_policy=1, oversample=2, checkpoint_every=2, run_dir=tmp_path
            ),
        )
    assert [h.step for h in first] == [0, 1, 2, 3] and [h.step for h in second] == [4, 5]
    pending = set(checkpoint.pending)
    assert all(i in pending or i >= checkpoint.next_index for i in _all_indices(second))
    indices = _all_indices(first) + _all_indices(second)
    assert len(indices) == len(set(indices))
    assert [r["step"] for r in rl.MetricsLog.read(tmp_path / "metrics.jsonl")] == list(range(6))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": -1}, "steps"),
        ({"groups_per_step": 0}, "groups_per_step"),
        ({"max_steps_off_policy": -1}, "max_steps_off_policy"),
        ({"stale": "keep"}, "stale"),
        ({"loss_fn": "cross_entropy"}, "RL loss"),
        ({"checkpoint_every": 2}, "run_dir"),
        ({"advantage": "median"}, "advantage"),
        ({"stale_weight": 2.0}, "stale_weight"),
    ],
)
def test_bad_config_is_a_typed_error(kwargs: dict[str, object], match: str) -> None:
    """Bad settings fail at construction with InvalidInputError, before anything is sent."""
    with pytest.raises(InvalidInputError, match=match):
        _config(**kwargs)


async def test_cancellation_drains_training_and_leaves_a_checkpoint(tmp_path: Path) -> None:
    """Cancelling mid-run waits for the submitted training ops and keeps a resumable checkpoint."""
    import anyio

    async with digits_run() as run:
        config = _config(steps=50, checkpoint_every=1, run_dir=tmp_path)
        loop = rl.RLLoop(run.tc, run.dataset, config)
        with anyio.move_on_after(1.0) as scope:
            await loop.run()
        assert scope.cancelled_caught
        checkpoint = rl.Checkpoint.load(tmp_path)
        assert checkpoint is not None and checkpoint.state_path
        # Every submitted step finished on the server: its checkpoint is the newest one.
        assert checkpoint.step >= len(loop.history)
        resumed = await rl.train(
            run.svc, run.dataset, _config(steps=checkpoint.step + 1, run_dir=tmp_path)
        )
    assert [h.step for h in resumed] == [checkpoint.step]
