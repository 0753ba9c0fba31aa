"""Load tests against the local server, faults on: the report's counts equal the server's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from mint_async.loadtest import (
    ForwardBackwardWorkload,
    IntDistribution,
    LoadTestConfig,
    LoadTestReport,
    RLStepWorkload,
    SampleWorkload,
    run_async,
)
from mint_async.loadtest._engine import arrival_offset
from mint_async.server import FaultConfig, LatencyConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

pytestmark = pytest.mark.anyio

FAULTS = "sample_429=0.1,drop_after_accept=0.05,try_again=0.2,retrieve_408=0.05,error_result=0.05:server,seed=11"
LOST = ",retrieve_410=0.05"
"""A 410 makes the client resubmit a sample under a new seq_id: the original still runs, unseen."""


def faulty_server(spec: str) -> Iterator[LoopbackServer]:
    config = ServerConfig(
        faults=FaultConfig.parse(spec), latency=LatencyConfig.parse("sample=uniform(0,0.004)")
    )
    with serve_loopback(config) as srv:
        yield srv


@pytest.fixture
def faulty() -> Iterator[LoopbackServer]:
    """A local server injecting sampling faults (not 410), with a little latency."""
    yield from faulty_server(FAULTS)


@pytest.fixture
def lossy() -> Iterator[LoopbackServer]:
    """Every sampling fault, lost promises (410) included."""
    yield from faulty_server(FAULTS + LOST)


def target(srv: LoopbackServer, **kwargs: Any) -> LoadTestConfig:
    workload = SampleWorkload(
        prompt_tokens=IntDistribution.parse("uniform(4,40)"),
        max_tokens=IntDistribution.parse("choice(1,4,8)"),
        num_samples=IntDistribution.parse("choice(1,2)"),
    )
    return LoadTestConfig(
        base_url=srv.base_url, api_key=srv.api_key, workloads=(workload,), **kwargs
    )


def brute(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(round(q * len(ordered), 9))) - 1]


def both(report: LoadTestReport, key: str, sub: str) -> int:
    """A counter summed over the measured phase and the warmup."""
    return int(report[key].get(sub, 0)) + int(report["warmup"][key].get(sub, 0))


def check_counts_match_server(report: LoadTestReport, srv: LoopbackServer, operations: int) -> None:
    stats = srv.statistics()
    warm = report["warmup"]
    # Every measured operation ended one way or the other.
    assert report["completed"] + report["failed"] == operations and report["cancelled"] == 0
    # Each sample the server accepted is one the report counted (410 resubmissions included).
    assert (
        stats.accepted["sample"]
        == report["accepted_by_kind"]["sample"] + warm["accepted_by_kind"]["sample"]
    )
    # Injected failures are the report's RequestFailed errors; the rest executed.
    fired = stats.faults
    assert fired["error_result"] > 0
    seen = both(report, "errors_by_category", "server")
    if fired["retrieve_410"]:
        # A resubmitted sample's original request may fail unseen (nobody polls it any more).
        resubmitted = fired["retrieve_410"]
        assert seen <= fired["error_result"] <= seen + resubmitted
    else:
        assert seen == fired["error_result"]
    assert stats.executed["sample"] == stats.accepted["sample"] - fired["error_result"]
    # Retries: one per 429 and per dropped connection.
    assert both(report, "retries_by_status", "429") == fired["sample_429"]
    assert both(report, "retries_by_status", "connection") == fired["drop_after_accept"]
    # Polls: one answering poll per request, plus one per injected try_again / 408 / 410.
    finished = report["completed"] + report["failed"] + warm["completed"] + warm["failed"]
    extra = fired["try_again"] + fired["retrieve_408"] + fired["retrieve_410"]
    assert report["total_polls"] + warm["total_polls"] == finished + extra


def check_percentiles(report: LoadTestReport) -> None:
    for name in ("time_to_result", "submit_latency"):
        h = report.histograms[name]
        assert h.exact
        values = h.samples
        assert len(values) == (report["completed"] if name == "time_to_result" else h.count)
        for q in (0.25, 0.5, 0.75, 0.9, 0.95, 0.99):
            assert report[f"p{round(q * 100)}_{name}_ms"] == round(brute(values, q) * 1e3, 4)
        assert report[f"max_{name}_ms"] == round(max(values) * 1e3, 4)
        assert report[f"mean_{name}_ms"] == round(sum(values) / len(values) * 1e3, 4)


async def test_closed_loop_with_faults_counts_match_server(faulty: LoopbackServer) -> None:
    """Closed loop, every fault on: requests, errors, retries and polls equal the server's counts."""
    report = await run_async(
        target(faulty, concurrency=8, requests=300, warmup_requests=20, seed=1)
    )
    check_counts_match_server(report, faulty, 300)
    check_percentiles(report)
    assert report["stopped_by"] == "requests" and report["peak_in_flight"] <= 8
    assert report["config"]["load_model"] == "closed"
    assert report["total_output_tokens"] > 0 and report["output_token_throughput"] > 0
    assert report["errors_by_type"]["RequestFailedError"] == report["errors_by_category"]["server"]


