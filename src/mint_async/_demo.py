"""``mint-async demo``: the MinT SFT quickstart, end to end, through the async client.

The task is the MinT SFT guide's: teach the model to answer
``"Question: What is a * b?\\nAnswer:"`` with ``" {a*b}"`` and end-of-sequence,
prompt tokens at weight 0. Without ``--base-url`` (or ``MINT_BASE_URL``) the
demo starts the local server on a loopback port — the ``torch`` backend, a
real tiny Qwen3, when torch is installed, else the numpy ``synthetic`` one —
and stops it at the end; with one, it runs the same against that endpoint.

Steps are pipelined: the next ``forward_backward``/``optim_step`` pair is
submitted before the previous one's result arrives (the server runs them in
order), and the evaluation samples every question concurrently.

On the local torch backend a step trains on a third of the questions (three
steps per pass over the table): a 27-example step costs little more than a
third of an 81-example one, and three updates per pass learn the table in
about 70-80 passes where whole-table steps need 120-150. The learning rate
holds for two thirds of the steps, then falls linearly to a tenth
(:func:`learning_rate_at`): with it 90 passes (270 steps) answered 81/81 for
every seed tried (0-8), where a constant rate left seeds 3 and 6 a few short —
in about two thirds of the time 160 whole-table steps took.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Final, TextIO

import anyio

from . import types as t
from ._demo_report import Example, Reporter, accuracy_line, print_table
from ._exceptions import MintError
from ._futures import APIFuture
from ._sampling import SamplingClient
from ._service import ServiceClient
from ._training import ForwardBackwardFuture, TrainingClient

__all__ = ["DemoResult", "DemoSettings", "Example", "main", "run", "run_demo"]

LOCAL_DEFAULTS: Final = {"torch": (270, 2e-3, 3), "synthetic": (60, 5e-2, 1)}
"""(steps, peak learning rate, batches per pass) per local backend: tuned for the tiny models.

torch: 225 steps (75 passes) left seeds 0, 6 and 7 short of 81/81; constant rates of 4e-3
and up stall near 0.5-0.8 loss per token.
"""
REMOTE_DEFAULTS: Final = (40, 1e-4, 1)
"""(steps, learning rate, batches per pass) for a real endpoint (a LoRA on Qwen3-0.6B)."""


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """What the demo trains, and where."""

    base_url: str | None = None
    """A MinT / Tinker endpoint; ``None`` starts the local server."""
    api_key: str | None = None
    backend: str = "auto"
    """Local server backend: ``auto`` (torch if installed), ``torch`` or ``synthetic``."""
    base_model: str = "Qwen/Qwen3-0.6B"
    rank: int = 16
    steps: int | None = None
    """``None``: the default of the backend (or of a remote endpoint)."""
    learning_rate: float | None = None
    batches: int | None = None
    """Each pass over the questions is split into this many batches, one step each;
    ``None``: the default of the backend (3 on the local torch one, else 1)."""
    max_operand: int = 9
    """Questions cover ``a * b`` for ``a, b`` in ``1..max_operand``."""
    seed: int = 0
    in_flight: int = 2
    """Training steps submitted ahead of the one being waited for."""
    show_table: bool = True


@dataclass(kw_only=True)
class DemoResult:
    """What a demo run measured."""

    target: str
    """``torch``, ``synthetic`` or the remote base URL."""
    losses: list[float] = field(default_factory=list[float])
    """``loss:sum`` per trained token, one per step, over the last pass's steps (the last
    ``batches`` of them, each before its update): the loss over every question."""
    before: list[Example] = field(default_factory=list[Example])
    after: list[Example] = field(default_factory=list[Example])
    seconds: float = 0.0

    @staticmethod
    def accuracy(examples: Sequence[Example]) -> float:
        """The fraction answered correctly."""
        return sum(e.correct for e in examples) / len(examples) if examples else 0.0


def sft_example(question: str, answer: str, tokenizer: Any) -> t.Datum:
    """The MinT SFT guide's ``process_sft_example``: prompt at weight 0, answer + EOS at 1."""
    prompt = f"Question: {question}\nAnswer:"
    completion = f" {answer}"
    prompt_tokens: list[int] = tokenizer.encode(prompt, add_special_tokens=True)
    completion_tokens: list[int] = tokenizer.encode(completion, add_special_tokens=False)
    completion_tokens.append(tokenizer.eos_token_id)
    all_tokens = prompt_tokens + completion_tokens
    all_weights = [0] * len(prompt_tokens) + [1] * len(completion_tokens)
    # Shift for teacher forcing: input = all_tokens[:-1], target = all_tokens[1:].
    return t.Datum(
        model_input=t.ModelInput.from_ints(all_tokens[:-1]),
        loss_fn_inputs={"target_tokens": all_tokens[1:], "weights": all_weights[1:]},
    )


