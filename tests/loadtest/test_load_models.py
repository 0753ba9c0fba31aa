"""The load models' shapes: seeded arrival schedules, closed-loop ramp-up, the run-wide timeout."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from mint_async.cli import main
from mint_async.loadtest import LoadTestConfig, SampleWorkload, _engine, run_async
from mint_async.server import LatencyConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

Schedule = list[float]


@pytest.fixture
def schedule(monkeypatch: pytest.MonkeyPatch) -> Schedule:
    """The open loop's arrival offsets (seconds from the start), as the scheduler computes them."""
    offsets: Schedule = []
    real: Callable[[float, float, float], float] = _engine.arrival_offset

    def recording(s: float, rate: float, ramp: float) -> float:
        offsets.append(real(s, rate, ramp))
        return offsets[-1]

    monkeypatch.setattr(_engine, "arrival_offset", recording)
    return offsets


def gaps_cv(offsets: Schedule) -> tuple[float, float]:
    """Mean and coefficient of variation of the gaps between arrivals (the first from 0)."""
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    mean = statistics.fmean(gaps)
    return mean, statistics.pstdev(gaps) / mean


def config(srv: LoopbackServer, **kwargs: Any) -> LoadTestConfig:
    return LoadTestConfig(
        base_url=srv.base_url, api_key=srv.api_key, workloads=(SampleWorkload(),), **kwargs
    )


@pytest.mark.anyio
async def test_poisson_and_constant_arrivals(server: LoopbackServer, schedule: Schedule) -> None:
    """Seeded schedules: Poisson gaps vary (CV near 1, mean 1/rate), constant gaps do not (CV 0)."""
    rate, n = 1000.0, 150
    report = await run_async(config(server, rate=rate, requests=n, seed=5))
    assert report["config"]["arrival"] == "poisson"
    # Each measured arrival is scheduled, plus the one computed before the scheduler saw the stop.
    assert len(schedule) == n + 1 and report["completed"] == n
    mean, cv = gaps_cv(schedule)
    assert mean == pytest.approx(1 / rate, rel=0.25)
    assert 0.75 <= cv <= 1.25
    poisson = list(schedule)
    # The same seed draws the same schedule; another seed a different one.
    schedule.clear()
    await run_async(config(server, rate=rate, requests=n, seed=5))
    assert schedule == poisson
    schedule.clear()
    await run_async(config(server, rate=rate, requests=n, seed=6))
    assert schedule[:n] != poisson[:n]
    schedule.clear()
    report = await run_async(config(server, rate=rate, requests=n, arrival="constant", seed=5))
    assert report["config"]["arrival"] == "constant"
    mean, cv = gaps_cv(schedule)
    assert mean == pytest.approx(1 / rate) and cv < 1e-6
    assert schedule[:3] == pytest.approx([0.001, 0.002, 0.003])


def test_arrival_option_on_the_command_line(
    server: LoopbackServer, schedule: Schedule, tmp_path: Path, anyio_backend: tuple[str, Any]
) -> None:
    """``--arrival constant`` reaches the scheduler (even gaps); without it arrivals are Poisson."""
    out = tmp_path / "r.json"
    argv = [
        "loadtest", "--base-url", server.base_url, "--api-key", server.api_key, "--quiet",
        "--event-loop", anyio_backend[0], "--rate", "800", "--requests", "100",
        "--save-result", str(out),
    ]  # fmt: skip
    assert main([*argv, "--arrival", "constant"]) == 0
    assert json.loads(out.read_text())["config"]["arrival"] == "constant"
    mean, cv = gaps_cv(schedule)
    assert mean == pytest.approx(1 / 800) and cv < 1e-6
    schedule.clear()
    assert main(argv) == 0
    assert json.loads(out.read_text())["config"]["arrival"] == "poisson"
    assert 0.6 <= gaps_cv(schedule)[1] <= 1.4


@pytest.mark.anyio
async def test_closed_loop_ramp_up_staggers_the_workers() -> None:
    """With ramp-up, worker i starts no earlier than ramp * i / workers: in flight grows 1, 2, 3, 4."""
    workers, ramp = 4, 0.8
    # Each request takes at least 50 ms, so a started worker keeps a request in flight.
    with serve_loopback(ServerConfig(latency=LatencyConfig.parse("sample=0.05"))) as srv:
        report = await run_async(config(srv, concurrency=workers, ramp_up=ramp, duration=1.2))
    points: list[list[float]] = report["timeline"]["in_flight"]
    # A sleep is never early: at any time t, at most the workers due by t have started.
    for t, n in points:
        # 2 ms of slack: sample times are rounded, and 0.6 * 4 / 0.8 is 2.9999999999999996.
        assert n <= min(workers, int((t + 0.002) * workers / ramp) + 1), (t, n, points)
    # The timeline did look inside the ramp (samples come every 100 ms), and all workers ran.
    assert any(0.1 <= t < ramp * (workers - 1) / workers for t, _ in points)
    assert report["peak_in_flight"] == workers


@pytest.mark.anyio
@pytest.mark.parametrize(
    "load", [{"concurrency": 2}, {"rate": 40.0, "arrival": "constant"}], ids=["closed", "open"]
)
async def test_timeout_caps_the_run(load: dict[str, Any]) -> None:
    """The run-wide timeout stops issuing before a longer duration does (stopped_by: timeout)."""
    with serve_loopback(ServerConfig(latency=LatencyConfig.parse("sample=0.05"))) as srv:
        report = await run_async(config(srv, duration=60.0, timeout=0.4, **load))
    assert report["stopped_by"] == "timeout"
    assert report["completed"] > 0 and report["failed"] == report["cancelled"] == 0
    assert report["duration"] < 30  # liveness: nowhere near the 60 s duration
    if "concurrency" in load:
        # Each worker issues back to back, one request per >= 50 ms, for 0.4 s.
        assert report["completed"] <= 2 * (0.4 / 0.05 + 1)
    else:
        assert report["completed"] <= 40 * 0.4 + 1  # arrivals due within the 0.4 s


class _EarlyClock:
    """``anyio`` as the engine sees it, with a clock 60 ms ahead: its timers fire early."""

    def __getattr__(self, name: str) -> Any:
        return getattr(anyio, name)

    @staticmethod
    def current_time() -> float:
        return anyio.current_time() - 0.06


@pytest.mark.anyio
async def test_open_loop_stops_at_its_deadline_when_the_timer_fires_early(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler woken (a little) before the deadline still ends the run by duration, not requests."""
    monkeypatch.setattr(_engine, "anyio", _EarlyClock())
    report = await run_async(config(server, rate=100.0, arrival="constant", duration=0.3))
    assert report["stopped_by"] == "duration"
    assert 0 < report["completed"] <= 31