async def test_open_loop_with_faults_counts_match_server(lossy: LoopbackServer) -> None:
    """Open loop (Poisson, ramp-up), every fault and lost promises on: the counts still add up."""
    config = target(lossy, rate=400.0, requests=200, ramp_up=0.1, warmup_duration=0.05, seed=2)
    report = await run_async(config)
    assert lossy.statistics().faults["retrieve_410"] > 0
    check_counts_match_server(report, lossy, 200)
    check_percentiles(report)
    assert report["config"]["load_model"] == "open"
    assert report["p99_schedule_lag_ms"] is not None
    assert report.histograms["schedule_lag"].count == 200


async def test_constant_rate_is_close_to_the_target() -> None:
    """A constant-rate open loop starts operations on schedule: 100/s over 0.5 s is about 50."""
    with serve_loopback() as srv:
        report = await run_async(target(srv, rate=100.0, arrival="constant", duration=0.5))
    assert report["stopped_by"] == "duration"
    assert 45 <= report["completed"] <= 51


async def test_duration_bound_and_drain_cancel_slow_requests() -> None:
    """Requests still running when the drain period ends are cancelled and counted; the run ends."""
    with serve_loopback(ServerConfig(latency=LatencyConfig.parse("sample=30"))) as srv:
        config = target(srv, concurrency=5, duration=0.2, drain_timeout=0.2)
        report = await run_async(config)
        accepted = srv.statistics().accepted["sample"]
    assert report["stopped_by"] == "duration"
    assert report["completed"] == 0 and report["cancelled"] == 5
    assert accepted == report["accepted_by_kind"]["sample"] == 5
    assert report["workloads"]["sample"]["cancelled"] == 5


async def test_request_timeout_is_an_error() -> None:
    """A request slower than request_timeout fails as Timeout (and the run carries on)."""
    with serve_loopback(ServerConfig(latency=LatencyConfig.parse("sample=30"))) as srv:
        report = await run_async(target(srv, concurrency=3, requests=3, request_timeout=0.2))
    assert report["failed"] == 3 and report["errors_by_type"] == {"Timeout": 3}
    assert report["error_rate"] == 1.0


async def test_training_workloads_counts_match_server() -> None:
    """forward_backward and RL rounds: every accepted request kind equals the server's count."""
    fb = ForwardBackwardWorkload(
        batch_size=IntDistribution.parse("choice(1,2)"),
        seq_len=IntDistribution.parse("uniform(8,32)"),
        models=2,
        weight=2.0,
    )
    rl = RLStepWorkload(groups=3, group_size=2, max_tokens=IntDistribution.fixed(6), minibatches=2)
    with serve_loopback(ServerConfig(faults=FaultConfig.parse("try_again=0.2,seed=4"))) as srv:
        before = dict(srv.statistics().accepted)
        config = LoadTestConfig(
            base_url=srv.base_url,
            api_key=srv.api_key,
            workloads=(fb, rl),
            concurrency=3,
            requests=24,
        )
        report = await run_async(config)
        after = srv.statistics().accepted
    ops = report["workloads"]
    assert ops["forward_backward"]["completed"] + ops["rl-step"]["completed"] == 24
    assert report["failed"] == 0
    # Setup (3 training runs, 1 sampler each for RL) came before `before` was taken? No: after.
    # So compare what the run's operations added beyond the setup's own requests.
    setup = {"create_model": 2 + 3, "save_weights_for_sampler": 3}
    for kind in ("forward_backward", "optim_step", "save_weights_for_sampler", "sample"):
        server = after.get(kind, 0) - before.get(kind, 0) - setup.get(kind, 0)
        assert server == report["accepted_by_kind"].get(kind, 0), kind
    rounds = ops["rl-step"]["completed"]
    assert rounds > 0
    kinds = report["kinds"]
    assert kinds["optim_step"]["completed"] == rounds
    assert kinds["sample"]["completed"] == 3 * rounds
    # Each round ends with a weight sync (the setup's own syncs are not measured).
    assert kinds["save_weights_for_sampler"]["completed"] == rounds
    # Each round trains on its 3 x 2 samples in 2 minibatches; the rest are the plain workload's.
    fb_rounds = kinds["forward_backward"]["completed"] - ops["forward_backward"]["completed"]
    assert fb_rounds == 2 * rounds
    assert report["total_training_tokens"] > 0


