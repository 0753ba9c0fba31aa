"""The Qwen3 chat format (ChatML turns, ``<think>`` blocks) and its variants."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._chat_templates import QWEN3_CHAT_TEMPLATE, QWEN3_INSTRUCT_CHAT_TEMPLATE
from ._base import Renderer, Turn
from ._messages import Message, Tokenizer
from ._tokenize import control_token_id, decode_text
from ._tools import parse_qwen3_tool_calls, qwen3_tool_call_text, qwen3_tools_text

__all__ = ["Qwen3DisableThinkingRenderer", "Qwen3InstructRenderer", "Qwen3Renderer"]

_EMPTY_THINK = "<think>\n\n</think>\n\n"


def is_query(message: Message) -> bool:
    """Whether ``message`` is a user query, as Qwen3's template decides it.

    A ``"tool"`` message, or a user message that is wholly a
    ``<tool_response>...</tool_response>`` block, is the result of a tool call
    within a multi-step answer, not a new query: the reasoning of the assistant
    turns since the real query stays shown.
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
    """``<|im_start|>role\\n`` ... ``<|im_end|>\\n`` turns with Qwen3's tool format.

    Tools are listed in the system turn (appended to the first message if it
    is a system message, else in a system turn of their own); assistant tool
    calls follow the content as ``<tool_call>`` blocks; consecutive ``"tool"``
    messages share one user turn of ``<tool_response>`` blocks. Subclasses
    decide how an assistant's content (and thinking) is shown.
    """

    roles: ClassVar[tuple[str, ...]] = ("system", "user", "assistant", "tool")
    supports_tools: ClassVar[bool] = True

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer)
        self._im_start = control_token_id(tokenizer, "<|im_start|>", self.name)
        self._im_end = control_token_id(tokenizer, "<|im_end|>", self.name)

    def _prefix(
        self, messages: list[Message], tools: list[dict[str, object]] | None
    ) -> list[str | int]:
        if tools and messages[0]["role"] != "system":
            return [self._im_start, "system\n" + qwen3_tools_text(tools), self._im_end, "\n"]
        return []

    def _render(self, messages: list[Message], tools: list[dict[str, object]] | None) -> list[Turn]:
        turns: list[Turn] = []
        for i, m in enumerate(messages):
            role, content = m["role"], m["content"]
            if role == "tool":
                first = i == 0 or messages[i - 1]["role"] != "tool"
                last = i == len(messages) - 1 or messages[i + 1]["role"] != "tool"
                header: list[str | int] = [self._im_start, "user"] if first else []
                header.append("\n<tool_response>\n")
                body: list[str | int] = [content, "\n</tool_response>"]
                turns.append(
                    Turn(header, [*body, self._im_end] if last else body, ["\n"] if last else [])
                )
                continue
            if role == "system" and i == 0 and tools:
                content = content + "\n\n" + qwen3_tools_text(tools)
            elif role == "assistant":
                content = self._assistant_content(messages, i)
            turns.append(Turn([self._im_start, role + "\n"], [content, self._im_end], ["\n"]))
        return turns

    def _assistant_content(self, messages: list[Message], i: int) -> str:
        """The text of assistant message ``i``: its content and its tool calls."""
        m = messages[i]
        return m["content"] + qwen3_tool_call_text(m["content"], m.get("tool_calls", []))

    def _generation_header(self, role: str) -> list[str | int]:
        return [self._im_start, role + "\n"]

    def get_stop_sequences(self) -> list[int]:
        """``[<|im_end|> id]``."""
        return [self._im_end]

    def parse_response(
        self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]
    ) -> tuple[Message, bool]:
        """The message up to the first ``<|im_end|>``, its ``<tool_call>`` blocks parsed.

        ``ok`` is False without ``<|im_end|>`` or with a tool call that does not parse.
        """
        text, ok = self._cut(tokens)
        return _with_tool_calls({"role": "assistant", "content": text}, ok)

    def _cut(self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]) -> tuple[str, bool]:
        ids = [int(t) for t in tokens]
        ok = self._im_end in ids
        if ok:
            ids = ids[: ids.index(self._im_end)]
        return decode_text(self._tokenizer, ids), ok


def _with_tool_calls(message: Message, ok: bool) -> tuple[Message, bool]:
    """``message`` with the ``<tool_call>`` blocks of its content parsed out."""
    content, calls, unparsed = parse_qwen3_tool_calls(message["content"])
    message["content"] = content
    if calls:
        message["tool_calls"] = calls
    if unparsed:
        message["unparsed_tool_calls"] = unparsed
    return message, ok and not unparsed


