"""kill -9 of a training driver mid-run, then resume: no step's data is repeated or skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mint_async import rl
from mint_async.server import LatencyConfig, ServerConfig
from mint_async.testing import serve_loopback

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rl_async.py"
LATENCY = (
    "sample=uniform(0.02,0.15),forward_backward=0.15,optim_step=0.02,save_weights_for_sampler=0.02"
)
G = 4


def _driver(run_dir: Path, env: dict[str, str]) -> list[str]:
    return [
        sys.executable,
        str(EXAMPLE),
        "--backend=synthetic",
        "--steps=10",
        f"--groups={G}",
        "--group-size=4",
        "--max-steps-off-policy=1",
        "--checkpoint-every=3",
        f"--run-dir={run_dir}",
    ]


def _records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return rl.MetricsLog.read(path) if path.exists() else []


def test_kill_9_then_resume_continues_exactly(tmp_path: Path) -> None:
    """SIGKILL after a checkpoint and a later step; the rerun resumes there and trains each datum once."""
    run_dir = tmp_path / "run"
    config = ServerConfig(latency=LatencyConfig.parse(LATENCY, seed=3))
    with serve_loopback(config) as server:
        env = {**os.environ, "MINT_BASE_URL": server.base_url, "MINT_API_KEY": server.api_key}
        proc = subprocess.Popen(
            _driver(run_dir, env), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 120
            checkpoint = None
            while time.monotonic() < deadline:
                checkpoint = rl.Checkpoint.load(run_dir)
                if checkpoint is not None and any(
                    r["step"] > checkpoint.step for r in _records(run_dir)
                ):
                    break  # work past the checkpoint exists, and will be lost
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        checkpoint = rl.Checkpoint.load(run_dir)
        assert checkpoint is not None and 0 < checkpoint.step < 10
        before = {r["step"]: r for r in _records(run_dir) if r["step"] < checkpoint.step}
        resumed = subprocess.run(
            _driver(run_dir, env), env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
    records = _records(run_dir)
    c = checkpoint.step
    assert [r["step"] for r in records] == list(range(10))
    # The steps before the checkpoint are the killed run's own, untouched.
    assert [r["data_indices"] for r in records[:c]] == [before[s]["data_indices"] for s in range(c)]
    trained = [i for r in records for i in r["data_indices"]]
    assert len(trained) == len(set(trained)) == 10 * G  # no datum trained twice
    # Nothing skipped: up to the checkpoint's data position every datum was trained, dropped or pending.
    trained_before = [i for r in records[:c] for i in r["data_indices"]]
    assert (
        len(trained_before) + len(checkpoint.pending) + checkpoint.dropped_total
        == checkpoint.next_index
    )
    after = [i for r in records[c:] for i in r["data_indices"]]
    assert set(checkpoint.pending) <= set(after)  # what was in flight is sampled again and trained
    assert all(i in checkpoint.pending or i >= checkpoint.next_index for i in after)
    assert json.loads((run_dir / "checkpoint.json").read_text())["step"] == 9
