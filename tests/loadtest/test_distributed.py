"""Load tests over several generators: the split adds up, the merge is exact, the report's format is one run's."""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mint_async import InvalidInputError
from mint_async.cli import main as cli_main
from mint_async.loadtest import LatencyHistogram, LoadTestConfig, run_async
from mint_async.loadtest._distributed import (
    WorkerResult,
    merge_results,
    run_distributed,
    split_config,
)
from mint_async.loadtest._engine import RunResult
from mint_async.loadtest._histogram import rank
from mint_async.loadtest._recorder import QueueStateTracker, Recorder, Timeline
from mint_async.loadtest._report import PERCENTILES, latency_block
from mint_async.loadtest._target import Target

TARGET = Target(base_url="http://127.0.0.1:1", api_key="tml-x")


def test_split_closed_loop_adds_up() -> None:
    """Concurrency, requests and warmup are divided exactly; each worker has its own seed."""
    config = LoadTestConfig(workers=3, concurrency=10, requests=1001, warmup_requests=5, seed=4)
    parts = split_config(config, TARGET)
    assert [p.concurrency for p in parts] == [4, 3, 3]
    assert sum(p.effective_requests or 0 for p in parts) == 1001
    assert sum(p.warmup_requests for p in parts) == 5
    assert len({p.seed for p in parts}) == 3
    assert all(not p.distributed and p.base_url == TARGET.base_url for p in parts)
    assert all(p.api_key == TARGET.api_key and not p.progress for p in parts)


def test_split_open_loop_divides_rate_keeps_ramp() -> None:
    """Each worker runs at rate/N with the same ramp and duration; max_in_flight is divided."""
    config = LoadTestConfig(workers=4, rate=100.0, duration=5.0, ramp_up=2.0, max_in_flight=10)
    parts = split_config(config, TARGET)
    assert sum(p.rate or 0 for p in parts) == pytest.approx(100.0)
    assert {p.ramp_up for p in parts} == {2.0} and {p.duration for p in parts} == {5.0}
    assert sum(p.max_in_flight for p in parts) == 10
    assert all(p.effective_requests is None for p in parts)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"workers": 0}, "workers must be > 0"),
        ({"workers": 4, "concurrency": 3}, "concurrency 3 cannot be split over 4 workers"),
        ({"workers": 4, "requests": 3}, "3 requests cannot be split"),
        ({"workers": 4, "rate": 5.0, "max_in_flight": 2}, "max_in_flight 2 cannot be split"),
        ({"ray_address": ""}, "ray_address must be"),
    ],
)
def test_bad_split_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    """A split that would leave a worker with nothing to do is refused before anything starts."""
    with pytest.raises(InvalidInputError, match=message):
        LoadTestConfig(**settings)


def _fake_worker(
    rng: random.Random, n: int, *, clock: float, keep: int, origin: float
) -> tuple[WorkerResult, list[float]]:
    """A worker's result with ``n`` completed samples of known latencies (its own clock)."""
    measured = Recorder(keep_samples=keep)
    values = [rng.lognormvariate(-4, 1) for _ in range(n)]
    kind = measured.kind("sample")
    for v in values:
        kind.accepted += 1
        kind.completed += 1
        kind.time_to_result.record(v)
        kind.submit.record(v / 10)
        kind.polls[1] += 1
    measured.last_completion = origin + 2.0
    timeline = Timeline(origin)
    timeline.completed[0] = n // 2
    timeline.completed[5] = n - n // 2
    timeline.in_flight = [(0.0, 0), (0.1, 8), (0.2, 8), (0.3, 0)]
    timeline.warmup_end = 0.0
    tracker = QueueStateTracker()
    result = RunResult(
        measured=measured,
        warmup=Recorder(keep_samples=keep),
        timeline=timeline,
        queue_states=tracker.frozen(),
        event_loop_lag=LatencyHistogram(keep_samples=keep),
        duration=2.0,
        cpu_seconds=0.5,
        peak_in_flight=8,
        stopped_by="requests",
        measure_start=origin,
    )
    return WorkerResult(index=0, result=result, clock=clock), values


