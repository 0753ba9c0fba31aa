"""Pipelines against the local server: backpressure at the cap, AIMD, exactly-once, order, clean cancellation.

Every test runs in each wire mode of ``_support.WIRES`` (JSON, protobuf,
protobuf+zstd; the client in ``wire="auto"``): its servers get the mode's flags,
and the tests that receive results check from the server's counters that they
travelled in the mode's encoding (the training ones, that their bodies did too).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import anyio
import pytest

import mint_async
from mint_async import types as t
from mint_async.server import FaultConfig, LatencyConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

from ._support import WIRES, Mode, check_wire

pytestmark = pytest.mark.anyio

PROMPT = t.ModelInput.from_ints([1, 2, 3])
PARAMS = t.SamplingParams(max_tokens=3)


@pytest.fixture(scope="module", params=WIRES, ids=[m.name for m in WIRES])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Each wire mode in turn (module-scoped: the tests are grouped by mode)."""
    return cast("Mode", request.param)


@pytest.fixture(scope="module")
def slow_server(mode: Mode) -> Iterator[LoopbackServer]:
    """Samples take 20-60 ms, so requests pile up in flight (one server per mode)."""
    config = ServerConfig(latency=LatencyConfig.parse("sample=uniform(0.02,0.06)"), poll_hold=5.0)
    with serve_loopback(mode.config(config)) as srv:
        yield srv


async def test_backpressure_holds_in_flight_at_the_cap(
    slow_server: LoopbackServer, mode: Mode
) -> None:
    """The server never sees more than max_in_flight samples outstanding; submit() blocks instead."""
    before = slow_server.statistics()
    async with mode.service(slow_server) as svc:
        sc = await svc.create_sampling_client()
        slow_server.reset_peaks()
        peak_client = 0
        async with sc.pipeline(max_in_flight=6) as pipe:
            handles: list[mint_async.Handle[t.SampleResponse]] = []
            for i in range(60):
                handles.append(await pipe.submit(PROMPT, 1, PARAMS, tag=i))
                peak_client = max(peak_client, pipe.statistics().in_flight)
            done = [h async for h in pipe.as_completed()]
            stats = pipe.statistics()
    assert peak_client == 6
    assert slow_server.statistics().peak_outstanding <= 6
    assert len(done) == 60 and {h.tag for h in done} == set(range(60))
    assert stats.completed == 60 and stats.failed == 0 and stats.in_flight == 0
    assert stats.latency_p50 is not None and stats.latency_p99 is not None
    assert stats.latency_p50 <= stats.latency_p99
    assert [h.request_id for h in handles] == [f"{sc.sampling_session_id}:{i}" for i in range(60)]
    check_wire(slow_server, mode, since=before, bodies=False)


async def test_in_order_follows_submission_order(slow_server: LoopbackServer, mode: Mode) -> None:
    """in_order() yields by submission index even though completions are out of order."""
    before = slow_server.statistics()
    async with mode.service(slow_server) as svc:
        sc = await svc.create_sampling_client()
        async with sc.pipeline(max_in_flight=16) as pipe:
            for i in range(40):
                await pipe.submit(PROMPT, 1, PARAMS, tag=i)
            ordered = [h.tag async for h in pipe.in_order()]
            completion = [h.tag async for h in pipe.as_completed()]
    assert ordered == list(range(40))
    assert sorted(completion, key=str) == sorted(range(40), key=str)
    assert completion != ordered  # latencies vary
    check_wire(slow_server, mode, since=before, bodies=False)


async def test_aimd_shrinks_on_429_and_recovers(mode: Mode) -> None:
    """429s halve the window (once per generation); successes grow it back."""
    config = ServerConfig(
        capacity=2, max_queued_samples=2, latency=LatencyConfig.parse("sample=0.01")
    )
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()
            windows: list[int] = []
            async with sc.pipeline(max_in_flight=32, min_in_flight=2) as pipe:
                for _ in range(200):
                    await pipe.submit(PROMPT, 1, PARAMS)
                    windows.append(pipe.statistics().window)
                async for h in pipe.as_completed():
                    windows.append(pipe.statistics().window)
                    h.result()
                stats = pipe.statistics()
        check_wire(srv, mode, bodies=False)
    assert stats.rate_limited > 0 and stats.window_decreases > 0
    low = min(windows)
    assert low < 32
    assert windows[-1] > low  # grew back after the congestion


