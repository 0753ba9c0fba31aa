"""The load models: when operations start, and when the run stops.

Closed loop: ``concurrency`` worker tasks, each running operations back to
back (no task per operation). Open loop: one scheduler task starts a task per
arrival at precomputed times. Arrival times come from unit-rate arrivals
``s_k`` (gaps of exactly 1, or exponential with mean 1 for Poisson) mapped
through the inverse of the cumulative rate ``Λ(t)``: ``Λ(t) = R t² / 2T`` during
a ramp-up of ``T`` seconds, then ``R T / 2 + R (t - T)`` — so ramp-up and
steady state are one exact (inhomogeneous) Poisson or constant process.

Every phase is bounded: issuing stops at the operation budget or a deadline
(checked by the workers and by a watchdog, so a stuck request cannot keep the
run going), then running operations get ``drain_timeout`` before they are
cancelled.
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import anyio
import anyio.abc

from ._config import LoadTestConfig
from ._context import Live, OpContext
from ._histogram import LatencyHistogram
from ._recorder import QueueStateTracker, Recorder, Timeline
from ._runners import Runner

__all__ = ["Engine", "RunResult", "arrival_offset"]

Phase = Literal["warmup", "measure"]
_WATCHDOG_TICK = 0.05
_LAG_INTERVAL = 0.01
_SAMPLE_INTERVAL = 0.1


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What a run measured (the report is built from it)."""

    measured: Recorder
    warmup: Recorder
    timeline: Timeline
    queue_states: QueueStateTracker
    event_loop_lag: LatencyHistogram
    duration: float
    """Seconds from the first measured operation to the last one's end."""
    cpu_seconds: float
    """Client process CPU time over the measured phase."""
    peak_in_flight: int
    stopped_by: str
    """``requests``, ``duration``, ``timeout`` (hit the run's time cap) or ``error``."""
    measure_start: float | None = None
    """``perf_counter()`` when measurement started (None: it never did)."""
    missed_arrivals: int = 0
    """Open loop: arrivals scheduled before the measured window closed that were never
    issued, because the generator fell behind its schedule (a loaded machine, or
    ``max_in_flight`` reached). Issued + missed is exactly what the schedule asked for."""


def arrival_offset(s: float, rate: float, ramp: float) -> float:
    """When (seconds from the start) cumulative arrival ``s`` is due: the inverse of ``Λ``.

    ``Λ(t) = rate * t**2 / (2 * ramp)`` during the ramp, ``rate * ramp / 2 + rate * (t - ramp)`` after.
    """
    ramped = rate * ramp / 2  # Λ(ramp): the arrivals due during the ramp
    if s < ramped:
        return math.sqrt(2 * ramp * s / rate)
    return ramp + (s - ramped) / rate


class _Budget:
    """Hands out operations: which phase each belongs to, and when to stop."""

    def __init__(
        self, config: LoadTestConfig, start: float, on_measure: Callable[[], None]
    ) -> None:
        self._warmup_requests = config.warmup_requests
        self._warmup_until = start + config.warmup_duration
        self._requests = config.effective_requests
        self._duration = config.duration
        self._deadline = start + config.timeout
        self._on_measure = on_measure
        self.warmup_taken = 0
        self.measured_taken = 0
        self.measure_start: float | None = None
        self.stopped_by: str | None = None
        self.stopped = anyio.Event()

    def deadline(self) -> float:
        """The earliest time issuing must stop (as known now)."""
        if self.measure_start is not None and self._duration is not None:
            return min(self._deadline, self.measure_start + self._duration)
        return self._deadline

    def stop(self, reason: str) -> None:
        """Stop issuing (idempotent; the first reason wins)."""
        if self.stopped_by is None:
            self.stopped_by = reason
            self.stopped.set()

    def check(self, now: float) -> None:
        """Stop if a deadline has passed."""
        if now >= self.deadline():
            is_duration = self.measure_start is not None and self._duration is not None
            self.stop("duration" if is_duration and now < self._deadline else "timeout")

    def start_measuring(self, now: float) -> None:
        """Mark the start of the measured phase (the first call wins)."""
        if self.measure_start is None:
            self.measure_start = now
            self._on_measure()

    def take(self, now: float | None = None) -> Phase | None:
        """The phase of the next operation, or None once issuing has stopped.

        ``now``: the operation's scheduled time (open loop), so an arrival that
        is late does not move from the warmup into the measurement.
        """
        if self.stopped_by is not None:
            return None
        if now is None:
            now = time.perf_counter()
        self.check(now)
        if self.stopped_by is not None:
            return None
        if self.warmup_taken < self._warmup_requests or (
            self.measure_start is None and now < self._warmup_until
        ):
            self.warmup_taken += 1
            return "warmup"
        self.measured_taken += 1
        if self._requests is not None and self.measured_taken >= self._requests:
            self.stop("requests")
        return "measure"


