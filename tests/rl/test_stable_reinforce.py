"""stable_reinforce in the RL engine: recorded samples, provenance spans the server checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from mint_async import InvalidInputError, RequestFailedError, SamplingClient, rl
from mint_async import types as t

from .conftest import digits_run

pytestmark = pytest.mark.anyio


def _config(**kwargs: object) -> rl.RLConfig:
    base: dict[str, object] = {
        "steps": 4,
        "groups_per_step": 4,
        "loss_fn": "stable_reinforce",
        "sampling_params": t.SamplingParams(max_tokens=6, temperature=1.0),
        "adam": t.AdamParams(learning_rate=0.05),
    }
    return rl.RLConfig(**{**base, **kwargs})  # type: ignore[arg-type]


@dataclass
class Capturing:
    """The default executor, keeping every group it returns (by data position)."""

    inner: rl.RolloutExecutor = field(default_factory=rl.InLoopRollouts)
    groups: dict[int, rl.TrajectoryGroup] = field(default_factory=dict[int, rl.TrajectoryGroup])
    jobs: list[rl.RolloutJob] = field(default_factory=list[rl.RolloutJob])

    async def rollout(self, job: rl.RolloutJob) -> rl.TrajectoryGroup:
        self.jobs.append(job)
        group = await self.inner.rollout(job)
        self.groups[job.index] = group
        return group

    async def aclose(self) -> None:
        await self.inner.aclose()


def _on_policy_loss(groups: list[rl.TrajectoryGroup]) -> float:
    """-sum(A * sampler logprob) over sampled tokens: stable_reinforce's loss at ratio 1."""
    total = 0.0
    for group in groups:
        for datum in rl.group_datums(group) or []:
            adv = np.asarray(datum.loss_fn_inputs["advantages"].to_numpy(), dtype=np.float64)
            lp = np.asarray(datum.loss_fn_inputs["logprobs"].to_numpy(), dtype=np.float64)
            total -= float((adv * lp).sum())
    return total


@pytest.mark.parametrize("k", [0, 1])
async def test_engine_trains_stable_reinforce(k: int) -> None:
    """Every step's forward_backward is accepted; at K=0 the loss is the on-policy -sum(A lp)."""
    executor = Capturing()
    async with digits_run("default=0") as run:
        config = _config(max_steps_off_policy=k)
        history = await rl.RLLoop(run.tc, run.dataset, config, executor=executor).run()
        stats = run.server.statistics()
    assert [h.step for h in history] == [0, 1, 2, 3]
    assert all(job.record_stability_info for job in executor.jobs)
    for group in executor.groups.values():
        assert group.recorded
        actions = [tr.action for traj in group.trajectories for tr in traj.transitions]
        assert all(a.sequence_id is not None for a in actions)
        assert len({a.sequence_id for a in actions}) == len(actions)
    trained = [h for h in history if h.datums > 0]
    assert trained, "every group of every step had equal rewards"
    # A failed forward_backward would have failed the run; the server ran one per trained step.
    assert stats.executed.get("forward_backward", 0) == len(trained)
    for h in trained:
        assert h.loss is not None and math.isfinite(h.loss)
        if k == 0:
            groups = [executor.groups[i] for i in h.data_indices]
            assert h.loss == pytest.approx(_on_policy_loss(groups), rel=1e-3, abs=1e-3)


class TwoTurnEnv:
    """Two turns rewarded by their digit share; the second observation extends the first or not."""

    def __init__(self, prompt: Sequence[int], reward: rl.DigitShare, *, merge: bool) -> None:
        self._prompt = list(prompt)
        self._reward = reward
        self._merge = merge
        self._turn = 0

    async def initial_observation(self) -> rl.Observation:
        return rl.Observation(t.ModelInput.from_ints(self._prompt), max_tokens=4)

    async def step(self, action: rl.Action) -> rl.StepResult:
        self._turn += 1
        reward = self._reward(action.tokens)
        if self._turn == 2:
            return rl.StepResult(reward=reward)
        # Merged: the conversation goes on after the action; split: a fresh prompt.
        following = (
            [*self._prompt, *action.tokens, *self._prompt[-2:]]
            if self._merge
            else self._prompt[::-1]
        )
        nxt = rl.Observation(t.ModelInput.from_ints(following), max_tokens=3)
        return rl.StepResult(reward=reward, done=False, next_observation=nxt)


