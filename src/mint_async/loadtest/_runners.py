"""How each workload runs one operation, on the client's own primitives.

Sampling goes through ``SamplingClient.build_request`` / ``submit`` under
``reporting_retries`` — the calls :class:`~mint_async.SamplePipeline` makes — but
without a pipeline: the load model, not an adaptive window, decides how much
is in flight, and nothing is retained per request (a pipeline keeps every
handle and result until it closes; a load test may run millions of requests).

Training goes through ``TrainingClient`` (its seq-order gate pipelines
concurrent calls on one run). Data (prompts, batches) is random but seeded.
"""

from __future__ import annotations

import abc
import itertools
import random
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
import numpy as np
import numpy.typing as npt

from .. import types as t
from .._context import reporting_retries
from .._futures import APIFuture
from .._sampling import SamplingClient
from .._service import ServiceClient
from .._training import TrainingClient
from ._context import OpContext, Pending
from ._recorder import QueueStateTracker
from ._workloads import ForwardBackwardWorkload, RLStepWorkload, SampleWorkload, Workload

__all__ = ["Runner", "make_runner"]

_POOL_TOKENS: Final = 1 << 16
_BATCH_CACHE: Final = 32

I64 = npt.NDArray[np.int64]


class _Tokens:
    """Random prompt tokens: slices of one seeded pool (cheap, and different per request)."""

    def __init__(self, vocab: int, seed: int) -> None:
        self._pool: I64 = np.random.default_rng(seed).integers(0, vocab, _POOL_TOKENS)

    def take(self, rng: random.Random, n: int) -> I64:
        if n >= _POOL_TOKENS:
            return np.resize(self._pool, n)
        start = rng.randrange(_POOL_TOKENS - n)
        return self._pool[start : start + n]


def make_datum(tokens: I64, loss_fn: t.LossFnType, *, prompt_len: int, advantage: float) -> t.Datum:
    """A datum over ``tokens`` (the first ``prompt_len`` are prompt: weight/advantage 0)."""
    n = len(tokens) - 1
    mask = np.zeros(n, dtype=np.float32)
    mask[max(0, prompt_len - 1) :] = 1.0
    inputs: dict[str, t.LossFnInputValue] = {"target_tokens": tokens[1:]}
    if loss_fn == "cross_entropy":
        inputs["weights"] = mask
    else:
        inputs["logprobs"] = np.full(n, -1.0, dtype=np.float32) * mask
        inputs["advantages"] = mask * np.float32(advantage)
    return t.Datum(model_input=t.ModelInput.from_ints(tokens[:-1]), loss_fn_inputs=inputs)


class Runner(abc.ABC):
    """One workload: set up its clients once, then run operations."""

    def __init__(self, workload: Workload, rng: random.Random, tracker: QueueStateTracker) -> None:
        self.workload = workload
        self.name = workload.name
        self._rng = rng
        self._tracker = tracker
        self._tokens = _Tokens(workload.vocab, rng.randrange(2**32))

    def _watch(self, client: SamplingClient | TrainingClient) -> None:
        client.on_queue_state_change(self._tracker.observer(id(client)))

    @abc.abstractmethod
    async def setup(self, svc: ServiceClient, slots: int) -> None:
        """Create the clients (not measured); ``slots``: operations that may run at once."""

    @abc.abstractmethod
    async def run(self, ctx: OpContext) -> None:
        """One operation; raises the error that ended it."""


class SampleRunner(Runner):
    """One ``sample`` request per operation."""

    workload: SampleWorkload

    async def setup(self, svc: ServiceClient, slots: int) -> None:
        self._sc = await svc.create_sampling_client(base_model=self.workload.base_model)
        self._watch(self._sc)
        self._params: dict[int, t.SamplingParams] = {}

    def _sampling_params(self, max_tokens: int) -> t.SamplingParams:
        params = self._params.get(max_tokens)
        if params is None:
            params = self._params[max_tokens] = t.SamplingParams(
                max_tokens=max_tokens, temperature=self.workload.temperature
            )
        return params

    async def run(self, ctx: OpContext) -> None:
        w, rng = self.workload, self._rng
        n_prompt = w.prompt_tokens.draw(rng)
        params = self._sampling_params(w.max_tokens.draw(rng))
        prompt = t.ModelInput.from_ints(self._tokens.take(rng, n_prompt))
        resp = await sample(ctx, self._sc, prompt, w.num_samples.draw(rng), params)
        del resp


async def sample(
    ctx: OpContext, sc: SamplingClient, prompt: t.ModelInput, n: int, params: t.SamplingParams
) -> t.SampleResponse:
    """One sample request, timed and counted (output tokens included)."""
    request = sc.build_request(prompt, n, params)

    async def send() -> APIFuture[t.SampleResponse]:
        with reporting_retries(ctx.on_retry):  # resubmissions after a 410 included
            return await sc.submit(request)

    resp = await ctx.request("sample", send, input_tokens=prompt.length)
    ctx.output_tokens("sample", sum(len(s.tokens_np) for s in resp.sequences))
    return resp


