"""examples/rl_rollouts.py: the GRPO-style loop runs against the local server and its reward rises."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "rl_rollouts.py"


def test_rl_rollouts_reward_rises(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ten steps of sample → score → importance_sampling → refresh raise the mean reward."""
    monkeypatch.delenv("MINT_BASE_URL", raising=False)
    spec = importlib.util.spec_from_file_location("rl_rollouts", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rl_rollouts"] = module
    spec.loader.exec_module(module)
    means: list[float] = module.main(["--steps", "10", "--groups", "16"])
    assert len(means) == 10
    assert sum(means[-3:]) > 2 * sum(means[:3])
    captured = capsys.readouterr()
    assert "10/10" in captured.err and "mean reward per step" in captured.out
