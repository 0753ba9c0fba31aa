"""examples/rl_async.py: reward rises on the embedded torch server; sync mode tracks rl_rollouts.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

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
