"""The client against a server injecting every transport-level fault at once: all work completes, once."""

from __future__ import annotations

import re
from collections.abc import Iterator

import anyio
import pytest

import mint_async
from mint_async import ServiceClient
from mint_async import types as t
from mint_async.server import FaultConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

pytestmark = pytest.mark.anyio

# Every fault that a correct client can absorb. (error_result is a definitive
# failure by protocol — RequestFailedError is never retried — and has its own test.)
FAULTS = (
    "submit_5xx=0.08,sample_429=0.08,drop_after_accept=0.08,retrieve_408=0.1,"
    "try_again=0.1,retrieve_410=0.05,slow_poll=0.02:0.05,seed=11"
)
SAMPLES = 2000
TRAIN_STEPS = 200


@pytest.fixture
def faulty() -> Iterator[LoopbackServer]:
    """A loopback server with the fault mix above."""
    with serve_loopback(ServerConfig(faults=FaultConfig.parse(FAULTS), poll_hold=2.0)) as srv:
        yield srv


def _datum(i: int) -> t.Datum:
    tokens = [1 + i % 7, 2, 3, 4]
    return t.Datum(
        model_input=t.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [0.0, 1.0, 1.0]},
    )


@pytest.mark.slow
async def test_everything_completes_exactly_once(faulty: LoopbackServer) -> None:
    """2,000 samples and 200 training steps complete; each request executed once; training in seq order."""
    results: list[t.SampleResponse] = []
    losses: list[float] = []
    async with ServiceClient(base_url=faulty.base_url, api_key=faulty.api_key) as svc:
        tc = await svc.create_lora_training_client("Qwen/Qwen3-0.6B", rank=4)
        sc = await svc.create_sampling_client(base_model="Qwen/Qwen3-0.6B")
        limiter = anyio.CapacityLimiter(128)
        params = t.SamplingParams(max_tokens=4)

        async def one_sample(i: int) -> None:
            async with limiter:
                results.append(
                    await sc.sample(t.ModelInput.from_ints([1, 2, i % 50 + 3]), 1, params)
                )

        async def train() -> None:
            for step in range(TRAIN_STEPS):
                fb = await tc.forward_backward([_datum(step)])
                opt = await tc.optim_step(t.AdamParams(learning_rate=1e-3))
                losses.append((await fb).loss)
                await opt

        async with anyio.create_task_group() as tg:
            tg.start_soon(train)
            for i in range(SAMPLES):
                tg.start_soon(one_sample, i)
        model_id = tc.model_id

    assert len(results) == SAMPLES and all(len(r.sequences) == 1 for r in results)
    assert len(losses) == TRAIN_STEPS
    counts = faulty.execution_counts()
    assert counts and all(n == 1 for n in counts.values()), {
        k: v for k, v in counts.items() if v != 1
    }
    fired = faulty.statistics().faults
    assert all(
        fired.get(name, 0) > 0
        for name in (
            "submit_5xx",
            "sample_429",
            "drop_after_accept",
            "retrieve_408",
            "try_again",
            "retrieve_410",
        )
    ), fired
    # The server executed this model's requests in seq_id order (its log keeps execution order).
    seqs = [
        int(m.group(1))
        for rid in counts
        if (m := re.fullmatch(re.escape(model_id) + r":(\d+)", rid))
    ]
    assert seqs == sorted(seqs) and seqs[-1] == 2 * TRAIN_STEPS


async def test_error_results_raise_with_category() -> None:
    """An injected error result surfaces as RequestFailedError carrying the category."""
    config = ServerConfig(faults=FaultConfig.parse("error_result=1.0:user,seed=1"))
    with serve_loopback(config) as srv:
        async with ServiceClient(base_url=srv.base_url, api_key=srv.api_key) as svc:
            sc = await svc.create_sampling_client()
            with pytest.raises(mint_async.RequestFailedError) as info:
                await sc.sample(t.ModelInput.from_ints([1, 2]), 1, t.SamplingParams(max_tokens=2))
    assert info.value.category == "user"
