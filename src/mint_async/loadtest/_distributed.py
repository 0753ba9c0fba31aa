"""Load tests beyond one process: N generators (processes or Ray tasks), one merged report.

A generator that spends ~1 ms of CPU per request tops out near 1,000 req/s on
one core, so a larger endpoint needs several. ``LoadTestConfig(workers=N)``
(``mint-async loadtest --workers N``) runs N generator processes on this
machine; ``ray_address=...`` (``--ray-address``) runs them as Ray tasks, on a
cluster (``"auto"``: the running one) or a local instance (``"local"``).

How the load is split (worker ``i`` of ``N``):

* closed loop: ``concurrency`` and the request budget are divided as evenly as
  integers allow (the first ``c % N`` workers get one more);
* open loop: each worker runs at ``rate / N`` with the same ramp, so the sum of
  the ramps is the configured ramp and the superposition of N Poisson processes
  of rate ``R/N`` is a Poisson process of rate ``R`` (``constant`` arrivals are
  evenly spaced per worker, so N of them are due at the same instants);
  ``max_in_flight`` is divided too;
* each worker has its own seed (``seed * 65536 + i``) and its own
  ``ServiceClient``: its own session, so its own sampling sessions and seq-id
  namespace — no two workers ever contend for a sequence number;
* ``duration``, ``timeout``, ``drain_timeout`` and the warmup duration apply to
  each worker as they are; the warmup request count is divided.

Every worker sets its workloads up, then waits at a start barrier (so none runs
alone while another is still importing), then runs the ordinary engine. The
coordinator (this process) starts the local server when there is no base URL
(once, for all workers — on a cluster, pass a ``base_url`` the nodes can reach),
collects the workers' raw results and merges them **exactly**: counters add,
histograms merge bucket by bucket and keep the raw values of every worker while
the total stays within ``keep_samples`` (so percentiles are exact, as in one
process; beyond that the merged buckets give the same ±0.05 % bound as one
process's would). Timestamps are moved onto one clock with each worker's
``time.time() - time.perf_counter()``; the merged window runs from the first
worker's measurement start to the last worker's last completion, and throughput
is counted over it. Client CPU is the sum of the workers' CPU; ``peak_in_flight``
is the sum of the workers' peaks (an upper bound: their peaks need not coincide).
The report has the same format as a single-process run's (its config block says
how many workers ran).

Local workers are *spawned* processes (not forked: the coordinator may hold
threads), so a script calling ``loadtest.run(LoadTestConfig(workers=N))`` needs
the usual ``if __name__ == "__main__":`` guard. Ray workers import
``mint_async`` on their node: install it there (``pip install
'mint-async[ray]'``). A started-here Ray instance (``"local"``, or an address
when Ray is not initialised yet) is shut down afterwards; one the caller
initialised is left running.
"""

from __future__ import annotations

import datetime
import importlib
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.context import SpawnProcess
from typing import Any, Final, Literal, Protocol

import anyio

from .._exceptions import InvalidInputError
from .._service import ServiceClient
from ._build_report import build_report
from ._config import LoadTestConfig
from ._drive import client_limits, drive
from ._engine import RunResult
from ._histogram import LatencyHistogram
from ._recorder import QueueStateTracker, Recorder, Timeline
from ._report import LoadTestReport
from ._target import Target, open_target_sync, server_delta

__all__ = ["WorkerResult", "merge_results", "run_distributed", "run_worker", "split_config"]

Backend = Literal["asyncio", "trio"]
_STOP_ORDER: Final = ("error", "timeout", "duration", "requests")
"""Which ``stopped_by`` wins when workers disagree (the most telling first)."""
_GATE_POLL: Final = 0.02
_START_GRACE: Final = 600.0
"""Seconds a worker waits at the start barrier for the others (process or node start-up)."""


def _share(total: int, n: int, i: int) -> int:
    return total // n + (1 if i < total % n else 0)


def split_config(config: LoadTestConfig, target: Target) -> list[LoadTestConfig]:
    """One single-process config per worker, aimed at ``target``; together they are ``config``."""
    n = config.workers
    out: list[LoadTestConfig] = []
    requests = config.effective_requests
    for i in range(n):
        settings: dict[str, Any] = {
            "workers": 1,
            "ray_address": None,
            "base_url": target.base_url,
            "api_key": target.api_key,
            "server_args": (),
            "progress": False,
            "seed": config.seed * 65536 + i,
            "warmup_requests": _share(config.warmup_requests, n, i),
            "requests": None if requests is None else _share(requests, n, i),
        }
        if config.load_model == "closed":
            settings["concurrency"] = _share(config.effective_concurrency, n, i)
        else:
            assert config.rate is not None
            settings["rate"] = config.rate / n
            settings["max_in_flight"] = _share(config.max_in_flight, n, i)
        out.append(replace(config, **settings))
    return out