def questions(max_operand: int) -> list[tuple[str, str]]:
    """``("What is a * b?", "a*b")`` for every pair of operands in ``1..max_operand``."""
    return [
        (f"What is {a} * {b}?", str(a * b))
        for a in range(1, max_operand + 1)
        for b in range(1, max_operand + 1)
    ]


async def evaluate(
    sampler: SamplingClient, tokenizer: Any, pairs: Sequence[tuple[str, str]]
) -> list[Example]:
    """Greedy answers to every question, sampled concurrently.

    At most one token more than the longest answer is sampled: enough to see a
    wrong continuation, and an untrained model (which never stops) costs no more.
    """
    longest = max(len(tokenizer.encode(f" {e}", add_special_tokens=False)) for _, e in pairs)
    params = t.SamplingParams(
        max_tokens=longest + 1, temperature=0.0, stop=[tokenizer.eos_token_id]
    )
    answers: list[str] = [""] * len(pairs)

    async def ask(i: int, question: str) -> None:
        prompt = tokenizer.encode(f"Question: {question}\nAnswer:", add_special_tokens=True)
        resp = await sampler.sample(t.ModelInput.from_ints(prompt), 1, params)
        text: str = tokenizer.decode(resp.sequences[0].tokens, skip_special_tokens=True)
        answers[i] = text.strip()

    async with anyio.create_task_group() as tg:
        for i, (question, _) in enumerate(pairs):
            tg.start_soon(ask, i, question)
    return [
        Example(question=q, expected=e, sampled=a) for (q, e), a in zip(pairs, answers, strict=True)
    ]


def learning_rate_at(step: int, steps: int, peak: float) -> float:
    """``peak`` for the first two thirds of ``steps``, then linearly down towards ``peak / 10``."""
    done = step / steps
    return peak if done < 2 / 3 else peak * (1 - 0.9 * 3 * (done - 2 / 3))


def _trained_tokens(batch: Sequence[t.Datum]) -> float:
    return sum(float(d.loss_fn_inputs["weights"].to_numpy().sum()) for d in batch)


async def _train(
    tc: TrainingClient,
    batches: list[list[t.Datum]],
    lr: float,
    steps: int,
    settings: DemoSettings,
    report: Reporter,
) -> list[float]:
    tokens = [_trained_tokens(batch) for batch in batches]
    pending: deque[tuple[int, ForwardBackwardFuture, APIFuture[t.OptimStepResponse]]] = deque()
    # (loss:sum, trained tokens) of the last pass's steps: one batch's loss alone
    # would jump from batch to batch, the pass's is comparable from step to step.
    last_pass: deque[tuple[float, float]] = deque(maxlen=len(batches))
    losses: list[float] = []

    async def settle() -> None:
        i, fb, opt = pending.popleft()
        last_pass.append(((await fb).loss, tokens[i]))
        await opt
        losses.append(sum(x for x, _ in last_pass) / sum(n for _, n in last_pass))
        report.step(len(losses), steps, losses[-1])

    for step in range(steps):
        i = step % len(batches)
        # Submitting returns as soon as the server has the request: keep a few
        # steps queued so the server never waits for this loop.
        adam = t.AdamParams(learning_rate=learning_rate_at(step, steps, lr))
        pending.append(
            (i, await tc.forward_backward(batches[i], "cross_entropy"), await tc.optim_step(adam))
        )
        if len(pending) > settings.in_flight:
            await settle()
    while pending:
        await settle()
    return losses


async def run_demo(
    settings: DemoSettings, *, base_url: str, api_key: str | None, target: str, report: Reporter
) -> DemoResult:
    """Train on the multiplication table at ``base_url``, evaluating before and after."""
    start = time.perf_counter()
    result = DemoResult(target=target)
    remote = target not in LOCAL_DEFAULTS
    default_steps, default_lr, default_batches = (
        REMOTE_DEFAULTS if remote else LOCAL_DEFAULTS[target]
    )
    steps = settings.steps if settings.steps is not None else default_steps
    lr = settings.learning_rate if settings.learning_rate is not None else default_lr
    async with ServiceClient(base_url=base_url, api_key=api_key) as svc:
        tc = await svc.create_lora_training_client(
            settings.base_model, rank=settings.rank, seed=settings.seed
        )
        tokenizer = await tc.get_tokenizer()
        pairs = questions(settings.max_operand)
        examples = [sft_example(q, a, tokenizer) for q, a in pairs]
        n_batches = max(1, min(settings.batches or default_batches, len(examples)))
        # Interleaved, so every batch has every first operand.
        batches = [examples[i::n_batches] for i in range(n_batches)]
        report.line(
            f"model: {settings.base_model}, LoRA rank {settings.rank}; AdamW lr {lr:g}, "
            f"down to {lr / 10:g} over the last third"
        )
        report.line(_plan(steps, len(examples), n_batches))
        result.before = await evaluate(
            await tc.save_weights_and_get_sampling_client(), tokenizer, pairs
        )
        report.line(accuracy_line("before training", result.before))
        result.losses = await _train(tc, batches, lr, steps, settings, report)
        report.done()
        sampler = await tc.save_weights_and_get_sampling_client()
        result.after = await evaluate(sampler, tokenizer, pairs)
    result.seconds = time.perf_counter() - start
    first, last = result.losses[0], result.losses[-1]
    report.line(f"loss per token {first:.4f} -> {last:.4f} ({100 * (1 - last / first):.0f}% lower)")
    report.line(accuracy_line("after training", result.after))
    if settings.show_table:
        print_table(result.after, report.out)
    return result


