"""Asynchronous RL with mint_async.rl: sampling overlaps training, staleness stays bounded.

The same task as ``rl_rollouts.py`` (reward: the share of sampled tokens that
are digits), driven by the engine instead of a hand-written loop: rollouts stay
in flight while the trainer runs, each sample is tagged with the policy version
that produced it, batches no older than ``--max-steps-off-policy`` versions
stream to ``forward_backward``, and new weights reach the samplers without
stopping them. ``--max-steps-off-policy 0`` is the synchronous loop.

Runs offline against the embedded local server — the ``torch`` backend (a tiny
transformer with real LoRA training on CPU) by default, or ``--backend
synthetic`` (a numpy bigram model, faster) — unless ``MINT_BASE_URL`` is set.
With ``--run-dir`` it writes ``metrics.jsonl`` and a checkpoint every
``--checkpoint-every`` steps, and running it again resumes::

    python examples/rl_async.py --steps 12 --max-steps-off-policy 1
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Generator
from pathlib import Path

import anyio

from mint_async import ServiceClient, rl
from mint_async import types as t
from mint_async.server import ServerConfig
from mint_async.testing import serve_loopback


@contextlib.contextmanager
def endpoint(backend: str) -> Generator[tuple[str, str]]:
    """``MINT_BASE_URL``/``MINT_API_KEY`` if set, else a local server on loopback."""
    url = os.environ.get("MINT_BASE_URL")
    if url:
        yield url, os.environ.get("MINT_API_KEY", "")
        return
    with serve_loopback(ServerConfig(backend=backend)) as server:
        print(f"local server ({backend} backend) at {server.base_url}", flush=True)
        yield server.base_url, server.api_key


@contextlib.contextmanager
def progress(total: int, *, fancy: bool | None = None) -> Generator[rl.StepCallback]:
    """A ``rich`` progress bar on a terminal (when rich is installed), else a line per step."""
    if fancy is None:
        fancy = sys.stderr.isatty()
    if not fancy or importlib.util.find_spec("rich") is None:
        yield report(total)
        return
    from rich.console import Console  # noqa: PLC0415 - optional
    from rich.progress import BarColumn, Progress, TextColumn  # noqa: PLC0415 - optional

    columns = (
        TextColumn("RL"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.description}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("", total=total)

        def on_step(m: rl.StepMetrics) -> None:
            text = f"reward {m.reward_mean:.3f}  staleness {m.mean_staleness:.1f}  busy {m.trainer_busy_fraction:.0%}"
            bar.update(task, completed=m.step + 1, description=text)

        yield on_step


def report(total: int) -> rl.StepCallback:
    """A progress line per step on stderr."""

    def on_step(m: rl.StepMetrics) -> None:
        staleness = " ".join(f"{k}:{v}" for k, v in sorted(m.staleness.items()))
        sys.stderr.write(
            f"[{m.step + 1}/{total}] reward {m.reward_mean:.3f}  staleness {staleness}  "
            f"dropped {m.dropped}  trainer busy {m.trainer_busy_fraction:.0%}  "
            f"{m.step_seconds:.1f} s\n"
        )

    return on_step


async def run(url: str, key: str, args: argparse.Namespace) -> list[float]:
    """Train; returns the mean reward of each step run."""
    async with ServiceClient(base_url=url, api_key=key) as svc:
        # The tokenizer comes from a throwaway sampler of the base model.
        sampler = await svc.create_sampling_client(base_model="Qwen/Qwen3-0.6B")
        dataset = rl.DigitsDataset.from_tokenizer(
            await sampler.get_tokenizer(),
            prompts=args.groups * 4,
            group_size=args.group_size,
            max_tokens=args.max_tokens,
        )
        config = rl.RLConfig(
            steps=args.steps,
            groups_per_step=args.groups,
            max_steps_off_policy=args.max_steps_off_policy,
            sampling_params=t.SamplingParams(max_tokens=args.max_tokens, temperature=1.0),
            loss_fn=args.loss,
            adam=t.AdamParams(learning_rate=args.lr),
            run_dir=args.run_dir,
            checkpoint_every=args.checkpoint_every if args.run_dir else 0,
        )
        with progress(args.steps) as on_step:
            history = await rl.train(
                svc,
                dataset,
                config,
                base_model="Qwen/Qwen3-0.6B",
                lora_rank=8,
                seed=args.seed,
                on_step=on_step,
            )
    return [m.reward_mean for m in history]


def main(argv: list[str] | None = None) -> list[float]:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["torch", "synthetic"], default="torch")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--max-steps-off-policy", type=int, default=1)
    parser.add_argument(
        "--loss",
        choices=["importance_sampling", "ppo", "cispo", "dro", "gspo"],
        default="importance_sampling",
    )
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=4)
    args = parser.parse_args(argv)
    with endpoint(args.backend) as (url, key):
        means = anyio.run(run, url, key, args)
    print(f"mean reward per step: {' '.join(f'{m:.3f}' for m in means)}")
    return means


if __name__ == "__main__":
    main()