class Qwen3Renderer(_ChatML):
    """The Qwen3 format with thinking (``Qwen/Qwen3-*``), as its own chat template renders it.

    An assistant turn after the last user query shows its reasoning in a
    ``<think>`` block; the final message always gets one, empty if it has no
    reasoning, and that block is part of the trained body (the model learns to
    open and close its thoughts). Assistant turns before the last user query
    drop their reasoning. As in Qwen's template, ``"tool"`` messages and a user
    message that is wholly a ``<tool_response>...</tool_response>`` block are
    tool results, not queries: in a multi-step tool-calling answer every
    assistant turn since the query keeps its reasoning. :meth:`parse_response`
    splits a think block back out into ``reasoning_content`` and the
    ``<tool_call>`` blocks into ``tool_calls``.
    """

    name: ClassVar[str] = "qwen3"
    chat_template: ClassVar[str] = QWEN3_CHAT_TEMPLATE
    thinking: ClassVar[bool] = True
    _empty_think_in_header: ClassVar[bool] = False

    def _render(self, messages: list[Message], tools: list[dict[str, object]] | None) -> list[Turn]:
        turns = super()._render(messages, tools)
        if not self._empty_think_in_header:
            return turns
        for i, m in enumerate(messages):
            turn = turns[i]
            body = turn.body[0]
            if m["role"] == "assistant" and isinstance(body, str) and body.startswith(_EMPTY_THINK):
                # The generation prompt ends with this block, so it is prompt, not target.
                turns[i] = Turn(
                    [*turn.header, _EMPTY_THINK],
                    [body.removeprefix(_EMPTY_THINK), *turn.body[1:]],
                    turn.separator,
                )
        return turns

    def _assistant_content(self, messages: list[Message], i: int) -> str:
        # As the template: with no user query, no assistant turn gets a think block.
        last_query = max(
            (j for j, m in enumerate(messages) if is_query(m)), default=len(messages) - 1
        )
        m = messages[i]
        reasoning, content = split_reasoning(m)
        calls = qwen3_tool_call_text(content, m.get("tool_calls", []))
        if i > last_query and (i == len(messages) - 1 or reasoning):
            return (
                f"<think>\n{reasoning.strip(chr(10))}\n</think>\n\n" + content.lstrip("\n") + calls
            )
        return content + calls

    def parse_response(
        self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]
    ) -> tuple[Message, bool]:
        """The message up to ``<|im_end|>``: ``<think>`` block into ``reasoning_content``, calls into ``tool_calls``.

        ``ok`` is False without ``<|im_end|>``, with a ``<think>`` never closed
        (the message then holds all the text as content) or with a tool call
        that does not parse. Empty reasoning is left out, so parsing what a
        message rendered to gives back a message that renders the same.
        """
        text, ok = self._cut(tokens)
        if "</think>" not in text:
            if "<think>" in text:
                return {"role": "assistant", "content": text}, False
            return _with_tool_calls({"role": "assistant", "content": text}, ok)
        reasoning, content = split_reasoning({"role": "assistant", "content": text})
        message: Message = {"role": "assistant", "content": content}
        if reasoning.strip("\n"):
            message["reasoning_content"] = reasoning.strip("\n")
        return _with_tool_calls(message, ok)


class Qwen3DisableThinkingRenderer(Qwen3Renderer):
    """Qwen3 with thinking switched off, as ``apply_chat_template(..., enable_thinking=False)``.

    The generation prompt ends with an empty ``<think>\\n\\n</think>\\n\\n`` block,
    so the model answers directly. In training examples an empty think block is
    part of the (untrained) header, matching what the model sees at sampling
    time; a turn that does carry reasoning renders, and is trained, as with
    ``qwen3``.
    """

    name: ClassVar[str] = "qwen3_disable_thinking"
    _template_kwargs: ClassVar[Mapping[str, Any]] = {"enable_thinking": False}
    _empty_think_in_header: ClassVar[bool] = True

    def _generation_header(self, role: str) -> list[str | int]:
        header = super()._generation_header(role)
        return [*header, _EMPTY_THINK] if role == "assistant" else header


class Qwen3InstructRenderer(_ChatML):
    """Qwen3 Instruct-2507 models, which never think: plain ChatML turns, Qwen3's tool format.

    Messages with ``reasoning_content`` are rejected (this format has no
    place for it); ``<think>`` text in a response stays in the content.
    """

    name: ClassVar[str] = "qwen3_instruct"
    chat_template: ClassVar[str] = QWEN3_INSTRUCT_CHAT_TEMPLATE