def _plan(steps: int, n_examples: int, n_batches: int) -> str:
    """``"training: 270 steps of 27 questions (3 per pass over all 81: 90 passes)"``."""
    if n_batches == 1:
        return f"training: {steps} steps of all {n_examples} questions"
    small, large = n_examples // n_batches, -(-n_examples // n_batches)
    size = f"{small}" if small == large else f"{small}-{large}"
    return (
        f"training: {steps} steps of {size} questions "
        f"({n_batches} per pass over all {n_examples}: {steps / n_batches:g} passes)"
    )


def _torch_backend_installed() -> bool:
    """torch, safetensors and a transformers with Qwen3 (4.51+), without importing them."""
    if any(importlib.util.find_spec(m) is None for m in ("torch", "safetensors", "transformers")):
        return False
    try:
        major, minor = (int(x) for x in metadata.version("transformers").split(".")[:2])
    except (ValueError, metadata.PackageNotFoundError):
        return False
    return (major, minor) >= (4, 51)


def _local_backend(requested: str) -> str:
    if requested != "auto":
        return requested
    return "torch" if _torch_backend_installed() else "synthetic"


@contextlib.contextmanager
def _local_server(backend: str, seed: int, report: Reporter) -> Generator[tuple[str, str]]:
    """The embedded server on loopback for the block: ``(base_url, api_key)``."""
    from .server import ServerConfig  # noqa: PLC0415 - the server only when needed
    from .testing import serve_loopback  # noqa: PLC0415

    what = {
        "torch": "torch backend (a tiny Qwen3, trained for real; loading torch takes a few seconds)",
        "synthetic": "synthetic backend (a numpy bigram model; install torch for a real one)",
    }.get(backend, f"{backend} backend")
    report.line(f"local server: starting, {what}")
    with serve_loopback(ServerConfig(backend=backend, seed=seed)) as server:
        report.line(f"local server: ready at {server.base_url}")
        yield server.base_url, server.api_key
    report.line("local server stopped")


def run(
    settings: DemoSettings, *, out: TextIO | None = None, err: TextIO | None = None
) -> DemoResult:
    """Run the demo (starting and stopping the local server unless ``settings.base_url``).

    Results go to ``out`` and the progress bar to ``err`` (default: the current
    ``sys.stdout`` / ``sys.stderr``).
    """
    start = time.perf_counter()
    report = Reporter(out or sys.stdout, err or sys.stderr)
    report.line('mint-async demo: SFT on "What is a * b?" (the MinT SFT guide\'s task)')
    base_url = settings.base_url or os.environ.get("MINT_BASE_URL")
    if base_url:
        report.line(f"endpoint: {base_url}")
        result = anyio.run(
            lambda: run_demo(
                settings,
                base_url=base_url,
                api_key=settings.api_key,
                target=base_url,
                report=report,
            )
        )
    else:
        backend = _local_backend(settings.backend)
        with _local_server(backend, settings.seed, report) as (url, key):
            result = anyio.run(
                lambda: run_demo(settings, base_url=url, api_key=key, target=backend, report=report)
            )
    report.line(f"done in {time.perf_counter() - start:.1f} s")
    return result


def main(args: argparse.Namespace) -> int:
    """Entry point of ``mint-async demo``; 0 on success, 1 on a MinT error."""
    settings = DemoSettings(
        base_url=args.base_url,
        api_key=args.api_key,
        backend=args.backend,
        base_model=args.base_model,
        rank=args.rank,
        steps=args.steps,
        learning_rate=args.lr,
        batches=args.batches,
        max_operand=args.max_operand,
        seed=args.seed,
        show_table=not args.no_table,
    )
    try:
        run(settings)
    except MintError as exc:
        print(f"mint-async demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
