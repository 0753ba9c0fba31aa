"""The RL engine against synchronous training, on one modelled-latency task.

The local server runs in its own process with the issue's latency model —
``sample=uniform(0.5,4.0)`` per request, ``forward_backward=2.0``,
``optim_step=0.3``, ``save_weights_for_sampler=0.3`` seconds, no capacity limit
(samplers and trainer do not compete) — and each mode trains a fresh LoRA run on
the digits task (8 groups x 4 samples per step, ``importance_sampling``). The
trainer-bound limit of this model is 2.6 s/step with an export every step.

One JSON line per mode on stdout (``max_steps_off_policy``, ``seconds_per_step``,
``speedup_vs_sync``, ``steady_seconds_per_step``, ``steady_speedup_vs_sync``,
``trainer_busy_fraction``, ``sampler_busy_fraction``, ``mean_staleness``,
``dropped``, ``final_reward``, ``eval_reward``, ``rewards``), then a
side-by-side table on stderr::

    python benchmarks/bench_rl.py                    # modes 0,1,2,2/2; 12 steps each
    python benchmarks/bench_rl.py --steps 20 --modes 0,2 --time-scale 0.25

A mode is ``K`` (``max_steps_off_policy``, a weight export after every step) or
``K/N`` (``sync_weights_every=N``: an export every N steps, N <= K). Exports
are on the trainer's critical path, so the trainer-bound limit is
``2.3 + 0.3 / N`` s/step: 2.6 for N = 1, 2.45 for N = 2.

Busy fractions are measured from the client (see ``mint_async.rl._ops``): the
trainer is busy from ``max(submitted, previous op done)`` to an op's result; the
sampler while at least one rollout is in flight. ``seconds_per_step`` is the wall
time of the whole run (step 0 included) over the steps.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, machine, table
from mint_async import ServiceClient, TrainingClient, rl
from mint_async import types as t
from mint_async.testing import serve_subprocess

COOKBOOK_KEY = "tml-mint-async-local"
"""The local server's default key in tinker's spelling (the official SDK wants ``tml-``)."""

LATENCY = "sample=uniform(0.5,4.0),forward_backward=2.0,optim_step=0.3,save_weights_for_sampler=0.3"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def scaled(spec: str, factor: float) -> str:
    """``spec`` with every number multiplied by ``factor`` (to run the same shape faster)."""
    return re.sub(r"\d+(?:\.\d+)?", lambda m: f"{float(m.group()) * factor:g}", spec)


def parse_modes(spec: str) -> list[tuple[int, int]]:
    """``"0,1,2,2/2"`` -> ``[(0, 1), (1, 1), (2, 1), (2, 2)]``: (K, sync_weights_every)."""
    modes: list[tuple[int, int]] = []
    for item in spec.split(","):
        k, _, every = item.partition("/")
        modes.append((int(k), int(every or 1)))
    return modes


def mode_name(k: int, every: int) -> str:
    """``sync``, ``async-k2`` or ``async-k2-every2``."""
    base = "sync" if k == 0 else f"async-k{k}"
    return base if every == 1 else f"{base}-every{every}"


async def run_mode(
    base_url: str, api_key: str, mode: tuple[int, int], args: argparse.Namespace
) -> dict[str, Any]:
    """Train one fresh run with ``max_steps_off_policy, sync_weights_every = mode``; its summary."""
    k, every = mode
    async with ServiceClient(base_url=base_url, api_key=api_key) as svc:
        tc = await svc.create_lora_training_client("Qwen/Qwen3-0.6B", rank=8, seed=args.seed)
        tokenizer = await tc.get_tokenizer()
        dataset = rl.DigitsDataset.from_tokenizer(
            tokenizer, prompts=64, group_size=args.group_size, max_tokens=args.max_tokens
        )
        config = rl.RLConfig(
            steps=args.steps,
            groups_per_step=args.groups,
            max_steps_off_policy=k,
            sync_weights_every=every,
            oversample=args.oversample if k > 0 else 0,
            sampling_params=t.SamplingParams(max_tokens=args.max_tokens, temperature=1.0),
            loss_fn="importance_sampling",
            adam=t.AdamParams(learning_rate=args.lr),
            name=f"bench-k{k}-every{every}",
        )
        started = time.perf_counter()
        history = await rl.RLLoop(tc, dataset, config).run()
        wall = time.perf_counter() - started
        evaluated = await evaluate(tc, dataset, args)
    last = history[-1]
    rewards = [h.reward_mean for h in history]
    tail = rewards[-3:]
    return {
        "bench": "rl",
        "mode": mode_name(k, every),
        "max_steps_off_policy": k,
        "sync_weights_every": every,
        "steps": args.steps,
        "groups_per_step": args.groups,
        "group_size": args.group_size,
        "oversample": config.oversample,
        "seconds_per_step": round(wall / args.steps, 3),
        "steady_seconds_per_step": round(
            (history[-1].elapsed - history[0].elapsed) / max(1, len(history) - 1), 3
        ),
        "trainer_busy_fraction": round(last.trainer_busy_fraction, 3),
        "sampler_busy_fraction": round(last.sampler_busy_fraction, 3),
        "mean_staleness": round(sum(h.mean_staleness for h in history) / len(history), 3),
        "dropped": sum(h.dropped for h in history),
        "final_reward": round(sum(tail) / len(tail), 4),
        "first_reward": round(rewards[0], 4),
        "eval_reward": round(evaluated, 4),
        "rewards": [round(r, 4) for r in rewards],
    }


async def evaluate(
    tc: TrainingClient, dataset: rl.DigitsDataset, args: argparse.Namespace
) -> float:
    """Mean reward of the trained weights on every prompt (``--eval-groups`` groups), after the run.

    A step's ``reward_mean`` is the reward of its batch, sampled by a policy up to K
    versions older; this samples the *final* policy, so modes compare by what they learned.
    """
    sampler = await tc.save_weights_and_get_sampling_client("bench-eval")
    params = t.SamplingParams(max_tokens=args.max_tokens, temperature=1.0)

    async def sample(prompt: t.ModelInput, n: int, p: t.SamplingParams) -> t.SampleResponse:
        return await sampler.sample(prompt, n, p)

    rewards: list[float] = []

    async def one(index: int) -> None:
        group = await rl.rollout_group(
            dataset.group_builder(index), sample, params, index=index, version=-1
        )
        rewards.extend(group.rewards)

    async with anyio.create_task_group() as tg:
        for index in range(args.eval_groups):
            tg.start_soon(one, index)
    return sum(rewards) / len(rewards)


async def bench(base_url: str, api_key: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """All modes, one after another, on the same server."""
    records: list[dict[str, Any]] = []
    for mode in args.modes:
        record = await run_mode(base_url, api_key, mode, args)
        sync = next((r for r in records if r["max_steps_off_policy"] == 0), None)
        if mode[0] == 0:
            record["speedup_vs_sync"] = record["steady_speedup_vs_sync"] = 1.0
        elif sync is not None:
            record["speedup_vs_sync"] = round(
                sync["seconds_per_step"] / record["seconds_per_step"], 2
            )
            record["steady_speedup_vs_sync"] = round(
                sync["steady_seconds_per_step"] / record["steady_seconds_per_step"], 2
            )
        record["latency"] = args.latency
        record["machine"] = machine()
        emit(record)
        records.append(record)
    return records


def run_cookbook(base_url: str, k: int, args: argparse.Namespace) -> dict[str, Any]:
    """tinker-cookbook's RL loop (official tinker SDK, its own venv) on the same server and task."""
    cmd = [
        args.cookbook_python,
        str(Path(__file__).resolve().parent / "_cookbook_rl.py"),
        f"--base-url={base_url}",
        f"--k={k}",
        f"--steps={args.steps}",
        f"--groups={args.groups}",
        f"--group-size={args.group_size}",
        f"--max-tokens={args.max_tokens}",
        f"--lr={args.lr}",
    ]
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = {**os.environ, "PYTHONPATH": src, "TINKER_API_KEY": COOKBOOK_KEY}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, check=False)
    if proc.returncode != 0:
        msg = f"the cookbook run failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = [m for m in out["metrics"] if "time/total" in m]
    rewards = [float(m.get("env/all/reward/total", 0.0)) for m in rows]
    tail = rewards[-3:] or [0.0]
    return {
        "bench": "rl",
        "mode": "cookbook-sync" if k == 0 else f"cookbook-k{k}",
        "max_steps_off_policy": k,
        "sync_weights_every": 1,
        "steps": len(rows),
        # Wall time of the cookbook's whole run (client set-up and final checkpoint
        # included) over its steps: its own time/total covers only the training
        # part of a step in async mode, not the wait for data.
        "seconds_per_step": round(out["wall_s"] / max(1, len(rows)), 3),
        "train_seconds_per_step": round(sum(m["time/total"] for m in rows) / max(1, len(rows)), 3),
        "trainer_busy_fraction": None,
        "sampler_busy_fraction": None,
        "mean_staleness": None,
        "dropped": None,
        "final_reward": round(sum(tail) / len(tail), 4),
        "first_reward": round(rewards[0], 4) if rewards else 0.0,
        "rewards": [round(r, 4) for r in rewards],
        "note": "tinker-cookbook rl.train through the official tinker SDK; busy fractions not measured",
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse arguments, start the server, run the modes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument(
        "--modes",
        type=parse_modes,
        default=parse_modes("0,1,2,2/2"),
        help="comma-separated K or K/N (max_steps_off_policy / sync_weights_every)",
    )
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--oversample", type=int, default=8, help="extra groups in flight (K >= 1)")
    parser.add_argument("--latency", default=LATENCY)
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply every latency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-groups", type=int, default=64, help="groups sampled from the final weights"
    )
    parser.add_argument(
        "--cookbook-python",
        default=None,
        help="python of a venv with tinker-cookbook + tinker: also run the cookbook's loop per mode",
    )
    args = parser.parse_args(argv)
    if args.time_scale != 1.0:
        args.latency = scaled(args.latency, args.time_scale)
    with serve_subprocess(
        ["--latency", args.latency, "--seed", str(args.seed)], api_key=COOKBOOK_KEY
    ) as server:
        records = anyio.run(bench, server.base_url, server.api_key, args)
        if args.cookbook_python:
            # The cookbook exports every step: its modes are the distinct K.
            for k in sorted({k for k, _ in args.modes}):
                record = run_cookbook(server.base_url, k, args)
                sync = next((r for r in records if r["mode"] == "cookbook-sync"), None)
                if sync is not None:
                    record["speedup_vs_sync"] = round(
                        sync["seconds_per_step"] / record["seconds_per_step"], 2
                    )
                elif k == 0:
                    record["speedup_vs_sync"] = 1.0
                record["latency"] = args.latency
                emit(record)
                records.append(record)
    limit = scaled("2.6", args.time_scale)
    limit2 = scaled("2.45", args.time_scale)
    table(
        f"RL engine vs synchronous ({args.latency}; trainer-bound limit {limit} s/step,"
        f" {limit2} with an export every 2 steps)",
        [
            "mode",
            "K",
            "export every",
            "s/step (steady)",
            "speedup (steady)",
            "trainer busy",
            "sampler busy",
            "staleness",
            "dropped",
            "reward first->final",
            "eval reward",
        ],
        [
            [
                r["mode"],
                r["max_steps_off_policy"],
                r["sync_weights_every"],
                f"{r['seconds_per_step']} ({r.get('steady_seconds_per_step', '-')})",
                f"{r.get('speedup_vs_sync', '-')}x ({r.get('steady_speedup_vs_sync', '-')}x)",
                _pct(r["trainer_busy_fraction"]),
                _pct(r["sampler_busy_fraction"]),
                "-" if r["mean_staleness"] is None else r["mean_staleness"],
                "-" if r["dropped"] is None else r["dropped"],
                f"{r['first_reward']:.3f}->{r['final_reward']:.3f}",
                "-" if r.get("eval_reward") is None else f"{r['eval_reward']:.3f}",
            ]
            for r in records
        ],
    )
    return records


if __name__ == "__main__":
    main()
