"""``sync_weights_every``: weights reach the samplers every N steps, staleness stays bounded."""

from __future__ import annotations

from typing import Any

import pytest

from mint_async import InvalidInputError, rl

from .conftest import digits_run, rl_config

pytestmark = pytest.mark.anyio


def _config(**kwargs: Any) -> rl.RLConfig:
    return rl_config(**{"steps": 6, **kwargs})


@pytest.mark.parametrize(("k", "every"), [(1, 1), (2, 1), (2, 2), (3, 3)])
async def test_exports_every_n_steps_and_samples_only_exported_versions(k: int, every: int) -> None:
    """Exports happen after steps N-1, 2N-1, ... and the last; only those versions are sampled."""
    exported: list[str] = []
    async with digits_run() as run:
        save = run.tc.save_weights_for_sampler

        async def counting(name: str, *args: Any, **kwargs: Any) -> Any:
            exported.append(name)
            return await save(name, *args, **kwargs)

        run.tc.save_weights_for_sampler = counting  # type: ignore[method-assign]
        config = _config(max_steps_off_policy=k, sync_weights_every=every, oversample=2)
        history = await rl.RLLoop(run.tc, run.dataset, config).run()
    versions = {h.step - int(s) for h in history for s in h.staleness}
    expected = ["rl-000000"] + [
        f"rl-{s + 1:06d}" for s in range(6) if (s + 1) % every == 0 or s + 1 == 6
    ]
    assert exported == expected
    assert versions <= {int(name[3:]) for name in expected}
    assert max(int(s) for h in history for s in h.staleness) <= k
    assert [h.step for h in history] == list(range(6))
    indices = [i for h in history for i in h.data_indices]
    assert len(indices) == len(set(indices)) == 24


async def test_a_checkpoint_step_always_exports(tmp_path: Any) -> None:
    """A checkpoint names a sampler, so its step exports even between sync_weights_every steps."""
    async with digits_run() as run:
        config = _config(
            steps=4,
            max_steps_off_policy=3,
            sync_weights_every=3,
            checkpoint_every=2,
            run_dir=tmp_path,
        )
        await rl.RLLoop(run.tc, run.dataset, config).run()
    checkpoint = rl.Checkpoint.load(tmp_path)
    assert checkpoint is not None and checkpoint.step == 4
    assert checkpoint.sampler_version == 4 and checkpoint.sampler_path.endswith("rl-000004")


@pytest.mark.parametrize(("k", "every"), [(0, 2), (1, 2), (2, 3), (2, 0)])
def test_sync_weights_every_beyond_the_staleness_bound_is_refused(k: int, every: int) -> None:
    """A step would wait forever for a version that is never exported: refused up front."""
    with pytest.raises(InvalidInputError, match="sync_weights_every"):
        _config(max_steps_off_policy=k, sync_weights_every=every)
