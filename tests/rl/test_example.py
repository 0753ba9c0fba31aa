"""examples/rl_async.py: reward rises on the embedded torch server; sync mode tracks rl_rollouts.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mint_async import rl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _rise(means: list[float]) -> float:
    return sum(means[-3:]) / max(sum(means[:3]), 1e-9)


def test_async_example_reward_rises_on_torch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ten steps at max_steps_off_policy=1 on the torch backend multiply the reward (it starts near 0.02)."""
    monkeypatch.delenv("MINT_BASE_URL", raising=False)
    means: list[float] = _load("rl_async").main(["--steps", "10", "--seed", "0"])
    assert len(means) == 10
    assert _rise(means) > 3
    captured = capsys.readouterr()
    assert "[10/10]" in captured.err and "mean reward per step" in captured.out


def test_sync_mode_matches_the_hand_written_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """K=0 on the synthetic backend learns like rl_rollouts.py with the same batch and learning rate."""
    monkeypatch.delenv("MINT_BASE_URL", raising=False)
    args = [
        "--steps",
        "10",
        "--groups",
        "16",
        "--group-size",
        "8",
        "--max-tokens",
        "8",
        "--lr",
        "0.05",
    ]
    engine: list[float] = _load("rl_async").main(
        [*args, "--backend", "synthetic", "--max-steps-off-policy", "0"]
    )
    by_hand: list[float] = _load("rl_rollouts").main(args)
    assert _rise(engine) > 2 and _rise(by_hand) > 2
    final_engine, final_hand = sum(engine[-3:]) / 3, sum(by_hand[-3:]) / 3
    assert 0.5 < final_engine / final_hand < 2.0


def test_progress_bar_with_rich_and_lines_without(capsys: pytest.CaptureFixture[str]) -> None:
    """The example's progress is a rich bar when asked for (rich installed), else one line per step."""
    pytest.importorskip("rich")
    module = _load("rl_async")
    metrics = rl.StepMetrics(
        step=1,
        reward_mean=0.25,
        reward_std=0.1,
        groups=2,
        datums=8,
        constant_groups=0,
        dropped=0,
        downweighted=0,
        staleness={"1": 2},
        mean_staleness=1.0,
        sampled_tokens=10,
        tokens_per_second=5.0,
        trainer_busy_fraction=0.9,
        sampler_busy_fraction=0.8,
        elapsed=2.0,
        step_seconds=1.0,
        rollouts_in_flight=3,
        pool=1,
        training_ops_in_flight=0,
        sampler_version=1,
        data_indices=[0, 1],
    )
    with module.progress(2, fancy=True) as on_step:
        on_step(metrics)
    with module.progress(2, fancy=False) as on_step:
        on_step(metrics)
    err = capsys.readouterr().err
    assert "2/2 reward 0.250" in err  # the rich bar's description
    assert "[2/2] reward 0.250  staleness 1:2" in err  # the plain line
