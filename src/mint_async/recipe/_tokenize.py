"""Turning rendered pieces of text into tokens and per-token loss weights.

A renderer describes a conversation as a list of pieces: a control token (an
``int`` id, e.g. ``<|im_end|>``) or a run of text, each marked trained or not.

Tokens must equal what the tokenizer gives for the whole rendered string (that
is what ``apply_chat_template`` does), yet weights must follow the pieces. A
tokenizer splits its text at added tokens before anything else, so the text
between two control tokens is tokenized on its own, exactly as in the full
string: each such *run* is encoded once, whole. Inside a run a BPE merge can
cross a piece boundary (``"\\n"`` + ``"\\nHi"`` may become ``"\\n\\n"``, ``"Hi"``).
Which tokens lie wholly in the untrained text is found by tokenizing the
untrained prefix (or suffix) on its own and keeping the longest common prefix
(or suffix) with the run's tokens: those are untrained, every other token
touches trained text and is trained. So a token straddling a boundary is
trained, and the model always learns to emit every trained character.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from .._exceptions import InvalidInputError
from ._messages import Tokenizer

__all__ = ["Piece", "control_token_id", "decode_text", "encode_text", "tokenize_pieces"]

Piece: TypeAlias = tuple[str | int, bool]
"""Text (``str``) or a control token id (``int``), and whether it is trained."""


def encode_text(tokenizer: Tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without BOS/EOS (as ``apply_chat_template`` tokenizes)."""
    return [int(t) for t in tokenizer.encode(text, add_special_tokens=False)]


def decode_text(tokenizer: Tokenizer, tokens: Sequence[int]) -> str:
    """The text of ``tokens``, control tokens included."""
    text = tokenizer.decode(list(tokens))
    if not isinstance(text, str):
        msg = f"tokenizer.decode returned {type(text).__name__}, expected str"
        raise InvalidInputError(msg)
    return text


def control_token_id(tokenizer: Tokenizer, token: str, renderer: str) -> int:
    """The id of control token ``token``; an error if the tokenizer does not have it whole."""
    value = tokenizer.convert_tokens_to_ids(token)
    # An unknown token maps to None or to an unk id; only an added token
    # encodes to itself alone, which is what tokenizing runs separately relies on.
    if not isinstance(value, int) or encode_text(tokenizer, token) != [value]:
        msg = (
            f"the {renderer} renderer needs the control token {token!r}, which this tokenizer "
            "does not have as a single added token; pick the renderer for this model's format "
            "(see get_recommended_renderer_name) or role_colon"
        )
        raise InvalidInputError(msg)
    return value


def tokenize_pieces(tokenizer: Tokenizer, pieces: Sequence[Piece]) -> tuple[list[int], list[float]]:
    """Tokens of the concatenated pieces and a 0/1 weight per token."""
    tokens: list[int] = []
    weights: list[float] = []
    run: list[tuple[str, bool]] = []
    for value, trained in pieces:
        if isinstance(value, str):
            if value:
                run.append((value, trained))
            continue
        _extend_run(tokenizer, run, tokens, weights)
        run = []
        tokens.append(value)
        weights.append(1.0 if trained else 0.0)
    _extend_run(tokenizer, run, tokens, weights)
    return tokens, weights


def _extend_run(
    tokenizer: Tokenizer, run: list[tuple[str, bool]], tokens: list[int], weights: list[float]
) -> None:
    """Append the tokens and weights of one run of text pieces."""
    if not run:
        return
    text = "".join(t for t, _ in run)
    ids = encode_text(tokenizer, text)
    run_weights = [0.0] * len(ids)
    for start, end in _trained_spans(run):
        # Tokens wholly inside the untrained text before/after this span keep weight 0.
        lo = 0 if start == 0 else _common_prefix(encode_text(tokenizer, text[:start]), ids)
        hi = len(ids)
        if end < len(text):
            hi -= _common_suffix(encode_text(tokenizer, text[end:]), ids)
        for i in range(lo, hi):
            run_weights[i] = 1.0
    tokens.extend(ids)
    weights.extend(run_weights)


def _trained_spans(run: list[tuple[str, bool]]) -> list[tuple[int, int]]:
    """Character ranges of maximal trained stretches of a run."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for text, trained in run:
        end = pos + len(text)
        if trained:
            if spans and spans[-1][1] == pos:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((pos, end))
        pos = end
    return spans


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _common_suffix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        n += 1
    return n
