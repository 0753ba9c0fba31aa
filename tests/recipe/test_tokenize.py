"""Weight alignment: tokens equal whole-string tokenization; trained text is never lost."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mint_async import InvalidInputError
from mint_async import recipe as recipe
from mint_async.recipe._tokenize import Piece, control_token_id, decode_text, tokenize_pieces

from .fakes import QWEN_CONTROL, GreedyTokenizer

CONTROL = ("<A>", "<B>")
MERGES = ("ab", "bc", "abc", "\n\n", "c\n", "  ")


def joined(tok: GreedyTokenizer, pieces: list[Piece]) -> str:
    """The text the pieces stand for (control tokens spelled out)."""
    return "".join(v if isinstance(v, str) else tok.inverse[v] for v, _ in pieces)


def test_straddling_token_at_start_of_trained_text_is_trained() -> None:
    """A merge spanning untrained → trained text is trained (the model must emit its trained part)."""
    tok = GreedyTokenizer(CONTROL, ("bc",))
    tokens, weights = tokenize_pieces(tok, [("ab", False), ("cd", True)])
    assert [tok.decode([t]) for t in tokens] == ["a", "bc", "d"]
    assert weights == [0.0, 1.0, 1.0]


def test_straddling_token_at_end_of_trained_text_is_trained() -> None:
    """A merge spanning trained → untrained text is trained too."""
    tok = GreedyTokenizer(CONTROL, ("bc",))
    tokens, weights = tokenize_pieces(tok, [("ab", True), ("cd", False)])
    assert [tok.decode([t]) for t in tokens] == ["a", "bc", "d"]
    assert weights == [1.0, 1.0, 0.0]


def test_trained_text_inside_one_token() -> None:
    """Trained text wholly inside a merged token still trains that token."""
    tok = GreedyTokenizer(CONTROL, ("abc",))
    tokens, weights = tokenize_pieces(tok, [("a", False), ("b", True), ("c", False)])
    assert [tok.decode([t]) for t in tokens] == ["abc"]
    assert weights == [1.0]


def test_runs_split_at_control_tokens_and_encode_once() -> None:
    """Text between control tokens is encoded once per run; extra encodes only at weight changes."""
    tok = GreedyTokenizer(CONTROL, MERGES)
    a, b = tok.vocab["<A>"], tok.vocab["<B>"]
    pieces: list[Piece] = [("ab", False), ("c", False), (a, True), ("bc", True), (b, False)]
    tokens, weights = tokenize_pieces(tok, pieces)
    assert tok.calls == 2
    assert tokens == tok.encode("abc<A>bc<B>")
    assert weights == [0.0, 1.0, 1.0, 0.0]


def test_control_token_must_be_a_single_added_token() -> None:
    """control_token_id rejects unknown tokens and ids that do not encode back whole."""
    tok = GreedyTokenizer(CONTROL, MERGES)
    assert control_token_id(tok, "<A>", "test") == tok.vocab["<A>"]
    with pytest.raises(InvalidInputError, match=r"control token '<\|eot_id\|>'"):
        control_token_id(tok, "<|eot_id|>", "test")

    class UnkTokenizer(GreedyTokenizer):
        def convert_tokens_to_ids(self, tokens: str, /) -> int | None:
            return self.vocab.get(tokens, 0)  # unknown → an unk id, as many HF tokenizers

    with pytest.raises(InvalidInputError, match="control token"):
        control_token_id(UnkTokenizer(CONTROL, MERGES), "<|im_end|>", "test")


def test_decode_must_return_text() -> None:
    """A tokenizer whose decode does not return str gives a clear error."""

    class BatchDecoder(GreedyTokenizer):
        def decode(self, token_ids: list[int], /) -> Any:
            return [super().decode(token_ids)]

    with pytest.raises(InvalidInputError, match="expected str"):
        decode_text(BatchDecoder(CONTROL, MERGES), [1000 + ord("a")])


def test_qwen3_header_newline_merging_into_content() -> None:
    """ChatML: a "\\n\\n" merge across header and body keeps tokens whole and trains the body."""
    tok = GreedyTokenizer(QWEN_CONTROL, ("\n\n", "assistant", "user"))
    renderer = recipe.get_renderer("qwen3_instruct", tok)
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "\nanswer"}]
    model_input, weights = renderer.build_supervised_example(messages)
    tokens = model_input.to_ints()
    text = "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n\nanswer<|im_end|>\n"
    assert tokens == tok.encode(text)
    trained = tok.decode([t for t, w in zip(tokens, weights, strict=True) if w])
    # The straddling "\n\n" is trained: it carries the body's leading newline.
    assert trained == "\n\nanswer<|im_end|>"


def test_role_colon_end_of_turn_merging_into_next_header() -> None:
    """role_colon: a merge of a body's closing blank line with the next header stays trained."""
    tok = GreedyTokenizer((), ("\n\nUs", "er:", "Assistant:"))
    renderer = recipe.get_renderer("role_colon", tok)
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    model_input, weights = renderer.build_supervised_example(messages, "all_assistant_messages")
    tokens = model_input.to_ints()
    assert tokens == tok.encode("User: a\n\nAssistant: b\n\nUser: c\n\nAssistant: d\n\n")
    pieces = [tok.decode([t]) for t, w in zip(tokens, weights, strict=True) if w]
    assert pieces == [" ", "b", "\n\nUs", " ", "d", "\n", "\n"]


_texts = st.text(alphabet="abc\n <>AB", max_size=6)
_pieces = st.lists(
    st.tuples(st.one_of(_texts, st.sampled_from([0, 1])), st.booleans()), min_size=1, max_size=8
)


@given(pieces=_pieces)
def test_tokens_equal_whole_string_tokenization(pieces: list[Piece]) -> None:
    """For any pieces, tokens equal encoding the joined string (control tokens included)."""
    tok = GreedyTokenizer(CONTROL, MERGES)
    tokens, weights = tokenize_pieces(tok, pieces)
    assert tokens == tok.encode(joined(tok, pieces))
    assert len(weights) == len(tokens)


@given(pieces=_pieces)
def test_every_token_touching_trained_text_is_trained(pieces: list[Piece]) -> None:
    """No trained character is lost; runs without trained text and their control tokens follow their flags."""
    tok = GreedyTokenizer(CONTROL, MERGES)
    tokens, weights = tokenize_pieces(tok, pieces)
    # Which characters of the joined text are trained, and which are control tokens.
    flags: list[bool] = []
    for value, trained in pieces:
        text = value if isinstance(value, str) else tok.inverse[value]
        flags.extend([trained] * len(text))
    pos = 0
    any_trained = any(t for _, t in pieces)
    for token, weight in zip(tokens, weights, strict=True):
        width = len(tok.decode([token]))
        if any(flags[pos : pos + width]):
            assert weight == 1.0
        if not any_trained:
            assert weight == 0.0
        pos += width
    assert pos == len(flags)
