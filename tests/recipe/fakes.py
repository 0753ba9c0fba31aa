"""A tokenizer whose merges freely cross piece boundaries, to exercise weight alignment."""

from __future__ import annotations

import re
from collections.abc import Sequence


class GreedyTokenizer:
    """Longest-match tokenization over a small vocabulary, after splitting out control tokens.

    Unlike a BPE with a pre-tokenizer, nothing stops a merge from spanning the
    end of a header and the start of a body (``"\\n"`` + ``"\\nHi"`` → ``"\\n\\n"``),
    which is what the renderer's weight assignment must cope with. Single
    characters are ids ``1000 + ord(c)``; control tokens and merges get small ids.
    """

    def __init__(self, control: Sequence[str], merges: Sequence[str]) -> None:
        self.vocab = {t: i for i, t in enumerate([*control, *merges])}
        self.inverse = {i: t for t, i in self.vocab.items()}
        alternatives = [re.escape(t) for t in sorted(control, key=len, reverse=True)]
        # With no control tokens, a pattern that never matches.
        self._control = re.compile("|".join(alternatives) or r"(?!x)x")
        self._merges = sorted(merges, key=len, reverse=True)
        self.calls = 0

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Control tokens whole, then greedy longest match of merges, else single characters."""
        self.calls += 1
        out: list[int] = []
        pos = 0
        for m in self._control.finditer(text):
            out.extend(self._greedy(text[pos : m.start()]))
            out.append(self.vocab[m.group()])
            pos = m.end()
        out.extend(self._greedy(text[pos:]))
        return out

    def _greedy(self, text: str) -> list[int]:
        out: list[int] = []
        i = 0
        while i < len(text):
            for piece in self._merges:
                if text.startswith(piece, i):
                    out.append(self.vocab[piece])
                    i += len(piece)
                    break
            else:
                out.append(1000 + ord(text[i]))
                i += 1
        return out

    def decode(self, token_ids: list[int], /) -> str:
        """The text of ``token_ids``."""
        return "".join(self.inverse[t] if t in self.inverse else chr(t - 1000) for t in token_ids)

    def convert_tokens_to_ids(self, tokens: str, /) -> int | None:
        """The id of a control token or merge; None otherwise."""
        return self.vocab.get(tokens)


QWEN_CONTROL = ("<|im_start|>", "<|im_end|>")
LLAMA_CONTROL = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
