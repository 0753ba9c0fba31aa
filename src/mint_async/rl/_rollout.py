"""Group rollouts: run the environments of one group against a sampler.

:func:`rollout_group` is the same code in the event loop, in a process-pool
worker and in a Ray actor; only the ``sample`` function differs (a pipeline in
the loop, a worker's own sampling client copy elsewhere). When every
environment of the group opens with the same observation, the first turn is
*one* request with ``num_samples = group size`` (as the hand-written loop does);
later turns of multi-turn episodes go one request per environment.

For ``stable_reinforce`` the ``sample`` function draws with
``record_stability_info=True`` and ``rollout_group(..., record_stability_info=True)``
keeps each action's ``sequence_id`` (required) and marks the group ``recorded``:
its datums then carry provenance spans (:mod:`._data`). A turn's prompt is its
transition's ``observation``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import anyio
import msgspec

from .. import types as t
from .._exceptions import InvalidInputError
from ._env import Action, Env, EnvGroupBuilder, Observation

__all__ = ["SampleFn", "Trajectory", "TrajectoryGroup", "Transition", "rollout_group"]

SampleFn = Callable[[t.ModelInput, int, t.SamplingParams], Awaitable[t.SampleResponse]]
"""``(prompt, num_samples, params) -> response``: how a rollout reaches a sampler."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One turn: the observation's tokens, the action, its reward."""

    observation: list[int]
    action: Action
    reward: float


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One episode of one environment."""

    transitions: list[Transition]

    @property
    def total_reward(self) -> float:
        """The sum of the turns' rewards."""
        return sum(tr.reward for tr in self.transitions)

    @property
    def sampled_tokens(self) -> int:
        """How many tokens the policy produced in this episode."""
        return sum(len(tr.action.tokens) for tr in self.transitions)


@dataclass(slots=True)
class TrajectoryGroup:
    """The trajectories of one group, tagged with the data position and policy version."""

    index: int
    """Data position of the group (``RLDataset.group_builder(index)``)."""
    version: int
    """Policy version of the sampler that produced every sample of the group."""
    trajectories: list[Trajectory]
    metrics: dict[str, float] = field(default_factory=dict[str, float])
    recorded: bool = False
    """Every sample was drawn with ``record_stability_info=True`` and every action names its
    sequence: the group's datums carry ``stable_reinforce`` provenance spans."""

    @property
    def rewards(self) -> list[float]:
        """Each trajectory's total reward."""
        return [tr.total_reward for tr in self.trajectories]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            out += _leaves(error)  # pyright: ignore[reportUnknownArgumentType]
        else:
            out.append(error)
    return out


def single_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error of a task group (so callers see a typed error), else the group.

    Several rollouts that fail alike in the same tick (a bad executor, a bad
    environment) are one error too: same type and message.
    """
    leaves = _leaves(group)
    first = leaves[0]
    if all(type(e) is type(first) and e.args == first.args for e in leaves[1:]):
        return first
    return group


def _params(base: t.SamplingParams, ob: Observation) -> t.SamplingParams:
    changes: dict[str, object] = {}
    if ob.stop is not None:
        changes["stop"] = ob.stop
    if ob.max_tokens is not None:
        changes["max_tokens"] = ob.max_tokens
    return msgspec.structs.replace(base, **changes) if changes else base


def _action(seq: t.SampledSequence, recorded: bool) -> Action:
    tokens = seq.tokens
    logprobs = seq.logprobs
    if logprobs is None:
        msg = "the sampler returned no logprobs; RL needs them for exact off-policy corrections"
        raise InvalidInputError(msg)
    if recorded and seq.sequence_id is None:
        msg = (
            "the sampler returned a sequence without a sequence_id; stable_reinforce names "
            "each sampled sequence in its provenance spans"
        )
        raise InvalidInputError(msg)
    return Action(
        tokens=list(tokens),
        logprobs=[float(x) for x in logprobs],
        stop_reason=seq.stop_reason,
        sequence_id=seq.sequence_id,
    )


async def _episode(
    env: Env,
    first: Observation,
    action: Action,
    sample: SampleFn,
    base: t.SamplingParams,
    recorded: bool,
) -> Trajectory:
    """Finish an episode whose first action is known."""
    transitions: list[Transition] = []
    ob = first
    while True:
        observed = ob.model_input.to_ints()  # before step(), which may reuse its buffers
        result = await env.step(action)
        transitions.append(Transition(observed, action, result.reward))
        if result.done:
            return Trajectory(transitions)
        if result.next_observation is None:
            msg = f"{type(env).__name__}.step() returned done=False without a next_observation"
            raise InvalidInputError(msg)
        ob = result.next_observation
        resp = await sample(ob.model_input, 1, _params(base, ob))
        action = _action(resp.sequences[0], recorded)


async def rollout_group(
    builder: EnvGroupBuilder,
    sample: SampleFn,
    params: t.SamplingParams,
    *,
    index: int,
    version: int,
    record_stability_info: bool = False,
) -> TrajectoryGroup:
    """Run one group's environments to the end; every sample comes from ``sample``.

    ``record_stability_info``: ``sample`` draws with ``record_stability_info=True``;
    every sequence must come back with its ``sequence_id`` and the group is ``recorded``.
    """
    recorded = record_stability_info
    envs: Sequence[Env] = await builder.make_envs()
    if not envs:
        msg = f"group {index}: make_envs() returned no environments"
        raise InvalidInputError(msg)
    firsts = [await env.initial_observation() for env in envs]
    shared = all(
        ob.model_input == firsts[0].model_input
        and ob.stop == firsts[0].stop
        and ob.max_tokens == firsts[0].max_tokens
        for ob in firsts
    )
    actions: list[Action | None] = [None] * len(envs)
    if shared:
        resp = await sample(firsts[0].model_input, len(envs), _params(params, firsts[0]))
        if len(resp.sequences) != len(envs):
            msg = f"asked for {len(envs)} samples, got {len(resp.sequences)}"
            raise InvalidInputError(msg)
        actions = [_action(seq, recorded) for seq in resp.sequences]
    trajectories: list[Trajectory | None] = [None] * len(envs)

    async def run(i: int) -> None:
        first_action = actions[i]
        if first_action is None:
            resp = await sample(firsts[i].model_input, 1, _params(params, firsts[i]))
            first_action = _action(resp.sequences[0], recorded)
        trajectories[i] = await _episode(envs[i], firsts[i], first_action, sample, params, recorded)

    try:
        async with anyio.create_task_group() as tg:
            for i in range(len(envs)):
                tg.start_soon(run, i)
    except BaseExceptionGroup as group:
        raise single_error(group) from None
    done = [tr for tr in trajectories if tr is not None]
    return TrajectoryGroup(index=index, version=version, trajectories=done, recorded=recorded)
