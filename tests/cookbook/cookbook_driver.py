"""Run one tinker-cookbook loop against a server and print its metrics as JSON (one process per run).

``python -m tests.cookbook.cookbook_driver --sdk compat|real --loop sft|rl
--base-url URL --log-dir DIR --steps N``. With ``--sdk compat`` it calls
``mint_async.tinker_compat.install()`` first, so the cookbook's ``import
tinker`` gets mint_async; with ``--sdk real`` the official tinker SDK runs. The
cookbook's code is not changed: the loops are configured through their own
config objects, and the model name's tokenizer is registered through the
cookbook's public ``register_tokenizer`` as the local server's tiny offline
tokenizer (no hub access). The last line of output is
``{"metrics": [...], "wall_s": ..., "cpu_s": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

MODEL = "Qwen/Qwen3-8B"
"""A model the cookbook's model_info knows (renderer qwen3) and the local server serves by default."""


def _mod(name: str) -> Any:
    # tinker-cookbook and tinker exist only in the cookbook session's venv (untyped there).
    return importlib.import_module(name)


def _register_tiny_tokenizer() -> None:
    from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer

    tokenizer = _mod("transformers").AutoTokenizer.from_pretrained(str(ensure_tiny_tokenizer()))
    _mod("tinker_cookbook.tokenizer_utils").register_tokenizer(MODEL, lambda: tokenizer)


async def _sft(base_url: str, log_dir: str, steps: int) -> None:
    train = _mod("tinker_cookbook.supervised.train")
    data = Path(_mod("tinker_cookbook").__file__).parent / "example_data" / "conversations.jsonl"
    common = _mod("tinker_cookbook.supervised.types").ChatDatasetBuilderCommonConfig(
        model_name_for_tokenizer=MODEL,
        renderer_name="qwen3",
        max_length=512,
        batch_size=16,
        train_on_what=_mod("tinker_cookbook.renderers").TrainOnWhat.ALL_ASSISTANT_MESSAGES,
    )
    dataset = _mod("tinker_cookbook.supervised.data").FromConversationFileBuilder(
        common_config=common, file_path=str(data), test_size=16
    )
    config = train.Config(
        log_path=log_dir,
        model_name=MODEL,
        recipe_name="mint_async_cookbook_test",
        renderer_name="qwen3",
        dataset_builder=dataset,
        learning_rate=1e-2,
        lr_schedule="constant",
        lora_rank=16,
        base_url=base_url,
        eval_every=steps - 1,
        save_every=0,
        max_steps=steps,
    )
    await train.main(config)


async def _rl(base_url: str, log_dir: str, steps: int, loss_fn: str) -> None:
    train = _mod("tinker_cookbook.recipes.math_rl.train")
    config = train.CLIConfig(
        model_name=MODEL,
        renderer_name="qwen3",
        lora_rank=16,
        group_size=4,
        groups_per_batch=8,
        learning_rate=1e-3,
        max_tokens=5,
        log_path=log_dir,
        base_url=base_url,
        behavior_if_log_dir_exists="delete",
        eval_every=0,
        save_every=0,
        max_steps=steps,
        loss_fn=loss_fn,
    )
    await train.cli_main(config)


def _metrics(log_dir: str) -> list[dict[str, Any]]:
    path = Path(log_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sdk", choices=("compat", "real"), required=True)
    parser.add_argument("--loop", choices=("sft", "rl"), required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--loss-fn", default="stable_reinforce")
    args = parser.parse_args(argv)
    if args.sdk == "compat":
        import mint_async.tinker_compat

        mint_async.tinker_compat.install()
    _register_tiny_tokenizer()
    tinker = _mod("tinker")
    started, cpu0 = time.perf_counter(), time.process_time()
    if args.loop == "sft":
        asyncio.run(_sft(args.base_url, args.log_dir, args.steps))
    else:
        asyncio.run(_rl(args.base_url, args.log_dir, args.steps, args.loss_fn))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "sdk": args.sdk,
        "tinker": getattr(tinker, "__file__", None) or tinker.__name__,
        "metrics": _metrics(args.log_dir),
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu0,
        "maxrss_kb": usage.ru_maxrss,
    }
    sys.stdout.flush()
    os.write(1, ("\n" + json.dumps(report) + "\n").encode())


if __name__ == "__main__":
    main()
