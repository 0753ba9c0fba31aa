"""Does the asynchronous engine learn as well as the synchronous loop? Paired runs over seeds.

Learning is noisy run to run (the digits task takes off at different steps), so
one run per mode says little. This runs ``bench_rl.py`` once per seed (each
seed: a fresh server and training run for every mode, the same seed for all
modes) and compares each mode with the synchronous one *paired by seed*:

* ``eval_reward``: the final weights sampled on every prompt (what was learned
  in ``--steps`` steps), mean and standard error over seeds, and the paired
  difference to the synchronous mode;
* ``lag_reward``: the mean batch reward of the last third of the steps, where
  an asynchronous mode's step ``s`` is compared with the synchronous step
  ``s - round(mean staleness)`` — its batches come from policies that much older.

Speed does not matter here, so the latency model is compressed by default
(``--time-scale 0.1``)::

    python benchmarks/bench_rl_quality.py --seeds 6 --steps 30 --lr 0.05
    python benchmarks/bench_rl_quality.py --seeds 6 --steps 40 --lr 0.02 --modes 0,2/2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, table

BENCH = Path(__file__).resolve().parent / "bench_rl.py"


def run_seed(seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every mode once, on one seed: bench_rl.py's JSON records."""
    cmd = [
        sys.executable,
        str(BENCH),
        f"--steps={args.steps}",
        f"--modes={args.modes}",
        f"--time-scale={args.time_scale}",
        f"--lr={args.lr}",
        f"--seed={seed}",
        f"--eval-groups={args.eval_groups}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        msg = f"bench_rl.py failed for seed {seed}:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (0 for a single value)."""
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return mean, se


def lag_reward(record: dict[str, Any], sync: dict[str, Any]) -> tuple[float, float]:
    """(mode, sync) mean batch reward over the mode's last third, sync shifted by the staleness."""
    rewards: list[float] = record["rewards"]
    shift = round(record["mean_staleness"])
    steps = range(len(rewards) - len(rewards) // 3, len(rewards))
    pairs = [(rewards[s], sync["rewards"][s - shift]) for s in steps]
    return statistics.fmean(p[0] for p in pairs), statistics.fmean(p[1] for p in pairs)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the seeds, print one JSON summary per mode and a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=6, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=11)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--modes", default="0,2,2/2", help="as bench_rl.py; must include 0")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--eval-groups", type=int, default=64)
    args = parser.parse_args(argv)
    if "0" not in args.modes.split(","):
        parser.error("--modes must include 0 (the synchronous mode every mode is paired with)")
    runs = [run_seed(args.first_seed + i, args) for i in range(args.seeds)]
    summaries: list[dict[str, Any]] = []
    for position, first in enumerate(runs[0]):
        by_seed = [run[position] for run in runs]
        syncs = [next(r for r in run if r["max_steps_off_policy"] == 0) for run in runs]
        evals = [r["eval_reward"] for r in by_seed]
        diffs = [r["eval_reward"] - s["eval_reward"] for r, s in zip(by_seed, syncs, strict=True)]
        lags = [lag_reward(r, s) for r, s in zip(by_seed, syncs, strict=True)]
        summary = {
            "bench": "rl_quality",
            "mode": first["mode"],
            "max_steps_off_policy": first["max_steps_off_policy"],
            "sync_weights_every": first["sync_weights_every"],
            "seeds": args.seeds,
            "steps": args.steps,
            "lr": args.lr,
            "eval_reward": mean_se(evals),
            "eval_minus_sync": mean_se(diffs),
            "lag_reward": statistics.fmean(m for m, _ in lags),
            "lag_reward_sync": statistics.fmean(s for _, s in lags),
            "mean_staleness": statistics.fmean(r["mean_staleness"] for r in by_seed),
        }
        emit(summary)
        summaries.append(summary)
    table(
        f"Learning, paired by seed ({args.seeds} seeds, {args.steps} steps, lr {args.lr})",
        ["mode", "eval reward", "minus sync (paired)", "late batch reward vs sync (shifted)"],
        [
            [
                s["mode"],
                f"{s['eval_reward'][0]:.3f} ± {s['eval_reward'][1]:.3f}",
                f"{s['eval_minus_sync'][0]:+.3f} ± {s['eval_minus_sync'][1]:.3f}",
                f"{s['lag_reward']:.3f} vs {s['lag_reward_sync']:.3f}",
            ]
            for s in summaries
        ],
    )
    return summaries


if __name__ == "__main__":
    main()
