"""mint_async.rl rollouts: shared prompts go out as one request, multi-turn episodes continue."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mint_async import InvalidInputError, rl
from mint_async import types as t
from mint_async.rl._rollout import single_error

pytestmark = pytest.mark.anyio


class ScriptedSampler:
    """A SampleFn answering token ``100 + call number``, logprob -1, recording every call."""

    def __init__(self, *, logprobs: bool = True) -> None:
        self.calls: list[tuple[list[int], int, t.SamplingParams]] = []
        self._logprobs = logprobs

    async def __call__(
        self, prompt: t.ModelInput, n: int, params: t.SamplingParams
    ) -> t.SampleResponse:
        self.calls.append((prompt.to_ints(), n, params))
        token = 100 + len(self.calls)
        return t.SampleResponse(
            sequences=[
                t.SampledSequence(
                    stop_reason="stop",
                    tokens_np=[token],
                    logprobs_np=[-1.0] if self._logprobs else None,
                )
                for _ in range(n)
            ]
        )


class TwoTurnEnv:
    """Turn 1 rewards 0 and asks again (the observation extends the conversation); turn 2 rewards 1."""

    def __init__(self, prompt: list[int]) -> None:
        self.tokens = list(prompt)
        self.turn = 0

    async def initial_observation(self) -> rl.Observation:
        return rl.Observation(t.ModelInput.from_ints(self.tokens), stop=[0], max_tokens=3)

    async def step(self, action: rl.Action) -> rl.StepResult:
        self.turn += 1
        self.tokens += [*action.tokens, 9]
        if self.turn == 1:
            nxt = rl.Observation(t.ModelInput.from_ints(self.tokens), max_tokens=2)
            return rl.StepResult(reward=0.0, done=False, next_observation=nxt)
        return rl.StepResult(reward=1.0)


class TwoTurnGroup:
    async def make_envs(self) -> Sequence[rl.Env]:
        return [TwoTurnEnv([1, 2]), TwoTurnEnv([1, 2])]


class BrokenEnv(TwoTurnEnv):
    async def step(self, action: rl.Action) -> rl.StepResult:
        return rl.StepResult(reward=0.0, done=False)


class BrokenGroup:
    async def make_envs(self) -> Sequence[rl.Env]:
        return [BrokenEnv([1])]


async def test_shared_prompt_is_one_request_with_group_size_samples() -> None:
    """Token environments sharing a prompt are sampled with one num_samples=4 request."""
    sampler = ScriptedSampler()
    builder = rl.TokenGroupBuilder((5, 6), lambda toks: float(toks[0]), group_size=4, max_tokens=7)
    group = await rl.rollout_group(
        builder, sampler, t.SamplingParams(max_tokens=1), index=3, version=2
    )
    assert [(p, n) for p, n, _ in sampler.calls] == [([5, 6], 4)]
    assert sampler.calls[0][2].max_tokens == 7  # the observation's cap wins
    assert (group.index, group.version, group.rewards) == (3, 2, [101.0] * 4)


async def test_multi_turn_episodes_sample_each_turn() -> None:
    """A second turn is sampled per environment on the extended observation; rewards add up."""
    sampler = ScriptedSampler()
    group = await rl.rollout_group(TwoTurnGroup(), sampler, t.SamplingParams(), index=0, version=0)
    assert sampler.calls[0][:2] == ([1, 2], 2)
    assert sorted(n for _, n, _ in sampler.calls[1:]) == [1, 1]
    assert all(p == [1, 2, 101, 9] for p, _, _ in sampler.calls[1:])
    assert group.rewards == [1.0, 1.0]
    datums = rl.trajectory_datums(group.trajectories[0], 1.0)
    assert len(datums) == 1  # the second observation extends the first: one datum


async def test_missing_logprobs_are_an_error() -> None:
    """RL needs the sampler's logprobs; a response without them is a typed error."""
    builder = rl.TokenGroupBuilder((5,), lambda toks: 0.0, group_size=2)
    with pytest.raises(InvalidInputError, match="logprobs"):
        await rl.rollout_group(
            builder, ScriptedSampler(logprobs=False), t.SamplingParams(), index=0, version=0
        )


async def test_continuing_without_observation_is_an_error() -> None:
    """done=False without a next observation is a clear error, not a hang."""
    with pytest.raises(InvalidInputError, match="next_observation"):
        await rl.rollout_group(
            BrokenGroup(), ScriptedSampler(), t.SamplingParams(), index=0, version=0
        )


def test_single_error_unwraps_one_error_or_identical_ones() -> None:
    """One failure, or many alike (same type and message), surface as that typed error."""
    alike = BaseExceptionGroup("g", [InvalidInputError("bad"), InvalidInputError("bad")])
    nested = BaseExceptionGroup("g", [BaseExceptionGroup("h", [InvalidInputError("bad")])])
    assert isinstance(single_error(alike), InvalidInputError)
    assert isinstance(single_error(nested), InvalidInputError)
    different = BaseExceptionGroup("g", [InvalidInputError("bad"), InvalidInputError("worse")])
    assert single_error(different) is different
    mixed = BaseExceptionGroup("g", [InvalidInputError("bad"), ValueError("bad")])
    assert single_error(mixed) is mixed


class NamingSampler(ScriptedSampler):
    """A ScriptedSampler that names each sequence ``call:i`` as a recording server does."""

    async def __call__(
        self, prompt: t.ModelInput, n: int, params: t.SamplingParams
    ) -> t.SampleResponse:
        resp = await super().__call__(prompt, n, params)
        for i, seq in enumerate(resp.sequences):
            seq.sequence_id = f"{len(self.calls)}:{i}"
        return resp


async def test_recorded_rollouts_keep_each_sequence_id() -> None:
    """With record_stability_info every action names its sequence and the group is recorded."""
    group = await rl.rollout_group(
        TwoTurnGroup(),
        NamingSampler(),
        t.SamplingParams(),
        index=0,
        version=0,
        record_stability_info=True,
    )
    assert group.recorded
    ids = [[str(tr.action.sequence_id) for tr in traj.transitions] for traj in group.trajectories]
    # One shared first request (two samples), then one request per environment.
    assert sorted(i[0] for i in ids) == ["1:0", "1:1"]
    assert sorted(i[1] for i in ids) == ["2:0", "3:0"]


async def test_recorded_rollouts_need_sequence_ids() -> None:
    """A sampler that names no sequence cannot serve stable_reinforce: InvalidInputError."""
    with pytest.raises(InvalidInputError, match="sequence_id"):
        await rl.rollout_group(
            TwoTurnGroup(),
            ScriptedSampler(),
            t.SamplingParams(),
            index=0,
            version=0,
            record_stability_info=True,
        )
    plain = await rl.rollout_group(
        TwoTurnGroup(), ScriptedSampler(), t.SamplingParams(), index=0, version=0
    )
    assert not plain.recorded