async def test_exactly_once_under_connection_drops(mode: Mode) -> None:
    """Submissions whose answer is lost are resubmitted with the same seq_id and run once."""
    config = ServerConfig(faults=FaultConfig.parse("drop_after_accept=0.3,submit_5xx=0.1,seed=3"))
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()
            async with sc.pipeline(max_in_flight=32) as pipe:
                for _ in range(200):
                    await pipe.submit(PROMPT, 1, PARAMS)
                results = [h.result() async for h in pipe.as_completed()]
                stats = pipe.statistics()
        counts = srv.execution_counts()
        fired = srv.statistics().faults
        check_wire(srv, mode, bodies=False)
    assert len(results) == 200 and stats.retries > 0
    assert fired["drop_after_accept"] > 0
    sample_counts = [n for rid, n in counts.items() if ":sample:" in rid]
    assert len(sample_counts) == 200 and set(sample_counts) == {1}


def _client_connections(port: int) -> int:
    """Established TCP connections of this process whose remote port is ``port`` (Linux /proc)."""
    inodes: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


async def test_cancellation_leaves_nothing_behind(mode: Mode) -> None:
    """Leaving the block with work outstanding stops every poll; closing the client closes every socket."""
    config = ServerConfig(latency=LatencyConfig.parse("sample=10"), poll_hold=30.0)
    with serve_loopback(mode.config(config)) as srv:
        port = int(srv.base_url.rsplit(":", 1)[1])
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()
            pipe = sc.pipeline(max_in_flight=20)
            with anyio.CancelScope() as scope:
                async with pipe:
                    for _ in range(20):
                        await pipe.submit(PROMPT, 1, PARAMS)
                    with anyio.fail_after(10):
                        while srv.statistics().held_polls < 20:
                            await anyio.sleep(0.02)
                    scope.cancel()  # like a timeout or a cancelled caller
                    await anyio.sleep_forever()
            stats = pipe.statistics()
            assert stats.cancelled == 20 and stats.in_flight == 0 and stats.failed == 0
            with anyio.fail_after(5):
                while srv.statistics().held_polls or srv.statistics().http_in_flight:
                    await anyio.sleep(0.02)
        assert _client_connections(port) == 0
    with pytest.raises(mint_async.ClientClosedError):
        await pipe.submit(PROMPT)


async def test_fail_fast_and_independent_failures(mode: Mode) -> None:
    """A failure stays on its handle unless fail_fast, which cancels the rest and raises it."""
    config = ServerConfig(
        faults=FaultConfig.parse("error_result=0.5:server,seed=5"),
        # Requests take a while, so several are in flight when the first one fails.
        latency=LatencyConfig.parse("sample=uniform(0.02,0.06)"),
    )
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()
            async with sc.pipeline(max_in_flight=8) as pipe:
                for _ in range(40):
                    await pipe.submit(PROMPT, 1, PARAMS)
                handles = [h async for h in pipe.as_completed()]
            failed = [h for h in handles if h.exception() is not None]
            assert 0 < len(failed) < 40 and pipe.statistics().failed == len(failed)
            assert all(isinstance(h.exception(), mint_async.RequestFailedError) for h in failed)
            with pytest.raises(mint_async.RequestFailedError):
                await failed[0]
            check_wire(srv, mode, bodies=False)  # the successes'

            handles2: list[mint_async.Handle[t.SampleResponse]] = []

            async def fail_fast_run() -> None:
                async with sc.pipeline(max_in_flight=8, fail_fast=True) as pipe2:
                    for _ in range(40):
                        # One by one: the loop is cancelled midway by the first failure.
                        handles2.append(await pipe2.submit(PROMPT, 1, PARAMS))  # noqa: PERF401
                    async for _h in pipe2.as_completed():
                        pass

            with pytest.raises(mint_async.RequestFailedError):
                await fail_fast_run()
    # The first failure stopped the producer and cancelled what was still in flight.
    assert len(handles2) < 40
    assert all(h.done() for h in handles2)
    cancelled = [h for h in handles2 if isinstance(h.exception(), mint_async.ClientClosedError)]
    assert cancelled


