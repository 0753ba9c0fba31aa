"""The engine: rollouts in flight, bounded staleness, streamed training, in-flight weight refresh.

One code path for every ``max_steps_off_policy`` (``K``):

* **Rollouts** start whenever the staleness budget allows: a rollout started on
  policy version ``v`` can serve steps up to ``v + K``, so one is started while
  the groups in the pool and in flight (that can still serve the next step) are
  fewer than ``groups_per_step * (v + K - step + 1)`` (+ ``oversample``). Each
  slot is refilled the moment its group completes — never per cohort at a step
  boundary, so the slowest group of a batch gates nothing once K >= 1.
* **Training**: as soon as the pool holds a full batch valid for the next step,
  ``forward_backward``, ``optim_step`` and ``save_weights_for_sampler`` are
  submitted back to back (the server runs them in seq order); the trainer does
  not wait for their results, so the next batch's ``forward_backward`` is
  queued behind the weight export, and step 0's batch overlaps step 1's sampling.
* **Weights** reach the samplers without stopping them: a finisher task awaits
  the export, opens a sampling client on it and switches new rollouts to it;
  rollouts in flight finish on the version they started with. With
  ``sync_weights_every = N > 1`` only every N-th step exports (the trainer skips
  N - 1 exports of every N), so versions between exports are never sampled.

With ``K = 0`` the budget is exactly one batch per version and nothing starts
until the new version is live: synchronous on-policy training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import numpy as np

from .. import MetricsSink, SamplePipeline, SamplingClient, TrainingClient
from .. import types as t
from ._config import RLConfig
from ._data import group_datums
from ._env import RLDataset
from ._ops import BusyClock, Checkpoint, MetricsLog, SerialClock, StepMetrics
from ._rollout import TrajectoryGroup, single_error
from ._workers import InLoopRollouts, RolloutExecutor, RolloutJob, check_recorded

__all__ = ["RLLoop", "StepCallback"]

logger = logging.getLogger("mint_async.rl")

StepCallback = Callable[[StepMetrics], None]


@dataclass(slots=True)
class _Version:
    number: int
    client: SamplingClient
    path: str
    pipe: SamplePipeline | None = None
    active: int = 0
    retired: anyio.Event = field(default_factory=anyio.Event)


@dataclass(slots=True)
class _Submitted:
    step: int
    groups: list[TrajectoryGroup]
    datums: int
    constant: int
    dropped: int
    downweighted: int
    submitted: float
    futures: list[tuple[str, Any]]
    snapshot: Checkpoint | None


class RLLoop:
    """Runs :class:`RLConfig` over an :class:`RLDataset` with one training client.

    Use :func:`mint_async.rl.train` unless you already hold the training client.
    ``metrics_sink`` (a :data:`mint_async.MetricsSink`) gets each step's
    :meth:`StepMetrics.scalars` as ``("rl", {...})``; ``on_step`` gets the record itself.
    """

    def __init__(
        self,
        training_client: TrainingClient,
        dataset: RLDataset,
        config: RLConfig,
        *,
        executor: RolloutExecutor | None = None,
        checkpoint: Checkpoint | None = None,
        on_step: StepCallback | None = None,
        metrics_sink: MetricsSink | None = None,
    ) -> None:
        self._tc = training_client
        self._sink = metrics_sink
        self._dataset = dataset
        self._config = config
        self._executor: RolloutExecutor = executor or InLoopRollouts()
        self._resume = checkpoint
        self._on_step = on_step
        self.history: list[StepMetrics] = []
        self._step = checkpoint.step if checkpoint else 0
        self._next_index = checkpoint.next_index if checkpoint else 0
        self._restart = list(checkpoint.pending) if checkpoint else []
        self._dropped_total = checkpoint.dropped_total if checkpoint else 0
        self._pool: list[tuple[int, TrajectoryGroup]] = []
        self._completed = 0
        self._in_flight: dict[int, int] = {}
        self._versions: dict[int, _Version] = {}
        self._version = -1
        self._changed = anyio.Event()
        self._sampler_clock = BusyClock()
        self._trainer_ops: list[tuple[float, float]] = []
        self._tokens = 0
        self._started = 0.0
        self._step_written: dict[int, anyio.Event] = {}
        self._dropped_pending = 0
        self._log: MetricsLog | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._unfinished: dict[int, _Submitted] = {}

    # -- state changes ------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _budget_open(self) -> bool:
        """Whether a rollout started now, on the current version, could still be trained."""
        c = self._config
        k, g = c.max_steps_off_policy, c.groups_per_step
        last = min(self._version + k, c.steps - 1)  # the latest step it can serve
        demand = g * (last - self._step + 1)
        if demand <= 0:
            return False
        oldest = self._step - k
        drop = c.stale == "drop"
        supply = sum(1 for _, gr in self._pool if not drop or gr.version >= oldest)
        supply += sum(1 for v in self._in_flight.values() if not drop or v >= oldest)
        cap = c.max_rollouts_in_flight
        return supply < demand + c.oversample and (cap is None or len(self._in_flight) < cap)

    async def _submitter(self) -> None:
        while True:
            while not self._budget_open():
                await self._changed.wait()
            if self._restart:
                index = self._restart.pop(0)
            else:
                index, self._next_index = self._next_index, self._next_index + 1
            version = self._versions[self._version]
            version.active += 1
            self._in_flight[index] = version.number
            self._sampler_clock.add()
            assert self._tg is not None
            self._tg.start_soon(self._rollout, index, version)

    async def _rollout(self, index: int, version: _Version) -> None:
        pipe = version.pipe
        assert pipe is not None
        # stable_reinforce trains on the server's records of the samples, named by sequence id.
        record = self._config.loss_fn == "stable_reinforce"

        async def sample(
            prompt: t.ModelInput, n: int, params: t.SamplingParams
        ) -> t.SampleResponse:
            return await (await pipe.submit(prompt, n, params, record_stability_info=record))

        job = RolloutJob(
            builder=self._dataset.group_builder(index),
            params=self._config.sampling_params,
            index=index,
            version=version.number,
            sampler=version.client,
            sample=sample,
            record_stability_info=record,
        )
        try:
            group = await self._executor.rollout(job)
        finally:
            del self._in_flight[index]
            self._sampler_clock.remove()
            version.active -= 1
            if version.active == 0 and version.number < self._version:
                version.retired.set()
        check_recorded(job, group, self._executor)
        self._tokens += sum(tr.sampled_tokens for tr in group.trajectories)
        self._pool.append((self._completed, group))
        self._completed += 1
        self._notify()

    async def _serve_version(
        self,
        version: _Version,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Own the version's pipeline until it is superseded and its rollouts are done."""
        async with version.client.pipeline(max_in_flight=self._config.max_sample_in_flight) as pipe:
            version.pipe = pipe
            task_status.started()
            await version.retired.wait()
        self._versions.pop(version.number, None)

    async def _switch(self, number: int, client: SamplingClient, path: str) -> None:
        """Make ``number`` the version new rollouts use (ignored if not newer)."""
        if number <= self._version:
            return
        version = _Version(number, client, path)
        assert self._tg is not None
        await self._tg.start(self._serve_version, version)
        old = self._versions.get(self._version)
        self._versions[number] = version
        self._version = number
        if old is not None and old.active == 0:
            old.retired.set()
        self._notify()

    # -- the trainer ----------------------------------------------------------------

    async def _take_batch(self) -> tuple[list[TrajectoryGroup], list[float], int]:
        """Wait for a full batch valid for the next step: (groups, weights, dropped)."""
        c = self._config
        dropped = 0
        while True:
            oldest = self._step - c.max_steps_off_policy
            if c.stale == "drop":
                fresh = [(i, g) for i, g in self._pool if g.version >= oldest]
                dropped += len(self._pool) - len(fresh)
                self._pool = fresh
            if len(self._pool) >= c.groups_per_step:
                break
            await self._changed.wait()
        # Oldest versions first: they are the next to expire.
        self._pool.sort(key=lambda item: (item[1].version, item[0]))
        taken = [g for _, g in self._pool[: c.groups_per_step]]
        self._pool = self._pool[c.groups_per_step :]
        weights = [
            c.stale_weight ** max(0, self._step - g.version - c.max_steps_off_policy) for g in taken
        ]
        return taken, weights, dropped

    def _snapshot(self, step: int) -> Checkpoint:
        pending = sorted({*self._in_flight, *(g.index for _, g in self._pool), *self._restart})
        return Checkpoint(
            step=step,
            state_path="",
            sampler_version=step,
            sampler_path="",
            next_index=self._next_index,
            pending=pending,
            dropped_total=self._dropped_total,
        )

    async def _train_step(self) -> _Submitted:
        c = self._config
        step = self._step
        groups, weights, dropped = await self._take_batch()
        # The batch left the pool: count the step as taken before the next await, or the
        # submitter would see the budget of step ``step`` open again and oversample it.
        self._step = step + 1
        self._dropped_total += dropped
        due = c.checkpoint_every and (step + 1) % c.checkpoint_every == 0
        snapshot = self._snapshot(step + 1) if due else None
        self._notify()
        datums: list[t.Datum] = []
        constant = 0
        for group, weight in zip(groups, weights, strict=True):
            built = group_datums(group, c.advantage, weight)
            if built is None:
                constant += 1
            else:
                datums += built
        submitted = time.monotonic()
        futures: list[tuple[str, Any]] = []
        # Submitted back to back, in seq order; nothing here waits for a result.
        if datums:
            futures.append(
                ("fb", await self._tc.forward_backward(datums, c.loss_fn, c.loss_fn_config))
            )
            futures.append(("opt", await self._tc.optim_step(c.adam)))
        # Every ``sync_weights_every`` steps, before a checkpoint (which names a sampler),
        # and after the last step, the samplers get the new weights.
        if (step + 1) % c.sync_weights_every == 0 or snapshot is not None or step + 1 == c.steps:
            futures.append(
                ("save", await self._tc.save_weights_for_sampler(f"{c.name}-{step + 1:06d}"))
            )
        if snapshot is not None:
            futures.append(("state", await self._tc.save_state(f"{c.name}-state-{step + 1:06d}")))
        downweighted = sum(1 for w in weights if w < 1.0)
        return _Submitted(
            step, groups, len(datums), constant, dropped, downweighted, submitted, futures, snapshot
        )

    async def _finish_step(self, sub: _Submitted) -> None:
        """Await a step's results, switch samplers to its weights, checkpoint, log."""
        loss: float | None = None
        state_path = ""
        sampler_path = ""
        for kind, fut in sub.futures:
            result = await fut
            self._trainer_ops.append((sub.submitted, time.monotonic()))
            if kind == "fb":
                loss = float(result.loss)
            elif kind == "save":
                sampler_path = result.path
                client = await self._tc.create_sampling_client(sampler_path)
                await self._switch(sub.step + 1, client, sampler_path)
            elif kind == "state":
                state_path = result.path
        previous = self._step_written.get(sub.step - 1)
        if previous is not None:
            await previous.wait()  # metrics and checkpoints are written in step order
        if sub.snapshot is not None and self._config.run_dir is not None:
            sub.snapshot.state_path = state_path
            sub.snapshot.sampler_path = sampler_path
            sub.snapshot.write(self._config.run_dir)
        self._record(sub, loss)
        self._step_written[sub.step].set()
        self._unfinished.pop(sub.step, None)

    async def _drain(self) -> None:
        """After a cancellation or error: let submitted training ops finish, keep their checkpoint.

        The server runs what was submitted anyway; waiting (bounded by
        ``config.drain_timeout``) means no request of ours is left running and the
        newest confirmed ``save_state`` becomes the resumable checkpoint.
        """
        with anyio.move_on_after(self._config.drain_timeout):
            for step in sorted(self._unfinished):
                sub = self._unfinished[step]
                paths: dict[str, str] = {}
                for kind, fut in sub.futures:
                    try:
                        result = await fut
                    except Exception:  # noqa: BLE001 - reported by the run's own error
                        return
                    if kind in ("save", "state"):
                        paths[kind] = result.path
                if sub.snapshot is not None and self._config.run_dir is not None:
                    sub.snapshot.state_path = paths["state"]
                    sub.snapshot.sampler_path = paths["save"]
                    sub.snapshot.write(self._config.run_dir)

    def _trainer_busy(self) -> float:
        clock = SerialClock()
        for submitted, finished in sorted(self._trainer_ops):
            clock.done(submitted, finished)
        return clock.busy()

    def _record(self, sub: _Submitted, loss: float | None) -> None:
        now = time.monotonic()
        elapsed = max(now - self._started, 1e-9)
        rewards = [r for g in sub.groups for r in g.rewards]
        staleness = [sub.step - g.version for g in sub.groups]
        hist: dict[str, int] = {}
        for s in staleness:
            hist[str(s)] = hist.get(str(s), 0) + 1
        previous = self.history[-1].elapsed if self.history else 0.0
        metrics = StepMetrics(
            step=sub.step,
            reward_mean=float(np.mean(rewards)) if rewards else 0.0,
            reward_std=float(np.std(rewards)) if rewards else 0.0,
            groups=len(sub.groups),
            datums=sub.datums,
            constant_groups=sub.constant,
            dropped=sub.dropped,
            downweighted=sub.downweighted,
            staleness=hist,
            mean_staleness=float(np.mean(staleness)) if staleness else 0.0,
            sampled_tokens=self._tokens,
            tokens_per_second=self._tokens / elapsed,
            trainer_busy_fraction=min(1.0, self._trainer_busy() / elapsed),
            sampler_busy_fraction=min(1.0, self._sampler_clock.busy() / elapsed),
            elapsed=elapsed,
            step_seconds=elapsed - previous,
            rollouts_in_flight=len(self._in_flight),
            pool=len(self._pool),
            training_ops_in_flight=sum(1 for e in self._step_written.values() if not e.is_set())
            - 1,
            sampler_version=self._version,
            data_indices=sorted(g.index for g in sub.groups),
            loss=loss,
        )
        self.history.append(metrics)
        if self._log is not None:
            self._log.write(metrics)
        if self._sink is not None:
            self._sink("rl", metrics.scalars())
        if self._on_step is not None:
            self._on_step(metrics)

    # -- the run ----------------------------------------------------------------------

    async def _first_sampler(self) -> None:
        """The sampler to start from: the checkpoint's, or the initial weights'."""
        c = self._config
        if self._resume is not None:
            path = self._resume.sampler_path
            number = self._resume.sampler_version
        else:
            fut = await self._tc.save_weights_for_sampler(f"{c.name}-{0:06d}")
            path = (await fut).path
            number = 0
        await self._switch(number, await self._tc.create_sampling_client(path), path)

    async def run(self) -> list[StepMetrics]:
        """Train until ``config.steps``; returns the metrics of the steps run here."""
        c = self._config
        if c.run_dir is not None:
            self._log = MetricsLog(c.run_dir / "metrics.jsonl", keep_before=self._step)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._first_sampler()
                self._started = time.monotonic()
                tg.start_soon(self._submitter)
                last: anyio.Event | None = None
                while self._step < c.steps:
                    sub = await self._train_step()
                    last = self._step_written[sub.step] = anyio.Event()
                    self._unfinished[sub.step] = sub
                    tg.start_soon(self._finish_step, sub)
                if last is not None:
                    await last.wait()
                tg.cancel_scope.cancel()  # rollouts still in flight are not needed
        except BaseExceptionGroup as group:
            raise single_error(group) from None
        finally:
            with anyio.CancelScope(shield=True):
                if self._unfinished:
                    await self._drain()
                await self._executor.aclose()
        return self.history