def test_arrival_schedule_follows_the_ramp() -> None:
    """Constant arrivals under a ramp: Λ(t) of them are due by t, continuous at the ramp's end."""
    rate, ramp = 100.0, 2.0
    times = [arrival_offset(s, rate, ramp) for s in range(1, 601)]
    assert times == sorted(times)
    for t in (0.5, 1.0, 2.0, 3.0, 5.0):
        due = sum(1 for x in times if x <= t + 1e-9)
        expected = rate * t * t / (2 * ramp) if t < ramp else rate * ramp / 2 + rate * (t - ramp)
        assert due == math.floor(expected + 1e-9)
    assert arrival_offset(100.0, rate, ramp) == pytest.approx(2.0)  # the ramp's last arrival
    assert arrival_offset(101.0, rate, ramp) == pytest.approx(2.01)
    assert arrival_offset(5.0, rate, 0.0) == pytest.approx(0.05)


async def test_open_loop_phases_follow_the_schedule(server: LoopbackServer) -> None:
    """Warmup and measurement hold the arrivals scheduled in them (ramp 0.4 s, warmup 0.4 s, 0.4 s measured)."""
    config = target(
        server, rate=200.0, arrival="constant", ramp_up=0.4, warmup_duration=0.4, duration=0.4
    )
    report = await run_async(config)
    warm = report["warmup"]["completed"] + report["warmup"]["failed"]
    assert 39 <= warm <= 40  # Λ(0.4) = 40 arrivals during the ramp
    # 200/s for 0.4 s. On a loaded machine the generator may fall behind: what it could
    # not issue before the window closed is counted as missed, never silently dropped.
    issued = report["completed"] + report["failed"] + report["cancelled"]
    assert 79 <= issued + report["missed_arrivals"] <= 81
    assert report["stopped_by"] == "duration"


async def test_open_loop_counts_the_arrivals_it_could_not_issue() -> None:
    """A generator held back by max_in_flight=1 misses most of its schedule, and says how many."""
    with serve_loopback(ServerConfig(latency=LatencyConfig.parse("sample=0.05"))) as srv:
        config = target(srv, rate=200.0, arrival="constant", duration=0.4, max_in_flight=1)
        report = await run_async(config)
    issued = report["completed"] + report["failed"] + report["cancelled"]
    # At most one 50 ms request at a time: about 8 of the 80 scheduled in 0.4 s can go.
    assert report["missed_arrivals"] >= 40
    assert 79 <= issued + report["missed_arrivals"] <= 81
    assert report["stopped_by"] == "duration"
    assert "Missed arrivals (generator fell behind)" in report.render()


async def test_queue_states_and_polls_are_counted() -> None:
    """A saturated server (capacity 1, short holds) reports paused_capacity; polls per request exceed 1."""
    config = ServerConfig(capacity=1, poll_hold=0.01, latency=LatencyConfig.parse("sample=0.02"))
    with serve_loopback(config) as srv:
        report = await run_async(target(srv, concurrency=4, requests=20))
    assert report["queue_state_changes"].get("paused_capacity", 0) >= 1
    assert report["queue_state_seconds"]["paused_capacity"] > 0
    assert report["max_polls"] > 1 and report["mean_polls"] > 1
    assert report["total_polls"] == report["kinds"]["sample"]["total_polls"] > 20


async def test_errors_by_http_status() -> None:
    """A sample whose promise is always lost fails with 410 after its resubmissions; each one counted."""
    with serve_loopback(ServerConfig(faults=FaultConfig.parse("retrieve_410=1.0"))) as srv:
        report = await run_async(target(srv, concurrency=3, requests=3))
        accepted = srv.statistics().accepted["sample"]
    assert report["failed"] == 3 and report["errors_by_status"] == {"410": 3}
    assert report["errors_by_type"] == {"PromiseExpiredError": 3}
    assert accepted == report["accepted_by_kind"]["sample"] == 3 * 6  # 1 + 5 resubmissions each


async def test_closed_loop_measures_after_the_warmup_drained() -> None:
    """Closed loop: the measured window starts after the last warmup operation finished."""
    with serve_loopback(
        ServerConfig(latency=LatencyConfig.parse("sample=uniform(0.005,0.03)"))
    ) as srv:
        report = await run_async(target(srv, concurrency=6, requests=30, warmup_requests=10))
    warm, timeline = report["warmup"], report["timeline"]
    assert warm["completed"] == 10
    assert warm["last_finished_at"] <= timeline["warmup_end"]
    assert report["completed"] == 30