async def test_producer_in_another_task_with_close(mode: Mode) -> None:
    """as_completed(until_closed=True) keeps going until the producer calls close()."""
    with serve_loopback(mode.config()) as srv:
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()
            seen: list[int] = []
            async with sc.pipeline(max_in_flight=4) as pipe:

                async def produce() -> None:
                    for i in range(30):
                        await pipe.submit(PROMPT, 1, PARAMS, tag=i)
                        await anyio.sleep(0)
                    pipe.close()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(produce)
                    async for h in pipe.as_completed(until_closed=True):
                        assert isinstance(h.tag, int)
                        seen.append(h.tag)
        check_wire(srv, mode, bodies=False)
    assert sorted(seen) == list(range(30))


async def test_training_pipeline_orders_and_collects(mode: Mode) -> None:
    """Training ops go back to back in seq order; results are collected later, in order."""
    config = ServerConfig(latency=LatencyConfig.parse("forward_backward=0.02,optim_step=0.01"))
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            tc = await svc.create_lora_training_client(rank=4)
            batch = [
                t.Datum(
                    model_input=t.ModelInput.from_ints([1, 2, 3]),
                    loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [1.0, 1.0, 1.0]},
                )
            ]
            async with tc.pipeline(max_in_flight=4) as pipe:
                for step in range(10):
                    await pipe.forward_backward(batch, tag=("fb", step))
                    await pipe.optim_step(t.AdamParams(learning_rate=0.05), tag=("opt", step))
                assert pipe.statistics().in_flight <= 4
                ordered = [h async for h in pipe.in_order()]
            model_id = tc.model_id
        counts = srv.execution_counts()
        check_wire(srv, mode)
    assert [h.tag for h in ordered] == [(kind, s) for s in range(10) for kind in ("fb", "opt")]
    losses = [h.result().loss for h in ordered if h.tag[0] == "fb"]  # type: ignore[index]
    assert losses[-1] < losses[0]
    assert [rid for rid in counts if rid.startswith(model_id + ":")][1:] == [
        f"{model_id}:{i}" for i in range(1, 21)
    ]


async def test_fail_fast_with_simultaneous_failures_raises_one_error(mode: Mode) -> None:
    """Several requests failing at once under fail_fast surface as one RequestFailedError with a note."""
    config = ServerConfig(faults=FaultConfig.parse("error_result=1.0:server,seed=2"))
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()

            async def run() -> None:
                async with sc.pipeline(max_in_flight=16, fail_fast=True) as pipe:
                    for _ in range(16):
                        await pipe.submit(PROMPT, 1, PARAMS)
                    async for _h in pipe.as_completed():
                        pass

            with pytest.raises(mint_async.RequestFailedError):
                await run()


class BoomError(Exception):
    """The caller's own error, raised in the body of a pipeline block."""


@pytest.mark.parametrize("how", ["normally", "by an exception"])
async def test_leaving_the_block_cancels_unconsumed_work(mode: Mode, how: str) -> None:
    """Leaving with work outstanding (normally or by the caller's error) cancels it and stops its polls."""
    config = ServerConfig(latency=LatencyConfig.parse("sample=10"), poll_hold=30.0)
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()
            handles: list[mint_async.Handle[t.SampleResponse]] = []
            pipe = sc.pipeline(max_in_flight=8)

            async def body() -> None:
                async with pipe:
                    handles.extend([await pipe.submit(PROMPT, 1, PARAMS) for _ in range(8)])
                    with anyio.fail_after(10):
                        while srv.statistics().held_polls < 8:
                            await anyio.sleep(0.02)
                    if how == "by an exception":
                        raise BoomError

            with anyio.fail_after(10):  # liveness: leaving must not wait for the 10 s samples
                if how == "normally":
                    await body()
                else:
                    # pytest.raises(BoomError) does not match an ExceptionGroup: it comes out unwrapped.
                    with pytest.raises(BoomError):
                        await body()
            stats = pipe.statistics()
            assert stats.cancelled == 8 and stats.in_flight == 0 and stats.completed == 8
            assert all(isinstance(h.exception(), mint_async.ClientClosedError) for h in handles)
            with pytest.raises(mint_async.ClientClosedError):
                await handles[0]
            with anyio.fail_after(5):
                while srv.statistics().held_polls:
                    await anyio.sleep(0.02)


