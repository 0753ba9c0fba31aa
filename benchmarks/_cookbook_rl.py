"""The cookbook side of bench_rl.py: tinker-cookbook's RL loop on the same task and server.

Runs in a venv with tinker-cookbook and the official tinker SDK (not this
project's): ``python benchmarks/_cookbook_rl.py --base-url URL --k 1 --steps 8``.
The cookbook's code is not changed: the digits task is written against its
public ``Env`` / ``EnvGroupBuilder`` / ``RLDataset`` API, the loop is configured
through ``rl.train.Config`` (``AsyncConfig(max_steps_off_policy=K)`` for K > 0,
``importance_sampling``), and the model's tokenizer is registered through its
public ``register_tokenizer`` as the local server's tiny offline tokenizer. The
last line of output is one JSON record.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODEL = "Qwen/Qwen3-8B"
"""A model the cookbook's model_info knows and the local server serves by default."""


def _mod(name: str) -> Any:
    return importlib.import_module(name)  # untyped: these live only in the cookbook's venv


chz: Any = _mod("chz")
tinker: Any = _mod("tinker")
types: Any = _mod("tinker_cookbook.rl.types")


def _tokenizer() -> Any:
    from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer

    tok = _mod("transformers").AutoTokenizer.from_pretrained(str(ensure_tiny_tokenizer()))
    _mod("tinker_cookbook.tokenizer_utils").register_tokenizer(MODEL, lambda: tok)
    return tok


TOKENIZER = _tokenizer()
DIGITS = frozenset(TOKENIZER.encode(str(d), add_special_tokens=False)[0] for d in range(10))


class DigitEnv(types.Env):  # type: ignore[misc]
    """Reward: the share of sampled tokens that are digits (as mint_async.rl.DigitShare)."""

    def __init__(self, prompt: list[int]) -> None:
        self.prompt = prompt

    async def initial_observation(self) -> Any:
        return tinker.ModelInput.from_ints(self.prompt), []

    async def step(self, action: list[int], *, extra: Any = None) -> Any:
        reward = sum(tok in DIGITS for tok in action) / len(action) if action else 0.0
        return types.StepResult(
            reward=reward,
            episode_done=True,
            next_observation=tinker.ModelInput.from_ints([]),
            next_stop_condition=[],
        )


class DigitGroup(types.EnvGroupBuilder):  # type: ignore[misc]
    def __init__(self, prompt: list[int], group_size: int) -> None:
        self.prompt, self.group_size = prompt, group_size

    async def make_envs(self) -> Sequence[Any]:
        return [DigitEnv(self.prompt) for _ in range(self.group_size)]


class DigitDataset(types.RLDataset):  # type: ignore[misc]
    def __init__(self, batches: int, groups: int, group_size: int) -> None:
        self.batches, self.groups, self.group_size = batches, groups, group_size

    def get_batch(self, index: int) -> Sequence[Any]:
        first = index * self.groups
        return [
            DigitGroup(
                TOKENIZER.encode(f"Say a number: {(first + g) % 64}", add_special_tokens=False),
                self.group_size,
            )
            for g in range(self.groups)
        ]

    def __len__(self) -> int:
        return self.batches


@chz.chz
class DigitDatasetBuilder(types.RLDatasetBuilder):  # type: ignore[misc]
    batches: int
    groups: int
    group_size: int

    async def __call__(self) -> tuple[Any, None]:
        return DigitDataset(self.batches, self.groups, self.group_size), None


async def run(args: argparse.Namespace, log_dir: str) -> None:
    train = _mod("tinker_cookbook.rl.train")
    async_config = None
    if args.k > 0:
        async_config = train.AsyncConfig(
            max_steps_off_policy=args.k, groups_per_batch=args.groups, loss_fn="importance_sampling"
        )
    config = train.Config(
        learning_rate=args.lr,
        dataset_builder=DigitDatasetBuilder(
            batches=args.steps, groups=args.groups, group_size=args.group_size
        ),
        model_name=MODEL,
        recipe_name="mint_async_bench_rl",
        max_tokens=args.max_tokens,
        log_path=log_dir,
        eval_every=0,
        save_every=0,
        lora_rank=8,
        loss_fn="importance_sampling",
        async_config=async_config,
        base_url=args.base_url,
        num_groups_to_log=0,
        rollout_json_export=False,
        max_steps=args.steps,
    )
    await train.main(config)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--k", type=int, default=0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    os.environ.setdefault("TINKER_API_KEY", "tml-mint-async-local")
    with tempfile.TemporaryDirectory() as log_dir:
        started = time.perf_counter()
        asyncio.run(run(args, log_dir))
        wall = time.perf_counter() - started
        path = Path(log_dir) / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        rows = [json.loads(line) for line in lines if line.strip()]
    print(
        json.dumps({"k": args.k, "steps": args.steps, "wall_s": wall, "metrics": rows}), flush=True
    )


if __name__ == "__main__":
    main()
