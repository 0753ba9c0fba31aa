"""The Llama 3 chat format, and Llama 3.1's (date header, JSON tool calls)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._chat_templates import LLAMA3_1_CHAT_TEMPLATE, LLAMA3_CHAT_TEMPLATE
from .._exceptions import InvalidInputError
from ._base import Renderer, Turn
from ._messages import Message, Tokenizer
from ._tokenize import control_token_id, decode_text, encode_text
from ._tools import (
    LLAMA3_TOOLS_FORMAT,
    LLAMA3_TOOLS_IN_SYSTEM,
    LLAMA3_TOOLS_IN_USER,
    llama3_tool_call_text,
    llama3_tools_text,
    parse_llama3_tool_call,
    tojson,
)

__all__ = ["Llama31Renderer", "Llama3Renderer"]


class Llama3Renderer(Renderer):
    """``<|begin_of_text|><|start_header_id|>role<|end_header_id|>\\n\\ncontent<|eot_id|>...``.

    As Meta's template, content is trimmed of surrounding whitespace. Llama 3.1+
    templates add a default "Cutting Knowledge Date" system turn when there is
    none; this renderer does not (pass your own system message if you want one).
    It has no tool format: use ``llama3_1`` (:class:`Llama31Renderer`) for tool calling.
    """

    name: ClassVar[str] = "llama3"
    chat_template: ClassVar[str] = LLAMA3_CHAT_TEMPLATE

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer)
        self._begin = control_token_id(tokenizer, "<|begin_of_text|>", self.name)
        self._start_header = control_token_id(tokenizer, "<|start_header_id|>", self.name)
        self._end_header = control_token_id(tokenizer, "<|end_header_id|>", self.name)
        self._eot = control_token_id(tokenizer, "<|eot_id|>", self.name)

    def _prefix(
        self, messages: list[Message], tools: list[dict[str, object]] | None
    ) -> list[str | int]:
        return [self._begin]

    def _render(self, messages: list[Message], tools: list[dict[str, object]] | None) -> list[Turn]:
        return [
            Turn(self._generation_header(m["role"]), [m["content"].strip(), self._eot], [])
            for m in messages
        ]

    def _generation_header(self, role: str) -> list[str | int]:
        return [self._start_header, role, self._end_header, "\n\n"]

    def get_stop_sequences(self) -> list[int]:
        """``[<|eot_id|> id]``."""
        return [self._eot]

    def parse_response(
        self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]
    ) -> tuple[Message, bool]:
        """The message up to the first ``<|eot_id|>``; ``ok`` is False without one."""
        ids = [int(t) for t in tokens]
        ok = self._eot in ids
        if ok:
            ids = ids[: ids.index(self._eot)]
        return {"role": "assistant", "content": decode_text(self._tokenizer, ids)}, ok


class Llama31Renderer(Llama3Renderer):
    """Llama 3.1, 3.2 and 3.3 Instruct, as their chat template renders (JSON tool calling included).

    Every conversation opens with a system turn holding ``Cutting Knowledge
    Date: December 2023`` and ``Today Date: <date_string>`` (the template's
    default, ``26 Jul 2024``; Llama 3.2's template puts today's date there
    unless ``date_string`` is passed, so pass the same one to both), then the
    first message's text if it is a system message. With ``tools`` the system
    turn starts ``Environment: ipython`` and the tool definitions, as indented
    JSON with Meta's instructions, go into the first user message (or, with
    ``tools_in_user_message=False``, the system turn). An assistant tool call
    renders as ``{"name": ..., "parameters": {...}}`` with no other text (the
    template drops an assistant's content when it calls a tool, so non-empty
    content is rejected, as are several calls in one message, which the template
    refuses); ``"tool"`` / ``"ipython"`` messages render as ``ipython`` turns
    whose content is written as a JSON string, exactly as the template's
    ``tojson`` writes it. Meta's built-in tools (``<|python_tag|>`` calls) are
    not rendered; :meth:`parse_response` reads a ``<|python_tag|>``-prefixed
    JSON call too.

    Example::

        renderer = recipe.renderers.Llama31Renderer(tokenizer, date_string="26 Jul 2024")
    """

    name: ClassVar[str] = "llama3_1"
    chat_template: ClassVar[str] = LLAMA3_1_CHAT_TEMPLATE
    roles: ClassVar[tuple[str, ...]] = ("system", "user", "assistant", "tool", "ipython")
    supports_tools: ClassVar[bool] = True

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        date_string: str = "26 Jul 2024",
        tools_in_user_message: bool = True,
    ) -> None:
        super().__init__(tokenizer)
        if not isinstance(date_string, str):
            msg = f"date_string must be a str, got {type(date_string).__name__}"
            raise InvalidInputError(msg)
        self._date_string = date_string
        self._tools_in_user = bool(tools_in_user_message)
        # <|eom_id|> ends a turn after a built-in tool call; tokenizers of the
        # real Llama 3.1+ vocabulary have it, small test tokenizers may not.
        eom = tokenizer.convert_tokens_to_ids("<|eom_id|>")
        self._eom = (
            eom if isinstance(eom, int) and encode_text(tokenizer, "<|eom_id|>") == [eom] else None
        )

    @property
    def chat_template_kwargs(self) -> Mapping[str, Any]:
        """``date_string`` and ``tools_in_user_message``, as this renderer renders them."""
        return {"date_string": self._date_string, "tools_in_user_message": self._tools_in_user}

    def _system_text(self, tools: list[dict[str, object]] | None) -> str:
        """The system turn's text before the system message's own."""
        text = "Environment: ipython\n" if tools is not None else ""
        text += f"Cutting Knowledge Date: December 2023\nToday Date: {self._date_string}\n\n"
        if tools is not None and not self._tools_in_user:
            text += LLAMA3_TOOLS_IN_SYSTEM + LLAMA3_TOOLS_FORMAT + llama3_tools_text(tools)
        return text

    def _prefix(
        self, messages: list[Message], tools: list[dict[str, object]] | None
    ) -> list[str | int]:
        prefix = super()._prefix(messages, tools)
        if messages[0]["role"] != "system":
            prefix += [*self._generation_header("system"), self._system_text(tools), self._eot]
        return prefix

    def _render(self, messages: list[Message], tools: list[dict[str, object]] | None) -> list[Turn]:
        turns: list[Turn] = []
        first_user = 1 if messages[0]["role"] == "system" else 0
        if tools is not None and self._tools_in_user:
            if first_user >= len(messages):
                msg = "tools go into the first user message, and this conversation has none"
                raise InvalidInputError(msg)
            if messages[first_user]["role"] != "user":
                msg = (
                    f"tools go into the first user message, but messages[{first_user}] has role "
                    f"{messages[first_user]['role']!r}; start with a user message or pass "
                    "tools_in_user_message=False"
                )
                raise InvalidInputError(msg)
        for i, m in enumerate(messages):
            role, content = m["role"], m["content"]
            header = self._generation_header(role)
            calls = m.get("tool_calls", [])
            if i == 0 and role == "system":
                header = [*header, self._system_text(tools)]
                body: list[str | int] = [content.strip(), self._eot]
            elif i == first_user and tools is not None and self._tools_in_user:
                header = [
                    *header,
                    LLAMA3_TOOLS_IN_USER + LLAMA3_TOOLS_FORMAT + llama3_tools_text(tools),
                ]
                body = [content.strip(), self._eot]
            elif calls:
                if len(calls) != 1:
                    msg = f"messages[{i}] has {len(calls)} tool calls; Llama 3.1's format takes one per message"
                    raise InvalidInputError(msg)
                if content.strip():
                    msg = (
                        f"messages[{i}] has both content and a tool call; Llama 3.1's template "
                        "drops the content of a tool-calling message, so put the text in its own message"
                    )
                    raise InvalidInputError(msg)
                body = [llama3_tool_call_text(calls[0]), self._eot]
            elif role in ("tool", "ipython"):
                header = self._generation_header("ipython")
                # The template writes string content through `tojson` (a str is iterable).
                body = [tojson(content), self._eot]
            else:
                body = [content.strip(), self._eot]
            turns.append(Turn(header, body, []))
        return turns

    def get_stop_sequences(self) -> list[int]:
        """``[<|eot_id|> id]``, and ``<|eom_id|>``'s id if the tokenizer has it."""
        return [self._eot] if self._eom is None else [self._eot, self._eom]

    def parse_response(
        self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]
    ) -> tuple[Message, bool]:
        """The message up to the first stop token; a JSON tool call becomes ``tool_calls``.

        A text that starts with ``{"name"`` (or follows ``<|python_tag|>``) is a
        tool call; if it does not parse it is kept as content and listed in
        ``unparsed_tool_calls``, and ``ok`` is False.
        """
        ids = [int(t) for t in tokens]
        stops = [ids.index(s) for s in self.get_stop_sequences() if s in ids]
        ok = bool(stops)
        if ok:
            ids = ids[: min(stops)]
        text = decode_text(self._tokenizer, ids)
        call, unparsed = parse_llama3_tool_call(text)
        if call is not None:
            return {"role": "assistant", "content": "", "tool_calls": [call]}, ok
        message: Message = {"role": "assistant", "content": text}
        if unparsed is not None:
            message["unparsed_tool_calls"] = [unparsed]
            return message, False
        return message, ok