async def test_training_submit_cancelled_midway_is_not_a_success(mode: Mode) -> None:
    """A training op cancelled during submit() ends cancelled (ClientClosedError) and the run goes on."""
    with serve_loopback(mode.config()) as srv:
        async with mode.service(srv) as svc:
            tc = await svc.create_lora_training_client(rank=4)
            async with tc.pipeline(max_in_flight=4) as pipe:
                with anyio.CancelScope() as scope:
                    scope.cancel()  # lands once the (shielded) submission returned
                    await pipe.optim_step(t.AdamParams(learning_rate=0.01), tag="cancelled")
                await pipe.optim_step(t.AdamParams(learning_rate=0.01), tag="next")
                handles = [h async for h in pipe.in_order()]
                stats = pipe.statistics()
    assert [h.tag for h in handles] == ["cancelled", "next"]
    cancelled, after = handles
    assert isinstance(cancelled.exception(), mint_async.ClientClosedError)
    with pytest.raises(mint_async.ClientClosedError):
        await cancelled
    assert isinstance(after.result(), t.OptimStepResponse)
    assert stats.cancelled == 1 and stats.failed == 0 and stats.completed == 2
    assert stats.in_flight == 0 and stats.in_flight_bytes == 0


async def test_training_window_shrinks_on_paused_queue_and_recovers(mode: Mode) -> None:
    """Training ops queued behind a busy server (paused_capacity) halve the window; successes regrow it."""
    config = ServerConfig(
        capacity=1,
        poll_hold=0.05,
        latency=LatencyConfig.parse("sample=0.6,forward_backward=0.005,optim_step=0.005"),
    )
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            tc = await svc.create_lora_training_client(rank=4)
            sc = await svc.create_sampling_client()
            batch = [
                t.Datum(
                    model_input=t.ModelInput.from_ints([1, 2, 3]),
                    loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [1.0, 1.0, 1.0]},
                )
            ]
            windows: list[int] = []
            async with anyio.create_task_group() as tg:
                # One long sample holds the only capacity slot, so training ops queue.
                tg.start_soon(sc.sample, PROMPT, 1, PARAMS)
                with anyio.fail_after(10):
                    while not srv.statistics().outstanding:
                        await anyio.sleep(0.01)
                async with tc.pipeline(max_in_flight=8) as pipe:
                    for _ in range(20):
                        await pipe.forward_backward(batch)
                        await pipe.optim_step(t.AdamParams(learning_rate=0.01))
                        windows.append(pipe.statistics().window)
                    async for h in pipe.as_completed():
                        h.result()
                        windows.append(pipe.statistics().window)
                    stats = pipe.statistics()
                    assert stats.window_decreases > 0 and stats.rate_limited == 0
        check_wire(srv, mode)
    assert min(windows) < 8 and max(windows) <= 8  # shrank, never above the cap
    # Successes regrew it after the first halving. (Not "the last window beats the lowest":
    # with one capacity slot a late poll may still see an op queued and halve it again
    # near the end, too late for 1/window steps to show in the integer window.)
    first_drop = next(i for i, w in enumerate(windows) if w < 8)
    assert any(b > a for a, b in itertools.pairwise(windows[first_drop:])), windows


