"""Where rollouts run: the event loop (default), a process pool, or Ray actors.

Environment work — reward models, code execution — is often the bottleneck, and
CPU-bound rewards stall an event loop. :class:`ProcessPoolRollouts` and
:class:`RayRollouts` ship each group rollout to a worker: the job carries a
pickled copy of the current sampling client pinned to its own seq-id namespace
(``data position + 1``), so every worker samples through its own client copy and
request ids stay deterministic and never collide, whoever runs the job.

A job with ``record_stability_info`` (``stable_reinforce``) samples with
``record_stability_info=True`` wherever it runs: the worker's client copy names
the engine's sampling session, so the server's records belong to the training
run's session, and each action's ``sequence_id`` travels back in the pickled group.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.to_process
import anyio.to_thread

from .. import SamplingClient
from .. import types as t
from .._exceptions import InvalidInputError
from ._env import EnvGroupBuilder
from ._rollout import SampleFn, TrajectoryGroup, rollout_group

__all__ = [
    "InLoopRollouts",
    "ProcessPoolRollouts",
    "RayRollouts",
    "RolloutExecutor",
    "RolloutJob",
    "check_recorded",
    "rollout_namespace",
    "run_payload",
]

_NAMESPACES = 10**9 - 1


def rollout_namespace(index: int) -> int:
    """The seq-id namespace of the rollout at data position ``index`` (never 0)."""
    return index % _NAMESPACES + 1


@dataclass(frozen=True, slots=True)
class RolloutJob:
    """One group rollout to run."""

    builder: EnvGroupBuilder
    params: t.SamplingParams
    index: int
    version: int
    sampler: SamplingClient
    sample: SampleFn
    """The engine's own path to the sampler (its pipeline); workers use ``sampler`` instead."""
    record_stability_info: bool = False
    """Sample with ``record_stability_info=True`` and keep each sequence id (``stable_reinforce``);
    ``sample`` already does, a worker's ``sampler`` is asked to."""


def check_recorded(job: RolloutJob, group: TrajectoryGroup, executor: object) -> None:
    """InvalidInputError unless a job that asked for stability records got a ``recorded`` group.

    Checked before the group can reach a batch, so nothing is sent for it.
    """
    if job.record_stability_info and not group.recorded:
        msg = (
            f"{type(executor).__name__} returned a group without stability records: "
            "stable_reinforce needs every sample drawn with record_stability_info=True "
            "(honour RolloutJob.record_stability_info: rollout_group(..., "
            "record_stability_info=True) with a sample function that records)"
        )
        raise InvalidInputError(msg)


class RolloutExecutor(Protocol):
    """Runs group rollouts somewhere."""

    async def rollout(self, job: RolloutJob) -> TrajectoryGroup:
        """Run ``job`` to the end."""
        ...

    async def aclose(self) -> None:
        """Release the workers."""
        ...


class InLoopRollouts:
    """Rollouts in the event loop, sampling through the engine's pipeline (the default)."""

    async def rollout(self, job: RolloutJob) -> TrajectoryGroup:
        """Run the group here."""
        return await rollout_group(
            job.builder,
            job.sample,
            job.params,
            index=job.index,
            version=job.version,
            record_stability_info=job.record_stability_info,
        )

    async def aclose(self) -> None:
        """Nothing to release."""


def _payload(job: RolloutJob) -> bytes:
    sampler = job.sampler.with_seq_namespace(rollout_namespace(job.index))
    record = job.record_stability_info
    return pickle.dumps((sampler, job.builder, job.params, job.index, job.version, record))


async def _run_payload(payload: bytes) -> bytes:
    sampler, builder, params, index, version, record = pickle.loads(payload)  # noqa: S301 - our own jobs
    sample: SampleFn = functools.partial(sampler.sample, record_stability_info=record)
    async with sampler:  # closes the copy's own connections
        group = await rollout_group(
            builder, sample, params, index=index, version=version, record_stability_info=record
        )
    return pickle.dumps(group)


def run_payload(payload: bytes) -> bytes:
    """Worker entry point: run one pickled rollout job in a fresh event loop."""
    return anyio.run(_run_payload, payload)


class ProcessPoolRollouts:
    """Group rollouts in worker processes (``anyio.to_process``), ``workers`` at a time.

    Builders and their reward functions must pickle (module-level definitions).
    """

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            msg = f"workers must be >= 1, got {workers}"
            raise InvalidInputError(msg)
        self._limiter = anyio.CapacityLimiter(workers)

    async def rollout(self, job: RolloutJob) -> TrajectoryGroup:
        """Run the group in a worker process."""
        out = await anyio.to_process.run_sync(
            run_payload, _payload(job), limiter=self._limiter, cancellable=True
        )
        group: TrajectoryGroup = pickle.loads(out)  # noqa: S301 - our own worker
        return group

    async def aclose(self) -> None:
        """anyio owns the worker processes; nothing to release."""


class _RayWorker:
    """A Ray actor running rollouts (each call in its own event loop, on its own thread)."""

    def __init__(self, worker_index: int) -> None:
        self.worker_index = worker_index

    def rollout(self, payload: bytes) -> bytes:
        return run_payload(payload)


class RayRollouts:
    """Group rollouts on ``num_workers`` Ray actors (round-robin by data position).

    Needs ``ray`` (the ``ray`` extra) and an initialised Ray (``ray.init(...)``).
    Each actor runs up to ``concurrency`` rollouts at once.
    """

    def __init__(self, num_workers: int = 2, *, concurrency: int = 16) -> None:
        try:
            import ray  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            msg = "RayRollouts needs ray: pip install 'mint-async[ray]'"
            raise InvalidInputError(msg) from exc
        if num_workers < 1 or concurrency < 1:
            msg = "num_workers and concurrency must be >= 1"
            raise InvalidInputError(msg)
        self._ray: Any = ray
        actor: Any = ray.remote(_RayWorker)
        self._actors: list[Any] = [
            actor.options(max_concurrency=concurrency).remote(i) for i in range(num_workers)
        ]
        # One thread per awaited result: ray.get blocks, and trio cannot await an ObjectRef.
        self._limiter = anyio.CapacityLimiter(num_workers * concurrency)

    async def rollout(self, job: RolloutJob) -> TrajectoryGroup:
        """Run the group on actor ``index % num_workers``."""
        actor = self._actors[job.index % len(self._actors)]
        ref = actor.rollout.remote(_payload(job))
        try:
            out: bytes = await anyio.to_thread.run_sync(
                self._ray.get, ref, limiter=self._limiter, abandon_on_cancel=True
            )
        except BaseException:
            self._ray.cancel(ref)
            raise
        group: TrajectoryGroup = pickle.loads(out)  # noqa: S301 - our own actor
        return group

    async def aclose(self) -> None:
        """Stop the actors."""
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