@dataclass(frozen=True, kw_only=True)
class WorkerResult:
    """What one generator sends back: its raw result, timestamps on its own clock."""

    index: int
    result: RunResult
    clock: float
    """``time.time() - time.perf_counter()`` in the worker: adds to its timestamps to make
    them wall-clock seconds, comparable across processes (and, NTP permitting, machines)."""


class _Gate(Protocol):
    def wait(self, timeout: float) -> None: ...


@dataclass(frozen=True)
class _ProcessGate:
    """A start barrier shared by spawned processes."""

    barrier: Any  # multiprocessing.synchronize.Barrier (its type is not public)

    def wait(self, timeout: float) -> None:
        self.barrier.wait(timeout)


@dataclass(frozen=True)
class _RayGate:
    """A start barrier kept by a Ray actor (polled: no asyncio actor needed)."""

    actor: Any
    parties: int

    def wait(self, timeout: float) -> None:
        ray = _ray()
        ray.get(self.actor.arrive.remote())
        deadline = time.monotonic() + timeout
        while ray.get(self.actor.arrived.remote()) < self.parties:
            if time.monotonic() > deadline:
                msg = "the other load-test workers did not start in time"
                raise TimeoutError(msg)
            time.sleep(_GATE_POLL)


def _ray() -> Any:
    """The ``ray`` module, untyped (its stubs are partial; only a few calls are used here)."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        msg = "--ray-address needs Ray: pip install 'mint-async[ray]'"
        raise InvalidInputError(msg) from None


class _Counter:
    """The Ray actor behind :class:`_RayGate`."""

    def __init__(self) -> None:
        self._n = 0

    def arrive(self) -> None:
        self._n += 1

    def arrived(self) -> int:
        return self._n


async def _worker_async(config: LoadTestConfig, index: int, gate: _Gate | None) -> WorkerResult:

    assert config.base_url is not None
    target = Target(base_url=config.base_url, api_key=config.api_key or "")
    settings: dict[str, Any] = {"limits": client_limits(config), **config.client_settings}

    async def ready() -> None:
        if gate is not None:
            await anyio.to_thread.run_sync(gate.wait, _START_GRACE)

    async with ServiceClient(base_url=target.base_url, api_key=config.api_key, **settings) as svc:
        result, _ = await drive(config, svc, target, ready=ready)
    result = replace(result, queue_states=result.queue_states.frozen())
    return WorkerResult(index=index, result=result, clock=time.time() - time.perf_counter())


def run_worker(
    config: LoadTestConfig, index: int, backend: Backend, gate: _Gate | None = None
) -> WorkerResult:
    """Run generator ``index`` (a single-process config from :func:`split_config`); blocking."""
    return anyio.run(_worker_async, config, index, gate, backend=backend)


def _process_main(
    config: LoadTestConfig,
    index: int,
    backend: Backend,
    gate: _Gate,
    conn: multiprocessing.connection.Connection,
) -> None:
    """Entry point of a spawned worker process: send back the result, or the error's text."""
    try:
        outcome: WorkerResult | str = run_worker(config, index, backend, gate)
    except BaseException as exc:  # noqa: BLE001 - reported to the coordinator, which raises
        outcome = f"{type(exc).__name__}: {exc}"
    conn.send(outcome)
    conn.close()


def _run_processes(configs: Sequence[LoadTestConfig], backend: Backend) -> list[WorkerResult]:
    # spawn, not fork: the parent may hold threads (the server's reader) and event-loop state.
    ctx = multiprocessing.get_context("spawn")
    gate = _ProcessGate(ctx.Barrier(len(configs)))
    procs: list[tuple[SpawnProcess, multiprocessing.connection.Connection]] = []
    try:
        for i, cfg in enumerate(configs):
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_process_main,
                args=(cfg, i, backend, gate, sender),
                name=f"mint-loadtest-worker-{i}",
                daemon=True,
            )
            proc.start()
            sender.close()
            procs.append((proc, receiver))
        outcomes: list[WorkerResult] = []
        for i, (proc, receiver) in enumerate(procs):
            try:
                outcome = receiver.recv()
            except EOFError:
                gate.barrier.abort()
                msg = f"load-test worker {i} exited without a result (status {proc.exitcode})"
                raise RuntimeError(msg) from None
            if isinstance(outcome, str):
                gate.barrier.abort()
                msg = f"load-test worker {i} failed: {outcome}"
                raise RuntimeError(msg)
            outcomes.append(outcome)
        return outcomes
    finally:
        for proc, receiver in procs:
            receiver.close()
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join()