async def test_sample_window_shrinks_on_paused_queue_without_429(mode: Mode) -> None:
    """A server that queues (paused_capacity) but never answers 429 still shrinks the window."""
    config = ServerConfig(
        capacity=1,
        max_queued_samples=None,
        poll_hold=0.02,
        latency=LatencyConfig.parse("sample=0.04"),
    )
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()
            windows: list[int] = []
            async with sc.pipeline(max_in_flight=8) as pipe:
                for _ in range(16):
                    await pipe.submit(PROMPT, 1, PARAMS)
                    windows.append(pipe.statistics().window)
                async for h in pipe.as_completed():
                    h.result()
                stats = pipe.statistics()
        check_wire(srv, mode, bodies=False)
    assert stats.window_decreases > 0 and min(windows) < 8
    assert stats.rate_limited == 0 and stats.completed == 16 and stats.failed == 0


BIG_PROMPT = t.ModelInput.from_ints(list(range(100)))  # estimated at 10 bytes a token: 1000


async def test_byte_budget_holds_back_submit(slow_server: LoopbackServer, mode: Mode) -> None:
    """With room in the count window, the byte budget alone caps what is in flight."""
    before = slow_server.statistics()
    async with mode.service(slow_server) as svc:
        sc = await svc.create_sampling_client()
        slow_server.reset_peaks()
        peak_count = peak_bytes = 0
        async with sc.pipeline(max_in_flight=50, max_in_flight_bytes=2500) as pipe:
            for _ in range(12):
                handle = await pipe.submit(BIG_PROMPT, 1, PARAMS)
                assert handle.nbytes == 1000
                stats = pipe.statistics()
                peak_count = max(peak_count, stats.in_flight)
                peak_bytes = max(peak_bytes, stats.in_flight_bytes)
                assert stats.in_flight_bytes == stats.in_flight * 1000
            results = [h.result() async for h in pipe.as_completed()]
            stats = pipe.statistics()
    assert peak_count == 2 and peak_bytes == 2000  # a third would exceed 2500 bytes
    assert slow_server.statistics().peak_outstanding <= 2
    assert stats.window == 50 and stats.max_in_flight_bytes == 2500
    assert len(results) == 12 and stats.in_flight == 0 and stats.in_flight_bytes == 0
    check_wire(slow_server, mode, since=before, bodies=False)


async def test_oversized_request_goes_alone(slow_server: LoopbackServer, mode: Mode) -> None:
    """A request larger than the whole byte budget is let through, one at a time."""
    before = slow_server.statistics()
    async with mode.service(slow_server) as svc:
        sc = await svc.create_sampling_client()
        slow_server.reset_peaks()
        async with sc.pipeline(max_in_flight=50, max_in_flight_bytes=500) as pipe:
            for _ in range(4):
                await pipe.submit(BIG_PROMPT, 1, PARAMS)
                stats = pipe.statistics()
                assert stats.in_flight == 1 and stats.in_flight_bytes == 1000
            results = [h.result() async for h in pipe.as_completed()]
    assert len(results) == 4
    assert slow_server.statistics().peak_outstanding == 1
    check_wire(slow_server, mode, since=before, bodies=False)


async def test_request_id_follows_resubmission_after_410(mode: Mode) -> None:
    """A sample the server lost (410) is resubmitted with a new seq_id; the handle's request_id follows."""
    config = ServerConfig(faults=FaultConfig.parse("retrieve_410=1.0,seed=1"))
    with serve_loopback(mode.config(config)) as srv:
        async with mode.service(srv) as svc:
            sc = await svc.create_sampling_client()
            sid = sc.sampling_session_id
            async with sc.pipeline(max_in_flight=4) as pipe:
                handle = await pipe.submit(PROMPT, 1, PARAMS)
                assert handle.request_id == f"{sid}:0"
                with pytest.raises(mint_async.PromiseExpiredError) as info:
                    await handle
    # Every poll answers 410: the first attempt and MAX_LOST_SAMPLE_RESUBMITS (5) resubmissions.
    assert handle.request_id == f"{sid}:5"
    assert info.value.request_id == handle.request_id
