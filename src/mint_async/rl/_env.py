"""Environments: a small typed async protocol, token-level, single- or multi-turn.

An :class:`Env` shows an :class:`Observation` (tokens to continue, and what ends
the turn), takes an :class:`Action` (the sampled tokens and their logprobs) and
answers a :class:`StepResult` (reward, done, next observation). An
:class:`EnvGroupBuilder` makes the environments of one *group* — they share a
prompt, so their rewards give group-relative advantages — and an
:class:`RLDataset` maps a data position to a group builder, deterministically
(that is what makes resume exact). Builders that run in a process pool or on Ray
workers must pickle: define them (and their reward functions) at module level.

:class:`ChatEnv` adapts chat messages through a :mod:`mint_async.recipe`
renderer: the prompt is ``build_generation_prompt``, the turn ends at the
renderer's stop sequences, and the reward sees ``parse_response``'s message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .. import types as t
from .._exceptions import InvalidInputError
from ..recipe import Message, MessageLike, Renderer, ToolSpecLike

__all__ = [
    "Action",
    "ChatEnv",
    "ChatGroupBuilder",
    "Env",
    "EnvGroupBuilder",
    "Observation",
    "RLDataset",
    "StepResult",
    "TokenEnv",
    "TokenGroupBuilder",
]


@dataclass(frozen=True, slots=True)
class Observation:
    """What the policy continues: tokens, plus this turn's stop sequences and length cap."""

    model_input: t.ModelInput
    stop: list[int] | list[str] | None = None
    """Stop sequences for this turn (``None``: the engine's sampling params decide)."""
    max_tokens: int | None = None
    """Length cap for this turn (``None``: the engine's sampling params decide)."""


@dataclass(frozen=True, slots=True)
class Action:
    """The sampled continuation: tokens, the sampler's logprobs of them, why it stopped."""

    tokens: list[int]
    logprobs: list[float]
    stop_reason: str
    sequence_id: str | None = None
    """The sampled sequence's id (``SampledSequence.sequence_id``): with samples drawn with
    ``record_stability_info``, it names the server's record in ``stable_reinforce`` provenance."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """The environment's answer to an action."""

    reward: float
    done: bool = True
    next_observation: Observation | None = None
    """Required when ``done`` is False: the next turn's observation."""
    metrics: dict[str, float] = field(default_factory=dict[str, float])


@runtime_checkable
class Env(Protocol):
    """One episode: ``initial_observation()``, then ``step(action)`` until done."""

    async def initial_observation(self) -> Observation:
        """The first turn's observation."""
        ...

    async def step(self, action: Action) -> StepResult:
        """Score ``action``; say whether the episode is over and, if not, what comes next."""
        ...


class EnvGroupBuilder(Protocol):
    """Makes the environments of one group (they share a prompt)."""

    async def make_envs(self) -> Sequence[Env]:
        """Fresh environments for one group rollout."""
        ...


class RLDataset(Protocol):
    """Data position -> group builder, deterministic (resume replays positions exactly)."""

    def group_builder(self, index: int) -> EnvGroupBuilder:
        """The group at data position ``index`` (``index`` counts from 0, unbounded)."""
        ...


