"""benchmarks/bench_rl.py runs every mode end to end and reports the issue's keys and a table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rl.py"
KEYS = {
    "max_steps_off_policy",
    "seconds_per_step",
    "speedup_vs_sync",
    "steady_seconds_per_step",
    "steady_speedup_vs_sync",
    "eval_reward",
    "trainer_busy_fraction",
    "sampler_busy_fraction",
    "mean_staleness",
    "final_reward",
    "dropped",
    "rewards",
}


def _run(script: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_bench_rl_prints_one_json_line_per_mode_and_a_table() -> None:
    """Four modes (a compressed latency model, few steps): JSON lines with the issue's keys, staleness <= K."""
    args = [
        "--steps",
        "3",
        "--groups",
        "2",
        "--group-size",
        "2",
        "--time-scale",
        "0.05",
        "--oversample",
        "2",
    ]
    proc = _run(BENCH, args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [(r["max_steps_off_policy"], r["sync_weights_every"]) for r in records] == [
        (0, 1),
        (1, 1),
        (2, 1),
        (2, 2),
    ]
    for r in records:
        assert set(r) >= KEYS, r
        assert 0.0 < r["trainer_busy_fraction"] <= 1.0
        assert r["mean_staleness"] <= r["max_steps_off_policy"]
        assert len(r["rewards"]) == 3
        assert 0.0 <= r["eval_reward"] <= 1.0
    assert records[0]["mean_staleness"] == 0.0 and records[0]["dropped"] == 0
    assert "trainer-bound limit 0.13 s/step" in proc.stderr
    assert "async-k2" in proc.stderr and "async-k2-every2" in proc.stderr
    assert "speedup" in proc.stderr


def test_bench_rl_quality_pairs_the_modes_by_seed() -> None:
    """Two seeds of a tiny run: one summary per mode, the synchronous one paired with itself."""
    bench = BENCH.parent / "bench_rl_quality.py"
    args = ["--seeds", "2", "--steps", "3", "--modes", "0,1", "--time-scale", "0.02"]
    args += ["--eval-groups", "4"]
    proc = _run(bench, args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["mode"] for r in records] == ["sync", "async-k1"]
    assert records[0]["eval_minus_sync"] == [0.0, 0.0]
    assert all(0.0 <= r["eval_reward"][0] <= 1.0 and r["seeds"] == 2 for r in records)
    assert "paired" in proc.stderr