@pytest.mark.parametrize("keep", [1_000_000, 100])
def test_merge_equals_the_union(keep: int) -> None:
    """Merged counts are the sums; merged percentiles are those of one histogram of every value.

    With the raw values kept they are exact; beyond ``keep_samples`` the merged buckets are
    exactly the union's buckets, so the percentiles agree to the bit and stay within 0.05 %
    of the exact nearest-rank values.
    """
    rng = random.Random(7)
    a, va = _fake_worker(rng, 700, clock=1000.0, keep=keep, origin=5.0)
    b, vb = _fake_worker(rng, 500, clock=2000.0, keep=keep, origin=-994.9)  # starts 0.1 s later
    merged = merge_results([a, b], keep_samples=keep)
    kind = merged.measured.kinds["sample"]
    assert kind.completed == kind.accepted == 1200 and kind.polls[1] == 1200
    union = LatencyHistogram(keep_samples=keep)
    for v in va + vb:
        union.record(v)
    assert latency_block("ttr", kind.time_to_result) == latency_block("ttr", union)
    assert kind.time_to_result.exact == (keep >= 1200)
    exact = sorted(va + vb)
    for q in PERCENTILES:
        got = kind.time_to_result.percentile(q)
        assert got is not None
        want = exact[rank(q, 1200) - 1]
        assert got == pytest.approx(want, rel=1 / 2048)
    # One clock: the window runs from a's start to b's end; completions and in-flight add up.
    assert merged.duration == pytest.approx(2.1)
    assert merged.cpu_seconds == 1.0 and merged.peak_in_flight == 16
    assert sum(merged.timeline.completed.values()) == 1200
    assert merged.timeline.completed[0] == 350 and merged.timeline.completed[1] == 250
    assert max(n for _, n in merged.timeline.in_flight) == 16


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The coordinator starts the local server (no endpoint configured in the environment)."""
    for name in ("MINT_BASE_URL", "MINT_API_KEY", "TINKER_BASE_URL", "TINKER_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def _check_against_parts(
    report: Any, parts: list[WorkerResult], requests: int, warmup: int = 0
) -> None:
    """Counts are the workers' sums; percentiles are those of the union of their raw values."""
    per_worker = [p.result.measured.kinds["sample"] for p in parts]
    assert report["completed"] == sum(k.completed for k in per_worker) == requests
    assert report["kinds"]["sample"]["accepted"] == sum(k.accepted for k in per_worker)
    union = LatencyHistogram()
    for k in per_worker:
        assert k.time_to_result.exact
        for v in k.time_to_result.samples:
            union.record(v)
    assert report["percentile_precision"] == "exact"
    block = latency_block("time_to_result", union)
    assert {k: report[k] for k in block} == block
    # The server saw every worker's requests, warmup included (as in a single-process run).
    assert report["server"]["accepted"]["sample"] == requests + warmup


@pytest.mark.slow
def test_two_processes_against_the_local_server(no_endpoint: None) -> None:
    """--workers 2: one merged report; counts add up and percentiles equal the union's."""
    got: list[list[WorkerResult]] = []
    config = LoadTestConfig(workers=2, concurrency=8, requests=300, warmup_requests=20)
    report = run_distributed(config, on_parts=got.append)
    assert len(got[0]) == 2 and {p.index for p in got[0]} == {0, 1}
    _check_against_parts(report, got[0], 300, warmup=20)
    assert report["config"]["workers"] == 2 and report["backend"] == "asyncio"
    assert report["warmup"]["completed"] == 20
    assert "Load generators:" in report.render()


