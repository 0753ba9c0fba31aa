"""SFT quickstart, async: teach a model the multiplication table with mint_async.

The MinT SFT guide's task ("Question: What is a * b?\\nAnswer:" -> " {a*b}" + EOS,
prompt tokens at weight 0), written for the async client:

* ``async with ServiceClient(...)`` owns the connections and the session;
* ``await training.forward_backward(...)`` returns once the request is
  *submitted* and gives a future, so ``optim_step`` is submitted right behind
  it and both run in the same server cycle; ``await future`` gives the result;
* the trained model answers every question concurrently.

Each step trains on a third of the table (``--batches 3``): on the local tiny
model three updates per pass over the table learn it in about half the time
whole-table steps take. It prints the loss per trained token (over the last
pass) every tenth of the way, then every question with its answer.

Runs against the embedded local server (the torch backend's tiny Qwen3 when
torch is installed; about 12 s on a quiet 2-core machine) unless
``MINT_BASE_URL`` is set::

    python examples/sft_quickstart_async.py
    MINT_BASE_URL=https://mint.macaron.xin/ MINT_API_KEY=sk-... python examples/sft_quickstart_async.py --lr 1e-4 --steps 40 --batches 1
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import anyio

from mint_async import SamplingClient, ServiceClient
from mint_async import types as t
from mint_async.server import ServerConfig
from mint_async.testing import serve_loopback


@contextlib.contextmanager
def endpoint() -> Generator[tuple[str, str | None]]:
    """``MINT_BASE_URL`` (and ``MINT_API_KEY``) if set, else a local server on loopback."""
    url = os.environ.get("MINT_BASE_URL")
    if url:
        yield url, os.environ.get("MINT_API_KEY")
        return
    backend = "torch" if importlib.util.find_spec("torch") else "synthetic"
    print(f"local server ({backend} backend): starting...", flush=True)
    with serve_loopback(ServerConfig(backend=backend)) as server:
        print(f"local server ({backend} backend) at {server.base_url}", flush=True)
        yield server.base_url, server.api_key


def process_sft_example(question: str, answer: str, tokenizer: Any) -> t.Datum:
    """Prompt tokens at weight 0, the answer and EOS at weight 1, shifted for teacher forcing."""
    prompt_tokens: list[int] = tokenizer.encode(f"Question: {question}\nAnswer:")
    completion_tokens: list[int] = [*tokenizer.encode(f" {answer}"), tokenizer.eos_token_id]
    tokens = prompt_tokens + completion_tokens
    weights = [0.0] * len(prompt_tokens) + [1.0] * len(completion_tokens)
    return t.Datum(
        model_input=t.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights[1:]},
    )


async def answer(sampler: SamplingClient, tokenizer: Any, question: str) -> str:
    """The model's greedy answer to one question."""
    prompt = t.ModelInput.from_ints(tokenizer.encode(f"Question: {question}\nAnswer:"))
    params = t.SamplingParams(max_tokens=8, temperature=0.0, stop=[tokenizer.eos_token_id])
    response = await sampler.sample(prompt, num_samples=1, sampling_params=params)
    text: str = tokenizer.decode(response.sequences[0].tokens, skip_special_tokens=True)
    return text.strip()


@dataclass
class Outcome:
    """Loss per trained token at each step, and the share of questions answered right."""

    losses: list[float]
    """Over the last pass (the last ``batches`` steps, each before its update), per step."""
    accuracy: float


