"""RL step metrics reach a metrics sink, and through ``rl.train(wandb=...)`` one W&B run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from mint_async import WandbUnavailableError, rl
from mint_async import types as t

from .conftest import digits_run, rl_config

pytestmark = pytest.mark.anyio


def _config(**kwargs: Any) -> rl.RLConfig:
    return rl_config(**{"steps": 3, **kwargs})


async def test_each_step_reaches_the_sink_as_flat_scalars() -> None:
    """One ("rl", scalars) call per step, in step order, matching the step's record."""
    calls: list[tuple[str, dict[str, float]]] = []
    async with digits_run() as run:
        loop = rl.RLLoop(
            run.tc,
            run.dataset,
            _config(max_steps_off_policy=1),
            metrics_sink=lambda op, m: calls.append((op, m)),
        )
        history = await loop.run()
    assert [op for op, _ in calls] == ["rl"] * 3
    assert [m["step"] for _, m in calls] == [0.0, 1.0, 2.0]
    for (_, m), h in zip(calls, history, strict=True):
        assert m["reward_mean"] == h.reward_mean
        assert m["trainer_busy_fraction"] == h.trainer_busy_fraction
        assert sum(v for k, v in m.items() if k.startswith("staleness/")) == h.groups
        assert "data_indices" not in m and "staleness" not in m
        assert all(isinstance(v, float) for v in m.values())


def test_scalars_skip_a_missing_loss_and_keep_extras() -> None:
    """A step that trained nothing has no loss key; extra metrics pass through."""
    h = rl.StepMetrics(
        step=4, reward_mean=0.5, reward_std=0.1, groups=2, datums=0, constant_groups=2,
        dropped=0, downweighted=0, staleness={"0": 1, "2": 1}, mean_staleness=1.0,
        sampled_tokens=10, tokens_per_second=5.0, trainer_busy_fraction=0.5,
        sampler_busy_fraction=0.5, elapsed=2.0, step_seconds=1.0, rollouts_in_flight=0,
        pool=0, training_ops_in_flight=0, sampler_version=3, data_indices=[1, 2],
        extra={"custom/x": 7.0},
    )  # fmt: skip
    m = h.scalars()
    assert "loss" not in m and m["custom/x"] == 7.0
    assert m["staleness/0"] == 1.0 and m["staleness/2"] == 1.0 and m["step"] == 4.0


async def test_train_logs_each_step_to_one_wandb_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rl.train(wandb=...): W&B step = RL step, also across a resume; config recorded."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    logged: list[list[tuple[int, dict[str, Any]]]] = []
    runs: list[Any] = []
    real_init = wandb.init

    def init(**kwargs: Any) -> Any:
        wb_run = real_init(**kwargs)
        entries: list[tuple[int, dict[str, Any]]] = []
        real_log = wb_run.log

        def log(data: dict[str, Any], step: int) -> None:
            entries.append((step, data))
            real_log(data, step=step)

        wb_run.log = log
        logged.append(entries)
        runs.append(wb_run)
        return wb_run

    monkeypatch.setattr(wandb, "init", init)
    run_dir = tmp_path / "run"
    async with digits_run() as run:
        for steps in (2, 4):
            config = _config(steps=steps, checkpoint_every=2, run_dir=run_dir)
            await rl.train(
                run.svc, run.dataset, config, wandb=t.WandbConfig(project="p", name=f"rl-{steps}")
            )
    assert [[step for step, _ in entries] for entries in logged] == [[0, 1], [2, 3]]
    assert all(set(d) >= {"rl/reward_mean", "rl/step", "rl/dropped"} for e in logged for _, d in e)
    assert [d["rl/step"] for e in logged for _, d in e] == [0.0, 1.0, 2.0, 3.0]
    assert runs[0].config["max_steps_off_policy"] == 1 and runs[0].config["steps"] == 2


async def test_train_without_the_wandb_package_fails_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wandb=... without the package: WandbUnavailableError, and no training run was created."""
    monkeypatch.setitem(sys.modules, "wandb", None)
    created: list[object] = []

    async def create(*args: object, **kwargs: object) -> object:
        created.append(args)
        raise AssertionError("a training run was created")

    async with digits_run() as run:
        monkeypatch.setattr(run.svc, "create_lora_training_client", create)
        with pytest.raises(WandbUnavailableError, match=r"mint-async\[wandb\]"):
            await rl.train(run.svc, run.dataset, _config(), wandb=t.WandbConfig(project="p"))
    assert created == []
