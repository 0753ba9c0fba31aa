"""Chat messages, the tokenizer a renderer needs, and which tokens to train on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import NotRequired, Protocol, TypeAlias, TypedDict

from .._exceptions import InvalidInputError

__all__ = [
    "Message",
    "MessageLike",
    "Tokenizer",
    "TrainOnWhat",
    "check_messages",
    "coerce_train_on_what",
]


class Message(TypedDict):
    """One chat turn, in the shape Hugging Face chat templates read.

    ``reasoning_content`` is the model's thinking (the Qwen3 format shows it in a
    ``<think>`` block); formats without a place for it reject a non-empty one.

    Example::

        {"role": "assistant", "content": "12", "reasoning_content": "3 * 4 = 12"}
    """

    role: str
    content: str
    reasoning_content: NotRequired[str | None]


MessageLike: TypeAlias = Mapping[str, object]
"""What renderers accept for a message: a :class:`Message`, or any mapping of the same keys.

Plain ``dict[str, str]`` values (what a JSON dataset gives) type-check without a cast;
the keys are checked at run time. Other keys (``name``, ...) are ignored.
"""


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer a renderer uses.

    Any ``transformers`` tokenizer fits; so does a small stand-in with these
    three methods. Control tokens (``<|im_end|>``, ``<|eot_id|>``) must be added
    tokens, so that ``encode`` never splits them and ``convert_tokens_to_ids``
    knows them. ``decode`` must return a ``str`` for a flat list of ids.
    """

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``; renderers always pass ``add_special_tokens=False``."""
        ...

    def decode(self, token_ids: list[int], /) -> object:
        """The text of ``token_ids``, control tokens included."""
        ...

    def convert_tokens_to_ids(self, tokens: str, /) -> object:
        """The id of one token given as its string (``None`` or an unk id if unknown)."""
        ...


class TrainOnWhat(StrEnum):
    """Which tokens of a conversation get loss weight 1 (the rest get 0).

    A rendered message is a *header* (the role marker, e.g. ``<|im_start|>user\\n``),
    a *body* (the message's text and its end-of-turn token, e.g. ``Hi<|im_end|>``;
    for Qwen3 assistant turns also the ``<think>`` block) and a *separator* (format
    glue after the end of turn, e.g. the ``\\n`` after ``<|im_end|>``). A conversation
    may start with a prefix (``<|begin_of_text|>``). Headers, separators and the
    prefix are only trained with :attr:`ALL_TOKENS`.

    Strings are accepted wherever a TrainOnWhat is: ``"all_assistant_messages"``.
    """

    LAST_ASSISTANT_MESSAGE = "last_assistant_message"
    """The body of the last assistant message only (the default; SFT on a final answer)."""

    ALL_ASSISTANT_MESSAGES = "all_assistant_messages"
    """The bodies of every assistant message (multi-turn SFT)."""

    ALL_MESSAGES = "all_messages"
    """The bodies of every message, whatever its role."""

    ALL_TOKENS = "all_tokens"
    """Every token: prefix, headers, bodies and separators (continued pre-training)."""

    ALL_USER_AND_SYSTEM_MESSAGES = "all_user_and_system_messages"
    """The bodies of user and system messages (e.g. to train a user simulator)."""


def coerce_train_on_what(value: TrainOnWhat | str) -> TrainOnWhat:
    """``value`` as a TrainOnWhat; a clear error for anything else."""
    try:
        return TrainOnWhat(value)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in TrainOnWhat)
        msg = f"unknown train_on_what {value!r}; valid values: {valid}"
        raise InvalidInputError(msg) from None


def check_messages(
    messages: Sequence[MessageLike], roles: Sequence[str], *, thinking: bool
) -> list[Message]:
    """Validated copies of ``messages``: known roles, ``str`` content, at least one message.

    ``thinking`` says whether the format can show ``reasoning_content``; if not, a
    non-empty one is an error rather than silently dropped.
    """
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        msg = f"messages must be a sequence of message mappings, got {type(messages).__name__}"
        raise InvalidInputError(msg)
    if not messages:
        msg = "messages is empty; a conversation needs at least one message"
        raise InvalidInputError(msg)
    out: list[Message] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            msg = (
                f"messages[{i}] must be a mapping with 'role' and 'content', got {type(m).__name__}"
            )
            raise InvalidInputError(msg)
        role, content, reasoning = m.get("role"), m.get("content"), m.get("reasoning_content")
        if not isinstance(role, str) or role not in roles:
            valid = ", ".join(repr(r) for r in roles)
            msg = f"messages[{i}] has role {role!r}; this renderer accepts {valid}"
            raise InvalidInputError(msg)
        if not isinstance(content, str):
            msg = f"messages[{i}]['content'] must be a str, got {type(content).__name__}"
            raise InvalidInputError(msg)
        if reasoning is not None and not isinstance(reasoning, str):
            msg = f"messages[{i}]['reasoning_content'] must be a str or None, got {type(reasoning).__name__}"
            raise InvalidInputError(msg)
        if reasoning and not thinking:
            msg = (
                f"messages[{i}] has reasoning_content, which this format cannot show; "
                "use a thinking renderer (qwen3) or put the reasoning into the content"
            )
            raise InvalidInputError(msg)
        message: Message = {"role": role, "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        out.append(message)
    return out
