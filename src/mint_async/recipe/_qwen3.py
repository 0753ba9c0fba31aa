"""The Qwen3 chat format (ChatML turns, ``<think>`` blocks) and its variants."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ._base import Renderer, Turn
from ._messages import Message, Tokenizer
from ._templates import QWEN3_CHAT_TEMPLATE, QWEN3_INSTRUCT_CHAT_TEMPLATE
from ._tokenize import control_token_id, decode_text

__all__ = ["Qwen3DisableThinkingRenderer", "Qwen3InstructRenderer", "Qwen3Renderer"]

_EMPTY_THINK = "<think>\n\n</think>\n\n"


def is_query(message: Message) -> bool:
    """Whether ``message`` is a user query, as Qwen3's template decides it.

    A user message that is wholly a ``<tool_response>...</tool_response>`` block
    is the result of a tool call within a multi-step answer, not a new query:
    the reasoning of the assistant turns since the real query stays shown.
    """
    content = message["content"]
    tool_result = content.startswith("<tool_response>") and content.endswith("</tool_response>")
    return message["role"] == "user" and not tool_result


def split_reasoning(message: Message) -> tuple[str, str]:
    """``(reasoning, content)`` of an assistant message, as the Qwen3 template reads them.

    An explicit ``reasoning_content`` wins; otherwise a ``...</think>`` prefix of
    the content is the reasoning.
    """
    content = message["content"]
    reasoning = message.get("reasoning_content")
    if reasoning is not None:
        return reasoning, content
    if "</think>" in content:
        head, tail = content.split("</think>")[0], content.split("</think>")[-1]
        return head.rstrip("\n").split("<think>")[-1].lstrip("\n"), tail.lstrip("\n")
    return "", content


class _ChatML(Renderer):
    """``<|im_start|>role\\n`` ... ``<|im_end|>\\n`` turns; subclasses add thinking."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer)
        self._im_start = control_token_id(tokenizer, "<|im_start|>", self.name)
        self._im_end = control_token_id(tokenizer, "<|im_end|>", self.name)

    def _render(self, messages: list[Message]) -> list[Turn]:
        return [
            Turn([self._im_start, m["role"] + "\n"], [m["content"], self._im_end], ["\n"])
            for m in messages
        ]

    def _generation_header(self, role: str) -> list[str | int]:
        return [self._im_start, role + "\n"]

    def get_stop_sequences(self) -> list[int]:
        """``[<|im_end|> id]``."""
        return [self._im_end]

    def parse_response(
        self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]
    ) -> tuple[Message, bool]:
        """The message up to the first ``<|im_end|>``; ``ok`` is False without one."""
        text, ok = self._cut(tokens)
        return {"role": "assistant", "content": text}, ok

    def _cut(self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]) -> tuple[str, bool]:
        ids = [int(t) for t in tokens]
        ok = self._im_end in ids
        if ok:
            ids = ids[: ids.index(self._im_end)]
        return decode_text(self._tokenizer, ids), ok


class Qwen3Renderer(_ChatML):
    """The Qwen3 format with thinking (``Qwen/Qwen3-*``), as its own chat template renders it.

    An assistant turn after the last user query shows its reasoning in a
    ``<think>`` block; the final message always gets one, empty if it has no
    reasoning, and that block is part of the trained body (the model learns to
    open and close its thoughts). Assistant turns before the last user query
    drop their reasoning. As in Qwen's template, a user message that is wholly
    a ``<tool_response>...</tool_response>`` block is a tool result, not a
    query. :meth:`parse_response` splits a think block back out into
    ``reasoning_content``.
    """

    name: ClassVar[str] = "qwen3"
    chat_template: ClassVar[str] = QWEN3_CHAT_TEMPLATE
    thinking: ClassVar[bool] = True
    _empty_think_in_header: ClassVar[bool] = False

    def _render(self, messages: list[Message]) -> list[Turn]:
        # As the template: with no user query, no assistant turn gets a think block.
        last_query = max(
            (i for i, m in enumerate(messages) if is_query(m)), default=len(messages) - 1
        )
        turns = super()._render(messages)
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            reasoning, content = split_reasoning(m)
            if i > last_query and (i == len(messages) - 1 or reasoning):
                shown = reasoning.strip("\n")
                think = f"<think>\n{shown}\n</think>\n\n"
                content = content.lstrip("\n")
                if self._empty_think_in_header and think == _EMPTY_THINK:
                    # The generation prompt ends with this block, so it is prompt, not target.
                    turns[i] = Turn([*turns[i].header, think], [content, self._im_end], ["\n"])
                    continue
                content = think + content
            turns[i] = Turn(turns[i].header, [content, self._im_end], ["\n"])
        return turns

    def parse_response(
        self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]
    ) -> tuple[Message, bool]:
        """The message up to ``<|im_end|>``, with a ``<think>`` block split into ``reasoning_content``.

        ``ok`` is False without ``<|im_end|>`` or with a ``<think>`` never closed.
        Empty reasoning is left out, so parsing what a message rendered to gives
        back a message that renders the same.
        """
        text, ok = self._cut(tokens)
        if "</think>" not in text:
            return {"role": "assistant", "content": text}, ok and "<think>" not in text
        reasoning, content = split_reasoning({"role": "assistant", "content": text})
        message: Message = {"role": "assistant", "content": content}
        if reasoning.strip("\n"):
            message["reasoning_content"] = reasoning.strip("\n")
        return message, ok


class Qwen3DisableThinkingRenderer(Qwen3Renderer):
    """Qwen3 with thinking switched off, as ``apply_chat_template(..., enable_thinking=False)``.

    The generation prompt ends with an empty ``<think>\\n\\n</think>\\n\\n`` block,
    so the model answers directly. In training examples an empty think block is
    part of the (untrained) header, matching what the model sees at sampling
    time; a turn that does carry reasoning renders, and is trained, as with
    ``qwen3``.
    """

    name: ClassVar[str] = "qwen3_disable_thinking"
    chat_template_kwargs: ClassVar[Mapping[str, Any]] = {"enable_thinking": False}
    _empty_think_in_header: ClassVar[bool] = True

    def _generation_header(self, role: str) -> list[str | int]:
        header = super()._generation_header(role)
        return [*header, _EMPTY_THINK] if role == "assistant" else header


class Qwen3InstructRenderer(_ChatML):
    """Qwen3 Instruct-2507 models, which never think: plain ChatML turns.

    Messages with ``reasoning_content`` are rejected (this format has no
    place for it); ``<think>`` text in a response stays in the content.
    """

    name: ClassVar[str] = "qwen3_instruct"
    chat_template: ClassVar[str] = QWEN3_INSTRUCT_CHAT_TEMPLATE