class ForwardBackwardRunner(Runner):
    """One ``forward_backward`` per operation, round-robin over the training runs."""

    workload: ForwardBackwardWorkload

    async def setup(self, svc: ServiceClient, slots: int) -> None:
        w = self.workload
        self._tcs = [
            await svc.create_lora_training_client(w.base_model, rank=w.lora_rank, seed=i)
            for i in range(w.models)
        ]
        for tc in self._tcs:
            self._watch(tc)
        self._next = 0
        self._batches: OrderedDict[tuple[int, int], list[t.Datum]] = OrderedDict()

    def _batch(self, size: int, seq_len: int) -> list[t.Datum]:
        """A cached batch per shape (building datums costs client CPU a server never sees)."""
        key = (size, seq_len)
        batch = self._batches.get(key)
        if batch is None:
            batch = [
                make_datum(
                    self._tokens.take(self._rng, seq_len + 1),
                    self.workload.loss_fn,
                    prompt_len=0,
                    advantage=self._rng.gauss(0.0, 1.0),
                )
                for _ in range(size)
            ]
            self._batches[key] = batch
            if len(self._batches) > _BATCH_CACHE:
                self._batches.popitem(last=False)
        return batch

    async def run(self, ctx: OpContext) -> None:
        w, rng = self.workload, self._rng
        tc = self._tcs[self._next]
        self._next = (self._next + 1) % len(self._tcs)
        size, seq_len = w.batch_size.draw(rng), w.seq_len.draw(rng, minimum=2)
        batch = self._batch(size, seq_len)
        await ctx.request(
            "forward_backward",
            lambda: tc.forward_backward(batch, w.loss_fn),
            training_tokens=size * seq_len,
        )


class _Slot:
    """One training run of the RL workload and the sampler of its latest weights."""

    def __init__(self, tc: TrainingClient, sc: SamplingClient) -> None:
        self.tc = tc
        self.sc = sc


class RLStepRunner(Runner):
    """One RL round per operation: samples, pipelined training, weight sync."""

    workload: RLStepWorkload

    async def setup(self, svc: ServiceClient, slots: int) -> None:
        w = self.workload
        models = w.models if w.models is not None else slots
        self._free: list[_Slot] = []
        for i in range(models):
            tc = await svc.create_lora_training_client(w.base_model, rank=w.lora_rank, seed=i)
            self._watch(tc)
            sc = await tc.save_weights_and_get_sampling_client()
            self._watch(sc)
            self._free.append(_Slot(tc, sc))
        self._available = anyio.Semaphore(models)
        self._adam = t.AdamParams(learning_rate=w.learning_rate)

    @asynccontextmanager
    async def _lease(self) -> AsyncGenerator[_Slot]:
        # A round's steps depend on each other: each run serves one round at a time.
        async with self._available:
            slot = self._free.pop()
            try:
                yield slot
            finally:
                self._free.append(slot)

    async def run(self, ctx: OpContext) -> None:
        w, rng = self.workload, self._rng
        async with self._lease() as slot:
            prompts = [
                t.ModelInput.from_ints(self._tokens.take(rng, w.prompt_tokens.draw(rng, minimum=2)))
                for _ in range(w.groups)
            ]
            params = t.SamplingParams(max_tokens=w.max_tokens.draw(rng), temperature=1.0)
            responses: list[t.SampleResponse | None] = [None] * w.groups

            async def one(i: int) -> None:
                responses[i] = await sample(ctx, slot.sc, prompts[i], w.group_size, params)

            try:
                async with anyio.create_task_group() as tg:
                    for i in range(w.groups):
                        tg.start_soon(one, i)
            except BaseExceptionGroup as group:
                raise _first(group) from None
            data = self._datums(prompts, responses)
            await self._train(ctx, slot.tc, data)
            slot.sc = await ctx.call(
                "save_weights_for_sampler", slot.tc.save_weights_and_get_sampling_client
            )
            self._watch(slot.sc)

    def _datums(
        self, prompts: list[t.ModelInput], responses: list[t.SampleResponse | None]
    ) -> list[t.Datum]:
        """Prompt + completion datums with group-relative (random) advantages."""
        data: list[t.Datum] = []
        for prompt, resp in zip(prompts, responses, strict=True):
            assert resp is not None
            rewards = [self._rng.random() for _ in resp.sequences]
            mean = sum(rewards) / max(1, len(rewards))
            head = np.asarray(prompt.to_ints(), dtype=np.int64)
            for seq, reward in zip(resp.sequences, rewards, strict=True):
                if len(seq.tokens_np) == 0:
                    continue
                tokens = np.concatenate([head, seq.tokens_np.astype(np.int64)])
                data.append(
                    make_datum(
                        tokens,
                        self.workload.loss_fn,
                        prompt_len=len(head),
                        advantage=reward - mean,
                    )
                )
        return data

    async def _train(self, ctx: OpContext, tc: TrainingClient, data: list[t.Datum]) -> None:
        """forward_backward on each minibatch and optim_step, submitted back to back."""
        if not data:
            return
        parts = min(self.workload.minibatches, len(data))
        bounds = np.linspace(0, len(data), parts + 1).astype(int)
        pending: list[Pending[Any]] = []
        try:
            for lo, hi in itertools.pairwise(bounds.tolist()):
                batch = data[lo:hi]
                tokens = sum(d.model_input.length for d in batch)
                pending.append(
                    await ctx.submit(
                        "forward_backward",
                        lambda b=batch: tc.forward_backward(b, self.workload.loss_fn),  # type: ignore[misc]
                        training_tokens=tokens,
                    )
                )
            pending.append(await ctx.submit("optim_step", lambda: tc.optim_step(self._adam)))
            for p in pending:
                await ctx.result(p)
        finally:
            for p in pending:
                ctx.abandon(p)  # no-op for those already counted


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)  # pyright: ignore[reportUnknownArgumentType]
        if not isinstance(exc, anyio.get_cancelled_exc_class()):
            return exc
    return group.exceptions[0]


def make_runner(workload: Workload, rng: random.Random, tracker: QueueStateTracker) -> Runner:
    """The runner of ``workload``."""
    match workload:
        case SampleWorkload():
            return SampleRunner(workload, rng, tracker)
        case ForwardBackwardWorkload():
            return ForwardBackwardRunner(workload, rng, tracker)
        case RLStepWorkload():
            return RLStepRunner(workload, rng, tracker)