async def quickstart(
    base_url: str,
    api_key: str | None,
    *,
    steps: int,
    lr: float,
    max_operand: int,
    seed: int | None,
    batches: int = 3,
) -> Outcome:
    """Train on every ``a * b`` with ``a, b`` in ``1..max_operand``, then ask each question."""
    questions = [
        (f"What is {a} * {b}?", str(a * b))
        for a in range(1, max_operand + 1)
        for b in range(1, max_operand + 1)
    ]
    async with ServiceClient(base_url=base_url, api_key=api_key) as service:
        training = await service.create_lora_training_client(
            base_model="Qwen/Qwen3-0.6B", rank=16, seed=seed
        )
        tokenizer = await training.get_tokenizer()
        examples = [process_sft_example(q, a, tokenizer) for q, a in questions]
        n = max(1, min(batches, len(examples)))
        parts = [examples[i::n] for i in range(n)]  # interleaved: every a in every batch
        n_trained = [
            sum(float(d.loss_fn_inputs["weights"].to_numpy().sum()) for d in p) for p in parts
        ]
        adam = t.AdamParams(learning_rate=lr)

        # loss:sum is a sum over a batch's trained tokens: divided by their number
        # it compares across batches; summed over a pass it covers every question.
        last_pass: deque[tuple[float, float]] = deque(maxlen=n)
        losses: list[float] = []
        every = max(1, steps // 10)
        for step in range(1, steps + 1):
            i = (step - 1) % n
            forward_backward = await training.forward_backward(parts[i], "cross_entropy")
            optim_step = await training.optim_step(adam)  # submitted before the first finished
            last_pass.append(((await forward_backward).loss, n_trained[i]))
            await optim_step
            losses.append(sum(x for x, _ in last_pass) / sum(k for _, k in last_pass))
            if step in {1, steps} or step % every == 0:
                print(f"step {step:4d}/{steps}  loss per token {losses[-1]:.4f}", flush=True)

        sampler = await training.save_weights_and_get_sampling_client()
        answers: dict[str, str] = {}

        async def ask(question: str) -> None:
            answers[question] = await answer(sampler, tokenizer, question)

        async with anyio.create_task_group() as tg:  # every question at once
            for question, _ in questions:
                tg.start_soon(ask, question)

    print_grid(answers, max_operand)
    right = sum(answers[question] == expected for question, expected in questions)
    print(f"{right}/{len(questions)} answered correctly")
    return Outcome(losses=losses, accuracy=right / len(questions))


def readable(text: str) -> str:
    """``text`` with control characters escaped: an untrained model samples arbitrary bytes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def print_grid(answers: dict[str, str], max_operand: int, width: int = 4) -> None:
    """The model's multiplication table: row a, column b; ``*`` marks a wrong answer."""
    print("the model's answers (row a, column b; * marks a wrong one, '' an empty one):")
    print("   " + "".join(f"{b:>{width + 2}}" for b in range(1, max_operand + 1)))
    for a in range(1, max_operand + 1):
        cells: list[str] = []
        for b in range(1, max_operand + 1):
            got = answers[f"What is {a} * {b}?"]
            mark = "" if got == str(a * b) else "*"
            shown = (readable(got)[:width] or "''") + mark
            cells.append(f"{shown:>{width + 2}}")
        print(f"{a:>3}" + "".join(cells))


def main(argv: list[str] | None = None) -> Outcome:
    """Parse the options, pick the endpoint and run :func:`quickstart`."""
    parser = argparse.ArgumentParser(description="SFT quickstart with the async client")
    parser.add_argument("--steps", type=int, default=270, help="training steps")
    parser.add_argument("--lr", type=float, default=2e-3, help="suits the local tiny model")
    parser.add_argument(
        "--batches", type=int, default=3, help="each step trains on 1/N of the questions"
    )
    parser.add_argument("--max-operand", type=int, default=9)
    parser.add_argument(
        "--seed", type=int, default=0, help="the LoRA's initial weights; -1 lets the server pick"
    )
    args = parser.parse_args(argv)
    with endpoint() as (base_url, api_key):
        return anyio.run(
            lambda: quickstart(
                base_url,
                api_key,
                steps=args.steps,
                lr=args.lr,
                max_operand=args.max_operand,
                seed=None if args.seed < 0 else args.seed,
                batches=args.batches,
            )
        )


if __name__ == "__main__":
    main()
