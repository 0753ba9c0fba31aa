"""The client hook the load tester reads: ``APIFuture.total_polls`` over requests and attempts."""

from __future__ import annotations

from typing import Any

import pytest

from mint_async import APIFuture, ServiceClient
from mint_async import types as t
from mint_async._context import reporting_retries
from mint_async.server import FaultConfig, ServerConfig
from mint_async.testing import serve_loopback

pytestmark = pytest.mark.anyio

PROMPT = t.ModelInput.from_ints([1, 2, 3])
PARAMS = t.SamplingParams(max_tokens=2)


async def test_sample_total_polls_cover_resubmitted_attempts() -> None:
    """Every poll is counted once: one answering poll per sample, plus one per injected try_again/410."""
    config = ServerConfig(faults=FaultConfig.parse("try_again=0.4,retrieve_410=0.15,seed=5"))
    with serve_loopback(config) as srv:
        async with ServiceClient(base_url=srv.base_url, api_key=srv.api_key) as svc:
            sc = await svc.create_sampling_client()
            before = srv.statistics().faults
            futures = [await sc.submit_sample(PROMPT, 1, PARAMS) for _ in range(40)]
            for fut in futures:
                await fut
            after = srv.statistics().faults
    fired = {k: after[k] - before[k] for k in ("try_again", "retrieve_410")}
    assert fired["retrieve_410"] > 0 and fired["try_again"] > 0
    assert sum(f.total_polls for f in futures) == 40 + fired["try_again"] + fired["retrieve_410"]
    assert sum(f.resubmits for f in futures) == fired["retrieve_410"]
    resubmitted = [f for f in futures if f.resubmits]
    assert all(f.total_polls > f.polls for f in resubmitted)


async def test_training_total_polls_sum_their_parts() -> None:
    """forward_backward (a gather of chunks) and optim_step (a mapped future) report their polls."""
    config = ServerConfig(faults=FaultConfig.parse("try_again=0.5,seed=2"))
    datum = t.Datum(
        model_input=t.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [1.0, 1.0, 1.0]},
    )
    with serve_loopback(config) as srv:
        async with ServiceClient(base_url=srv.base_url, api_key=srv.api_key) as svc:
            tc = await svc.create_lora_training_client(rank=4)
            before = srv.statistics().faults["try_again"]
            futures: list[APIFuture[Any]] = []
            for _ in range(10):
                futures.append(await tc.forward_backward([datum]))
                futures.append(await tc.optim_step())
            for fut in futures:
                await fut
            fired = srv.statistics().faults["try_again"] - before
    assert fired > 0
    assert sum(f.total_polls for f in futures) == 20 + fired


async def test_sample_future_reports_retries_of_resubmissions() -> None:
    """The reporting_retries observer of a sample's submit also hears the 429s of a 410 resubmission."""
    config = ServerConfig(faults=FaultConfig.parse("sample_429=0.3,retrieve_410=0.3,seed=9"))
    statuses: list[int | None] = []
    with serve_loopback(config) as srv:
        async with ServiceClient(base_url=srv.base_url, api_key=srv.api_key) as svc:
            sc = await svc.create_sampling_client()
            for _ in range(30):
                request = sc.build_request(PROMPT, 1, PARAMS)
                with reporting_retries(statuses.append):
                    fut = await sc.submit(request)
                await fut  # awaited outside the block: the future kept the observer
            fired = srv.statistics().faults
    assert fired["retrieve_410"] > 0
    assert statuses.count(429) == fired["sample_429"] > 0