def _ray_task(config: LoadTestConfig, index: int, backend: Backend, gate: _RayGate) -> WorkerResult:
    return run_worker(config, index, backend, gate)


def _run_ray(
    configs: Sequence[LoadTestConfig], backend: Backend, address: str
) -> list[WorkerResult]:
    ray = _ray()
    started = False
    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
        started = True
    try:
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < len(configs):
            # Every worker needs its own core, and all must run at once (start barrier).
            msg = f"{len(configs)} workers need {len(configs)} CPUs; the Ray cluster has {cpus:g}"
            raise InvalidInputError(msg)
        counter: Any = ray.remote(num_cpus=0)(_Counter).remote()
        gate = _RayGate(counter, len(configs))
        task: Any = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        refs = [task.remote(cfg, i, backend, gate) for i, cfg in enumerate(configs)]
        try:
            outcomes: list[WorkerResult] = ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            msg = f"a load-test worker failed: {exc.cause!r}"
            raise RuntimeError(msg) from None
        ray.kill(counter)
        return outcomes
    finally:
        if started:
            ray.shutdown()


# -- merging -------------------------------------------------------------------------------


def merge_results(parts: Sequence[WorkerResult], *, keep_samples: int) -> RunResult:
    """One :class:`RunResult` holding every worker's measurements, on one clock (exact)."""
    if not parts:
        msg = "nothing to merge"
        raise InvalidInputError(msg)
    # Wall-clock seconds are the common clock; the merged result's timestamps use it.
    origin = min(p.result.timeline.origin + p.clock for p in parts)
    measured = Recorder(keep_samples=keep_samples)
    warmup = Recorder(keep_samples=keep_samples)
    timeline = Timeline(origin)
    queue_states = QueueStateTracker()
    lag = LatencyHistogram(keep_samples=keep_samples)
    starts: list[float] = []
    ends: list[float] = []
    for p in parts:
        r = p.result
        measured.merge(r.measured, shift=p.clock)
        warmup.merge(r.warmup, shift=p.clock)
        timeline.merge(r.timeline, shift=p.clock)
        queue_states.merge(r.queue_states)
        lag.merge(r.event_loop_lag)
        if r.measure_start is not None:
            starts.append(r.measure_start + p.clock)
            ends.append(r.measure_start + p.clock + r.duration)
    stops = {p.result.stopped_by for p in parts}
    stopped_by = next((s for s in _STOP_ORDER if s in stops), min(stops))
    return RunResult(
        measured=measured,
        warmup=warmup,
        timeline=timeline,
        queue_states=queue_states,
        event_loop_lag=lag,
        duration=max(ends) - min(starts) if starts else 0.0,
        cpu_seconds=sum(p.result.cpu_seconds for p in parts),
        peak_in_flight=sum(p.result.peak_in_flight for p in parts),
        stopped_by=stopped_by,
        measure_start=min(starts) if starts else None,
        missed_arrivals=sum(p.result.missed_arrivals for p in parts),
    )


def run_distributed(
    config: LoadTestConfig,
    *,
    backend: Backend = "asyncio",
    on_parts: Callable[[list[WorkerResult]], None] | None = None,
) -> LoadTestReport:
    """Run ``config`` over its workers (processes or Ray tasks) and merge one report; blocking.

    ``on_parts``: called with the workers' own results before they are merged (tests
    compare the merged report with them).
    """

    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with open_target_sync(config) as target:
        configs = split_config(config, target)
        before = target.statistics_now()
        target.reset_peaks_now()
        if config.ray_address is not None:
            parts = _run_ray(configs, backend, config.ray_address)
        else:
            parts = _run_processes(configs, backend)
        after = target.statistics_now()
    if on_parts is not None:
        on_parts(parts)
    server = server_delta(before, after) if before is not None and after is not None else None
    result = merge_results(parts, keep_samples=config.keep_samples)
    return build_report(config, result, target, server, started_at, backend=backend)
