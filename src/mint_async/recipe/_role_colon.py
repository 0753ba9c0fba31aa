"""A plain-text ``User: ... / Assistant: ...`` format for any model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from .._chat_templates import ROLE_COLON_CHAT_TEMPLATE
from ._base import Renderer, Turn
from ._messages import Message, Tokenizer
from ._tokenize import control_token_id, decode_text

__all__ = ["RoleColonRenderer"]

_STOP: Final = "\n\nUser:"


class RoleColonRenderer(Renderer):
    """``System: ...\\n\\nUser: ...\\n\\nAssistant: ...\\n\\n`` with no special tokens.

    For base models and tokenizers without a chat format. The conversation
    starts with the tokenizer's BOS token if it has one. A turn's body is
    ``" " + content + "\\n\\n"`` (the blank line ends the turn); the generation
    prompt ends with ``"Assistant:"``. Sampling stops at the string
    ``"\\n\\nUser:"``, the start of the next user turn, so content that itself
    contains that string cannot be represented.
    """

    name: ClassVar[str] = "role_colon"
    chat_template: ClassVar[str] = ROLE_COLON_CHAT_TEMPLATE

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer)
        # Duck-typed: Hugging Face tokenizers have `bos_token` (None when absent);
        # the template renders that string, which must encode to a single token.
        bos = getattr(tokenizer, "bos_token", None)
        self._bos = control_token_id(tokenizer, bos, self.name) if isinstance(bos, str) else None

    def _prefix(
        self, messages: list[Message], tools: list[dict[str, object]] | None
    ) -> list[str | int]:
        return [] if self._bos is None else [self._bos]

    def _render(self, messages: list[Message], tools: list[dict[str, object]] | None) -> list[Turn]:
        return [
            Turn(self._generation_header(m["role"]), [" " + m["content"] + "\n\n"], [])
            for m in messages
        ]

    def _generation_header(self, role: str) -> list[str | int]:
        return [role.capitalize() + ":"]

    def get_stop_sequences(self) -> list[str]:
        """``["\\n\\nUser:"]``."""
        return [_STOP]

    def parse_response(
        self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]
    ) -> tuple[Message, bool]:
        """The text before ``"\\n\\nUser:"`` (one leading space dropped); ``ok`` is False without it."""
        text = decode_text(self._tokenizer, [int(t) for t in tokens])
        end = text.find(_STOP)
        ok = end >= 0
        if ok:
            text = text[:end]
        return {"role": "assistant", "content": text.removeprefix(" ")}, ok