class Engine:
    """Runs operations of ``runners`` under the configured load model."""

    def __init__(
        self,
        config: LoadTestConfig,
        runners: Sequence[Runner],
        rng: random.Random,
        tracker: QueueStateTracker,
        *,
        on_tick: Callable[[Engine], None] | None = None,
        tick: float = 0.5,
    ) -> None:
        self.config = config
        self._runners = list(runners)
        total = sum(r.workload.weight for r in runners)
        self._cumulative = [0.0]
        for r in runners:
            self._cumulative.append(self._cumulative[-1] + r.workload.weight / total)
        self._rng = rng
        self._tracker = tracker
        self._on_tick = on_tick
        self._tick = tick
        keep = config.keep_samples
        self.measured = Recorder(keep_samples=keep)
        self.warmup = Recorder(keep_samples=keep)
        self.lag = LatencyHistogram(keep_samples=keep)
        self.start = time.perf_counter()
        self.timeline = Timeline(self.start)
        self.live = Live(self.timeline)
        self.budget = _Budget(config, self.start, self._measuring)
        self.operations_in_flight = 0
        self.missed_arrivals = 0
        self._warmup_in_flight = 0
        self._room = anyio.Event()
        self._cpu_start = time.process_time()

    def _measuring(self) -> None:
        self._cpu_start = time.process_time()
        self.timeline.warmup_end = time.perf_counter() - self.start
        self.lag = LatencyHistogram(keep_samples=self.config.keep_samples)

    def _pick(self) -> Runner:
        if len(self._runners) == 1:
            return self._runners[0]
        i = bisect.bisect_right(self._cumulative, self._rng.random()) - 1
        return self._runners[min(i, len(self._runners) - 1)]

    # -- one operation ---------------------------------------------------------------

    async def _operation(self, phase: Phase) -> None:
        runner = self._pick()
        recorder = self.measured if phase == "measure" else self.warmup
        ctx = OpContext(recorder, self.live, request_timeout=self.config.request_timeout)
        self.operations_in_flight += 1
        warmup = phase == "warmup"
        self._warmup_in_flight += warmup
        started = time.perf_counter()
        try:
            await runner.run(ctx)
        except anyio.get_cancelled_exc_class():
            recorder.operation_cancelled(runner.name)
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
            if exc is not ctx.recorded:
                recorder.error(exc)  # failed outside any request (e.g. building it)
            recorder.operation_done(runner.name, started, exc)
        else:
            recorder.operation_done(runner.name, started, None)
        finally:
            self.operations_in_flight -= 1
            self._warmup_in_flight -= warmup
            self._room.set()
            self._room = anyio.Event()

    # -- load models -----------------------------------------------------------------

    async def _worker(self, index: int, workers: int) -> None:
        if self.config.ramp_up > 0:
            await anyio.sleep(self.config.ramp_up * index / workers)
        while (phase := self.budget.take()) is not None:
            if phase == "measure" and self.budget.measure_start is None:
                # Measurement starts once every warmup operation is done, so neither
                # their completions nor their CPU (nor cold connections) fall into it.
                while self._warmup_in_flight:
                    await self._room.wait()
                self.budget.start_measuring(time.perf_counter())
            await self._operation(phase)

    async def _scheduler(self, tg: anyio.abc.TaskGroup) -> None:
        poisson = self.config.arrival == "poisson"
        rate = self.config.rate
        assert rate is not None
        s = 0.0
        clock_offset = anyio.current_time() - time.perf_counter()

        def next_arrival() -> float:
            nonlocal s
            s += self._rng.expovariate(1.0) if poisson else 1.0
            return self.start + arrival_offset(s, rate, self.config.ramp_up)

        while True:
            at = next_arrival()
            # Sleep until the arrival, but wake at once if issuing stops meanwhile.
            with anyio.CancelScope(deadline=min(at, self.budget.deadline()) + clock_offset):
                await self.budget.stopped.wait()
            if at >= self.budget.deadline():
                # Woken for the deadline: stop issuing now. The timer may fire a hair
                # before perf_counter reaches the deadline (two clocks, an offset read
                # non-atomically); checking "now" could then miss it, and the run would
                # end as if its request budget ran out instead of its duration/timeout.
                self.budget.check(max(time.perf_counter(), self.budget.deadline()))
                return
            phase = self.budget.take(at)
            if phase is None:
                if self.budget.stopped_by == "duration":
                    # The window closed (on the wall clock) while arrivals scheduled in it
                    # were still due: the generator fell behind. Count them rather than
                    # silently measuring fewer than the schedule asked for.
                    deadline = self.budget.deadline()
                    while at < deadline:
                        self.missed_arrivals += 1
                        at = next_arrival()
                return
            if phase == "measure":
                # The open loop never pauses: measurement starts on schedule.
                self.budget.start_measuring(at)
            while self.operations_in_flight >= self.config.max_in_flight:
                await self._room.wait()
            recorder = self.measured if phase == "measure" else self.warmup
            recorder.schedule_lag.record(max(0.0, time.perf_counter() - at))
            tg.start_soon(self._operation, phase)

    # -- monitors --------------------------------------------------------------------

    async def _watchdog(self, ops: anyio.CancelScope) -> None:
        """Stop issuing at the deadline even if no worker asks; cancel what outlives the drain."""
        while not self.budget.stopped.is_set():
            self.budget.check(time.perf_counter())
            with anyio.move_on_after(_WATCHDOG_TICK):
                await self.budget.stopped.wait()
        await anyio.sleep(self.config.drain_timeout)
        ops.cancel()

    async def _lag_monitor(self) -> None:
        """Event-loop lag: how late a 10 ms sleep wakes up."""
        while True:
            before = time.perf_counter()
            await anyio.sleep(_LAG_INTERVAL)
            self.lag.record(max(0.0, time.perf_counter() - before - _LAG_INTERVAL))

    async def _ticker(self) -> None:
        """Sample in-flight every 100 ms; call ``on_tick`` (progress) every ``tick`` seconds."""
        next_tick = 0.0
        while True:
            self.timeline.sample(self.live.in_flight)
            now = time.perf_counter()
            if self._on_tick is not None and now >= next_tick:
                next_tick = now + self._tick
                self._on_tick(self)
            await anyio.sleep(_SAMPLE_INTERVAL)

    # -- the run -----------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Issue operations until the budget or a deadline stops it, then drain."""
        end, cpu = self.start, 0.0
        async with anyio.create_task_group() as monitors:
            monitors.start_soon(self._lag_monitor)
            monitors.start_soon(self._ticker)
            with anyio.CancelScope() as ops:
                monitors.start_soon(self._watchdog, ops)
                async with anyio.create_task_group() as tg:
                    if self.config.load_model == "closed":
                        workers = self.config.effective_concurrency
                        for i in range(workers):
                            tg.start_soon(self._worker, i, workers)
                    else:
                        tg.start_soon(self._scheduler, tg)
            end = time.perf_counter()
            cpu = time.process_time() - self._cpu_start
            self.budget.stop("requests")  # a no-op unless every operation ended first
            self.timeline.sample(self.live.in_flight)
            monitors.cancel_scope.cancel()
        measure_start = self.budget.measure_start
        last = self.measured.last_completion
        duration = 0.0 if measure_start is None else max(0.0, (last or end) - measure_start)
        return RunResult(
            measured=self.measured,
            warmup=self.warmup,
            timeline=self.timeline,
            queue_states=self._tracker,
            event_loop_lag=self.lag,
            duration=duration,
            cpu_seconds=cpu,
            peak_in_flight=self.live.peak_in_flight,
            stopped_by=self.budget.stopped_by or "requests",
            measure_start=measure_start,
            missed_arrivals=self.missed_arrivals,
        )
