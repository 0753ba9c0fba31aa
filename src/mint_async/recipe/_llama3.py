"""The Llama 3 chat format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ._base import Renderer, Turn
from ._messages import Message, Tokenizer
from ._templates import LLAMA3_CHAT_TEMPLATE
from ._tokenize import control_token_id, decode_text

__all__ = ["Llama3Renderer"]


class Llama3Renderer(Renderer):
    """``<|begin_of_text|><|start_header_id|>role<|end_header_id|>\\n\\ncontent<|eot_id|>...``.

    As Meta's template, content is trimmed of surrounding whitespace. Llama 3.1+
    templates add a default "Cutting Knowledge Date" system turn when there is
    none; this renderer does not (pass your own system message if you want one).
    """

    name: ClassVar[str] = "llama3"
    chat_template: ClassVar[str] = LLAMA3_CHAT_TEMPLATE

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer)
        self._begin = control_token_id(tokenizer, "<|begin_of_text|>", self.name)
        self._start_header = control_token_id(tokenizer, "<|start_header_id|>", self.name)
        self._end_header = control_token_id(tokenizer, "<|end_header_id|>", self.name)
        self._eot = control_token_id(tokenizer, "<|eot_id|>", self.name)

    def _prefix(self) -> list[str | int]:
        return [self._begin]

    def _render(self, messages: list[Message]) -> list[Turn]:
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
