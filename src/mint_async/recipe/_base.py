"""The Renderer base class: conversations to tokens and loss weights, and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

import numpy as np
import numpy.typing as npt

from .._exceptions import InvalidInputError
from ..types import ModelInput
from ._messages import (
    Message,
    MessageLike,
    Tokenizer,
    ToolSpecLike,
    TrainOnWhat,
    check_messages,
    check_tools,
    coerce_train_on_what,
)
from ._tokenize import Piece, tokenize_pieces

__all__ = ["Renderer", "Turn", "Weights"]

Weights: TypeAlias = npt.NDArray[np.float32]
"""Per-token loss weights, one per token of the rendered conversation."""

_DEFAULT_ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class Turn:
    """One rendered message: role marker, trainable body, glue after the end of turn."""

    header: list[str | int]
    body: list[str | int]
    separator: list[str | int]


class Renderer(ABC):
    """Renders chat messages in one model's chat format, as token ids.

    Token output equals ``tokenizer.apply_chat_template`` with :attr:`chat_template`
    (and :attr:`chat_template_kwargs`) for the same conversation, with and
    without a generation prompt. Get one with :func:`get_renderer`::

        renderer = recipe.renderers.get_renderer("qwen3", tokenizer)
        model_input, weights = renderer.build_supervised_example(messages)
        prompt = renderer.build_generation_prompt(messages[:-1])
        message, ok = renderer.parse_response(sampled_tokens)

    Tool calling (renderers with :attr:`supports_tools`): pass ``tools=`` (JSON-schema
    function specs) to :meth:`build_supervised_example` and
    :meth:`build_generation_prompt`, put ``tool_calls`` on assistant messages and
    results in ``"tool"`` messages; :meth:`parse_response` returns the calls a
    sample makes.
    """

    name: ClassVar[str]
    """The renderer's name for :func:`get_renderer`."""

    chat_template: ClassVar[str]
    """A Jinja chat template producing exactly this renderer's tokens."""

    _template_kwargs: ClassVar[Mapping[str, Any]] = {}

    roles: ClassVar[tuple[str, ...]] = _DEFAULT_ROLES
    """The message roles this format accepts."""

    thinking: ClassVar[bool] = False
    """Whether the format shows ``reasoning_content`` (in a ``<think>`` block)."""

    supports_tools: ClassVar[bool] = False
    """Whether the format renders tool definitions, ``tool_calls`` and tool results."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    @property
    def chat_template_kwargs(self) -> Mapping[str, Any]:
        """Extra ``apply_chat_template`` arguments that select this renderer's variant."""
        return dict(self._template_kwargs)

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer this renderer encodes with."""
        return self._tokenizer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def build_supervised_example(
        self,
        messages: Sequence[MessageLike],
        train_on_what: TrainOnWhat | str = TrainOnWhat.LAST_ASSISTANT_MESSAGE,
        *,
        tools: Sequence[ToolSpecLike] | None = None,
    ) -> tuple[ModelInput, Weights]:
        """The conversation's tokens and a float32 loss weight per token.

        Weights are 1 on the tokens :class:`TrainOnWhat` selects (by default the
        last assistant message's text and end-of-turn token) and 0 elsewhere, so
        the prompt is never trained. Pass both to
        :func:`datum_from_model_input_weights` for a training Datum.

        Example::

            model_input, weights = renderer.build_supervised_example(
                [{"role": "user", "content": "What is 3 * 4?"}, {"role": "assistant", "content": "12"}]
            )

        ``tools`` are the tool definitions the conversation's system prompt
        offers, rendered as the chat template renders ``apply_chat_template(...,
        tools=tools)``; the tokens of an assistant message's ``tool_calls`` are
        part of its trained body.

        Raises InvalidInputError for an empty conversation, an unknown role, or
        a selection that trains nothing (no assistant message for the default),
        and for tools or tool calls given to a renderer without a tool format.
        """
        mode = coerce_train_on_what(train_on_what)
        msgs, specs = self._check(messages, tools)
        trained = _selected(msgs, mode)
        everything = mode is TrainOnWhat.ALL_TOKENS
        pieces: list[Piece] = [(p, everything) for p in self._prefix(msgs, specs)]
        for i, turn in enumerate(self._render(msgs, specs)):
            pieces.extend((p, everything) for p in turn.header)
            pieces.extend((p, everything or i in trained) for p in turn.body)
            pieces.extend((p, everything) for p in turn.separator)
        tokens, weights = tokenize_pieces(self._tokenizer, pieces)
        return ModelInput.from_ints(tokens), np.asarray(weights, dtype=np.float32)

    def build_generation_prompt(
        self,
        messages: Sequence[MessageLike],
        role: str = "assistant",
        prefill: str | None = None,
        *,
        tools: Sequence[ToolSpecLike] | None = None,
    ) -> ModelInput:
        """The prompt that asks the model for the next ``role`` turn, for sampling.

        ``prefill`` is text the turn starts with (the model continues it); it is
        tokenized together with the turn's header, as in a full conversation.
        ``tools`` are offered in the system prompt, as in
        :meth:`build_supervised_example`.

        Example::

            prompt = renderer.build_generation_prompt([{"role": "user", "content": "Hi"}])
            params = SamplingParams(max_tokens=64, stop=renderer.get_stop_sequences())
        """
        msgs, specs = self._check(messages, tools)
        if role not in self.roles:
            valid = ", ".join(repr(r) for r in self.roles)
            msg = f"cannot open a turn for role {role!r}; this renderer accepts {valid}"
            raise InvalidInputError(msg)
        if prefill is not None and not isinstance(prefill, str):
            msg = f"prefill must be a str or None, got {type(prefill).__name__}"
            raise InvalidInputError(msg)
        parts: list[str | int] = list(self._prefix(msgs, specs))
        for turn in self._render(msgs, specs):
            parts.extend([*turn.header, *turn.body, *turn.separator])
        parts.extend(self._generation_header(role))
        if prefill:
            parts.append(prefill)
        tokens, _ = tokenize_pieces(self._tokenizer, [(p, False) for p in parts])
        return ModelInput.from_ints(tokens)

    @abstractmethod
    def get_stop_sequences(self) -> list[int] | list[str]:
        """What ends an assistant turn: token ids or strings, for ``SamplingParams(stop=...)``."""

    @abstractmethod
    def parse_response(
        self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]
    ) -> tuple[Message, bool]:
        """The assistant message in sampled ``tokens``, and whether it ended properly.

        The text is cut at the first stop sequence; ``ok`` is False when there
        is none (the sample ran out of tokens) or the message is malformed (an
        unclosed ``<think>`` block), and the message then holds all the text.

        With a tool format, the calls the text makes are in ``tool_calls`` (with
        ``arguments`` as JSON text) and taken out of ``content``; a call that
        cannot be parsed (broken JSON, no name, an unclosed block) never raises:
        it is listed in ``unparsed_tool_calls`` and ``ok`` is False.
        """

    def _check(
        self, messages: Sequence[MessageLike], tools: Sequence[ToolSpecLike] | None
    ) -> tuple[list[Message], list[dict[str, object]] | None]:
        """Validated messages and tools for this format."""
        specs = check_tools(tools, supported=self.supports_tools)
        msgs = check_messages(
            messages, self.roles, thinking=self.thinking, tools=self.supports_tools
        )
        return msgs, specs

    def _prefix(
        self, messages: list[Message], tools: list[dict[str, object]] | None
    ) -> list[str | int]:
        """What comes before the first message (a BOS token, a tools-only system turn)."""
        return []

    @abstractmethod
    def _render(self, messages: list[Message], tools: list[dict[str, object]] | None) -> list[Turn]:
        """One Turn per message, as the chat template renders it (with ``tools`` offered)."""

    @abstractmethod
    def _generation_header(self, role: str) -> list[str | int]:
        """What opens a new ``role`` turn in a generation prompt."""


def _selected(messages: list[Message], mode: TrainOnWhat) -> set[int]:
    """Indices of the messages whose bodies ``mode`` trains; an error if there are none."""
    match mode:
        case TrainOnWhat.LAST_ASSISTANT_MESSAGE:
            last = [i for i, m in enumerate(messages) if m["role"] == "assistant"][-1:]
            chosen = set(last)
        case TrainOnWhat.ALL_ASSISTANT_MESSAGES:
            chosen = {i for i, m in enumerate(messages) if m["role"] == "assistant"}
        case TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES:
            chosen = {i for i, m in enumerate(messages) if m["role"] in ("user", "system")}
        case TrainOnWhat.ALL_MESSAGES | TrainOnWhat.ALL_TOKENS:
            chosen = set(range(len(messages)))
    if not chosen:
        msg = (
            f"train_on_what={mode.value!r} selects no message of this conversation "
            f"(roles: {[m['role'] for m in messages]}); it would train on nothing"
        )
        raise InvalidInputError(msg)
    return chosen