@pytest.mark.slow
@pytest.mark.anyio
async def test_same_format_as_one_process(no_endpoint: None, anyio_backend: Any) -> None:
    """run_async(workers=2), asyncio and trio: the report has exactly a single run's keys."""
    single = await run_async(LoadTestConfig(concurrency=4, requests=60))
    double = await run_async(LoadTestConfig(workers=2, concurrency=4, requests=60))
    assert double["completed"] == single["completed"] == 60
    assert double["backend"] == single["backend"] == anyio_backend[0]

    assert set(double.data) == set(single.data)
    for key in ("config", "kinds", "workloads", "warmup", "timeline", "server"):
        assert set(double[key]) == set(single[key]), key
    assert set(double["kinds"]["sample"]) == set(single["kinds"]["sample"])
    assert set(double.histograms) == set(single.histograms)


@pytest.mark.slow
def test_cli_workers_writes_one_result(no_endpoint: None, tmp_path: Path) -> None:
    """`mint-async loadtest --workers 2` exits 0 and saves one merged result."""
    out = tmp_path / "result.json"
    status = cli_main(
        [
            *("loadtest", "--workers", "2", "--concurrency", "4", "--requests", "80"),
            *("--quiet", "--save-result", str(out)),
        ]
    )
    assert status == 0
    saved = json.loads(out.read_text())
    assert saved["completed"] == 80 and saved["config"]["workers"] == 2
    assert saved["histograms"]["time_to_result"]["count"] == 80


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray instance with 2 CPUs (skipped when Ray is not installed)."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed")
    ray: Any = importlib.import_module("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_local_instance(no_endpoint: None, local_ray: Any) -> None:
    """ray_address="local" with Ray running: two Ray tasks, one merged report, union percentiles."""
    got: list[list[WorkerResult]] = []
    config = LoadTestConfig(workers=2, concurrency=8, requests=200, ray_address="local")
    report = run_distributed(config, on_parts=got.append)
    _check_against_parts(report, got[0], 200)
    assert report["config"]["ray_address"] == "local"
    assert local_ray.is_initialized()  # a caller's Ray instance is left running


def test_ray_needs_enough_cpus(no_endpoint: None, local_ray: Any) -> None:
    """More workers than the cluster's CPUs is refused (they must all run at once)."""
    config = LoadTestConfig(workers=3, concurrency=6, requests=30, ray_address="auto")
    with pytest.raises(InvalidInputError, match="3 workers need 3 CPUs"):
        run_distributed(config)


def test_queue_states_merge_adds_changes_and_seconds() -> None:
    """Frozen trackers merge by adding their state changes and client-seconds per state."""
    a, b = QueueStateTracker(), QueueStateTracker()
    a.observer(0)("paused_capacity", None)
    b.observer(0)("paused_capacity", None)
    b.observer(1)("paused_rate_limit", "limit")
    time.sleep(0.02)  # some time in each state
    frozen_a, frozen_b = a.frozen(), b.frozen()
    merged = QueueStateTracker()
    merged.merge(frozen_a)
    merged.merge(frozen_b)
    assert merged.changes == {"paused_capacity": 2, "paused_rate_limit": 1}
    for state in ("paused_capacity", "paused_rate_limit"):
        want = frozen_a.seconds().get(state, 0.0) + frozen_b.seconds().get(state, 0.0)
        assert merged.seconds()[state] == pytest.approx(want, abs=2e-3)
    # Frozen: the clocks stopped, so the figures no longer grow (the live tracker's do).
    before = frozen_a.seconds()
    time.sleep(0.01)
    assert frozen_a.seconds() == before and a.seconds() != before


def test_merged_in_flight_timeline_stays_bounded() -> None:
    """Merging long in-flight series thins them like one long run, keeping the sum's shape."""
    a, b = Timeline(0.0, max_points=100), Timeline(0.0, max_points=100)
    a.in_flight = [(i * 0.1, 1) for i in range(100)]
    b.in_flight = [(i * 0.1 + 0.05, 2) for i in range(100)]
    a.merge(b)
    assert len(a.in_flight) <= 100
    assert {n for _, n in a.in_flight[1:]} == {3}