class TokenEnv:
    """A single-turn token environment: one prompt, ``reward_fn(action tokens)``.

    Example::

        env = TokenEnv([1, 2, 3], reward_fn=lambda toks: float(len(toks) > 3))
    """

    def __init__(
        self,
        prompt: Sequence[int],
        reward_fn: Callable[[list[int]], float],
        *,
        stop: list[int] | list[str] | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if not prompt:
            msg = "TokenEnv needs a non-empty prompt"
            raise InvalidInputError(msg)
        self._prompt = list(prompt)
        self._reward_fn = reward_fn
        self._stop = stop
        self._max_tokens = max_tokens

    async def initial_observation(self) -> Observation:
        """The prompt."""
        return Observation(t.ModelInput.from_ints(self._prompt), self._stop, self._max_tokens)

    async def step(self, action: Action) -> StepResult:
        """Reward the tokens; one turn only."""
        return StepResult(reward=float(self._reward_fn(action.tokens)), done=True)


@dataclass(frozen=True, slots=True)
class TokenGroupBuilder:
    """``group_size`` :class:`TokenEnv` sharing ``prompt`` (picklable if ``reward_fn`` is)."""

    prompt: tuple[int, ...]
    reward_fn: Callable[[list[int]], float]
    group_size: int
    max_tokens: int | None = None
    stop: tuple[int, ...] | None = None

    async def make_envs(self) -> Sequence[Env]:
        """``group_size`` fresh environments."""
        stop = list(self.stop) if self.stop is not None else None
        return [
            TokenEnv(self.prompt, self.reward_fn, stop=stop, max_tokens=self.max_tokens)
            for _ in range(self.group_size)
        ]


ChatReward = Callable[[Message, bool], float]
"""``(assistant message, ended properly) -> reward``."""
ChatReply = Callable[[list[Message]], "MessageLike | None"]
"""``conversation so far -> next user (or tool) message``, or ``None`` to end the episode."""


class ChatEnv:
    """A chat environment over a :class:`~mint_async.recipe.Renderer`.

    The observation is ``renderer.build_generation_prompt(messages)``; a turn
    stops at ``renderer.get_stop_sequences()``; ``reward_fn`` scores the message
    ``renderer.parse_response`` finds in the action. With ``reply``, the episode
    goes on: ``reply(conversation)`` adds the next message (e.g. a tool result)
    until it returns ``None`` or ``max_turns`` is reached; rewards add up.
    ``tools`` (JSON-schema function specs) are rendered into every prompt as the
    model's chat template does; the parsed message carries the ``tool_calls``
    the model made, so ``reward_fn`` and ``reply`` can act on them.

    Example::

        env = ChatEnv(renderer, [{"role": "user", "content": "2+2?"}],
                      reward_fn=lambda msg, ok: float(ok and "4" in str(msg["content"])))
    """

    def __init__(
        self,
        renderer: Renderer,
        messages: Sequence[MessageLike],
        reward_fn: ChatReward,
        *,
        reply: ChatReply | None = None,
        max_turns: int = 1,
        max_tokens: int | None = None,
        tools: Sequence[ToolSpecLike] | None = None,
    ) -> None:
        if max_turns < 1:
            msg = f"max_turns must be >= 1, got {max_turns}"
            raise InvalidInputError(msg)
        self._renderer = renderer
        self._messages: list[MessageLike] = list(messages)
        self._reward_fn = reward_fn
        self._reply = reply
        self._max_turns = max_turns
        self._max_tokens = max_tokens
        self._tools = list(tools) if tools is not None else None
        self._turns = 0
        self.conversation: list[Message] = []
        """The assistant (and reply) messages of this episode so far."""

    def _observation(self) -> Observation:
        prompt = self._renderer.build_generation_prompt([*self._messages], tools=self._tools)
        return Observation(prompt, self._renderer.get_stop_sequences(), self._max_tokens)

    async def initial_observation(self) -> Observation:
        """The rendered conversation, opened for the assistant."""
        return self._observation()

    async def step(self, action: Action) -> StepResult:
        """Parse the reply, score it, and continue if ``reply`` adds a message."""
        message, ok = self._renderer.parse_response(action.tokens)
        self._turns += 1
        self.conversation.append(message)
        self._messages.append(message)
        reward = float(self._reward_fn(message, ok))
        following = None
        if self._reply is not None and self._turns < self._max_turns:
            following = self._reply(list(self.conversation))
        if following is None:
            return StepResult(reward=reward, done=True, metrics={"parse_ok": float(ok)})
        self._messages.append(following)
        return StepResult(reward=reward, done=False, next_observation=self._observation())


@dataclass(frozen=True, slots=True)
class ChatGroupBuilder:
    """``group_size`` :class:`ChatEnv` on the same messages."""

    renderer: Renderer
    messages: tuple[MessageLike, ...]
    reward_fn: ChatReward
    group_size: int
    reply: ChatReply | None = None
    max_turns: int = 1
    max_tokens: int | None = None
    tools: tuple[ToolSpecLike, ...] | None = None

    async def make_envs(self) -> Sequence[Env]:
        """``group_size`` fresh chat environments."""
        return [
            ChatEnv(
                self.renderer,
                self.messages,
                self.reward_fn,
                reply=self.reply,
                max_turns=self.max_turns,
                max_tokens=self.max_tokens,
                tools=self.tools,
            )
            for _ in range(self.group_size)
        ]