@dataclass(frozen=True)
class TwoTurnGroup:
    prompt: tuple[int, ...]
    reward: rl.DigitShare
    merge: bool
    size: int = 4

    async def make_envs(self) -> Sequence[rl.Env]:
        return [TwoTurnEnv(self.prompt, self.reward, merge=self.merge) for _ in range(self.size)]


@dataclass(frozen=True)
class TwoTurnDataset:
    digits: rl.DigitsDataset
    merge: bool

    def group_builder(self, index: int) -> rl.EnvGroupBuilder:
        prompt = self.digits.prompts[index % len(self.digits.prompts)]
        return TwoTurnGroup(prompt, self.digits.reward, self.merge)


@pytest.mark.parametrize("merge", [True, False])
async def test_engine_trains_stable_reinforce_on_multi_turn_episodes(merge: bool) -> None:
    """Two sampling turns per episode, one datum (merged) or one per turn: the server takes every step."""
    executor = Capturing()
    async with digits_run("default=0") as run:
        dataset = TwoTurnDataset(run.dataset, merge)
        config = _config(steps=3, max_steps_off_policy=1)
        history = await rl.RLLoop(run.tc, dataset, config, executor=executor).run()
        stats = run.server.statistics()
    trained = [h for h in history if h.datums > 0]
    assert trained
    assert stats.executed.get("forward_backward", 0) == len(trained)
    assert all(h.loss is not None and math.isfinite(h.loss) for h in trained)
    per_trajectory = {
        len(rl.trajectory_datums(traj, 1.0, provenance=True))
        for g in executor.groups.values()
        for traj in g.trajectories
    }
    assert per_trajectory == ({1} if merge else {2})


async def _recorded_group(
    sc: SamplingClient, dataset: rl.DigitsDataset, *, record: bool
) -> rl.TrajectoryGroup:
    async def sample(prompt: t.ModelInput, n: int, params: t.SamplingParams) -> t.SampleResponse:
        return await sc.sample(prompt, n, params, record_stability_info=record)

    return await rl.rollout_group(
        dataset.group_builder(0),
        sample,
        t.SamplingParams(max_tokens=4, temperature=1.0),
        index=0,
        version=0,
        record_stability_info=record,
    )


async def test_the_server_refuses_a_wrong_span_and_unrecorded_samples() -> None:
    """Good spans train; a span that forgot the shift, or samples never recorded, are refused."""
    async with digits_run("default=0") as run:
        path = (await (await run.tc.save_weights_for_sampler("sr-0")).result()).path
        sc = await run.tc.create_sampling_client(path)
        group = await _recorded_group(sc, run.dataset, record=True)
        datums = [
            d
            for traj in group.trajectories
            for d in rl.trajectory_datums(traj, 1.0, provenance=True)
        ]
        assert datums
        good = await (await run.tc.forward_backward(datums, "stable_reinforce")).result()
        assert math.isfinite(good.loss)

        first = datums[0]
        assert first.model_input_spans is not None and first.loss_fn_input_spans is not None
        prompt, *rest = first.loss_fn_input_spans
        unshifted = t.PromptProvenanceSpan(
            sequence_id=prompt.sequence_id, offset=0, length=prompt.length
        )
        wrong = first.with_provenance(
            model_input=first.model_input_spans, loss_fn_inputs=[unshifted, *rest]
        )
        with pytest.raises(RequestFailedError, match="are not the tokens") as refused:
            await (await run.tc.forward_backward([wrong], "stable_reinforce")).result()
        assert refused.value.category == "user"

        plain = await _recorded_group(sc, run.dataset, record=False)
        unrecorded = [
            d
            for traj in plain.trajectories
            for d in rl.trajectory_datums(traj, 1.0, provenance=True)
        ]
        with pytest.raises(RequestFailedError, match="no stability record"):
            await (await run.tc.forward_backward(unrecorded, "stable_reinforce")).result()


@dataclass
class NotRecording:
    """A custom executor that ignores ``record_stability_info``."""

    async def rollout(self, job: rl.RolloutJob) -> rl.TrajectoryGroup:
        return await rl.rollout_group(
            job.builder, job.sample, job.params, index=job.index, version=job.version
        )

    async def aclose(self) -> None:
        pass


async def test_an_executor_that_does_not_record_fails_before_training() -> None:
    """A group without stability records is a typed error before any forward_backward is sent."""
    async with digits_run("default=0") as run:
        with pytest.raises(InvalidInputError, match="without stability records"):
            await rl.RLLoop(run.tc, run.dataset, _config(), executor=NotRecording()).run()
        stats = run.server.statistics()
    assert stats.accepted.get("forward_backward", 0) == 0
