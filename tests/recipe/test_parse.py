"""parse_response: cut at the format's stop, split out <think> blocks, report truncation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mint_async import recipe as recipe


def ids(tok: Any, text: str) -> list[int]:
    """Token ids of ``text`` (control tokens included)."""
    out: list[int] = tok.encode(text, add_special_tokens=False)
    return out


@pytest.fixture
def qwen3(qwen_tokenizer: Any) -> recipe.Renderer:
    """The qwen3 renderer on the tiny tokenizer."""
    return recipe.get_renderer("qwen3", qwen_tokenizer)


def test_qwen3_splits_think_block(qwen3: recipe.Renderer, qwen_tokenizer: Any) -> None:
    """A think block becomes reasoning_content; the rest is the content."""
    tokens = ids(qwen_tokenizer, "<think>\nthree fours\n</think>\n\n12<|im_end|>")
    assert qwen3.parse_response(tokens) == (
        {"role": "assistant", "content": "12", "reasoning_content": "three fours"},
        True,
    )


def test_qwen3_empty_think_block_is_left_out(qwen3: recipe.Renderer, qwen_tokenizer: Any) -> None:
    """An empty think block gives no reasoning_content key."""
    tokens = ids(qwen_tokenizer, "<think>\n\n</think>\n\n12<|im_end|>")
    assert qwen3.parse_response(tokens) == ({"role": "assistant", "content": "12"}, True)


def test_qwen3_stops_at_first_im_end(qwen3: recipe.Renderer, qwen_tokenizer: Any) -> None:
    """Tokens after the first <|im_end|> are ignored."""
    tokens = ids(qwen_tokenizer, "12<|im_end|>\n<|im_start|>user\nmore<|im_end|>")
    assert qwen3.parse_response(np.asarray(tokens, dtype=np.int32)) == (
        {"role": "assistant", "content": "12"},
        True,
    )


def test_qwen3_without_stop_is_not_ok(qwen3: recipe.Renderer, qwen_tokenizer: Any) -> None:
    """A response cut off by max_tokens (no <|im_end|>) is reported, its text kept."""
    message, ok = qwen3.parse_response(ids(qwen_tokenizer, "<think>\nr\n</think>\n\n1"))
    assert not ok
    assert message == {"role": "assistant", "content": "1", "reasoning_content": "r"}


def test_qwen3_unclosed_think_is_not_ok(qwen3: recipe.Renderer, qwen_tokenizer: Any) -> None:
    """A think block never closed is malformed even if <|im_end|> follows."""
    message, ok = qwen3.parse_response(ids(qwen_tokenizer, "<think>\nhmm<|im_end|>"))
    assert not ok
    assert message == {"role": "assistant", "content": "<think>\nhmm"}


def test_qwen3_reasoning_without_opening_tag(qwen3: recipe.Renderer, qwen_tokenizer: Any) -> None:
    """Text before a lone </think> is reasoning (models whose prompt opens the block)."""
    message, ok = qwen3.parse_response(ids(qwen_tokenizer, "r\n</think>\n\nx<|im_end|>"))
    assert ok and message == {"role": "assistant", "content": "x", "reasoning_content": "r"}


def test_disable_thinking_parses_plain_answers(qwen_tokenizer: Any) -> None:
    """qwen3_disable_thinking: the prompt holds the empty block, the response is the answer."""
    renderer = recipe.get_renderer("qwen3_disable_thinking", qwen_tokenizer)
    assert renderer.parse_response(ids(qwen_tokenizer, "12<|im_end|>")) == (
        {"role": "assistant", "content": "12"},
        True,
    )


def test_qwen3_instruct_keeps_think_text(qwen_tokenizer: Any) -> None:
    """qwen3_instruct does not think; <think> text stays in the content."""
    renderer = recipe.get_renderer("qwen3_instruct", qwen_tokenizer)
    text = "<think>\nr\n</think>\n\nx"
    assert renderer.parse_response(ids(qwen_tokenizer, text + "<|im_end|>")) == (
        {"role": "assistant", "content": text},
        True,
    )


def test_llama3(tokenizers: dict[str, Any]) -> None:
    """llama3 cuts at <|eot_id|>; without it ok is False."""
    tok = tokenizers["llama3"]
    renderer = recipe.get_renderer("llama3", tok)
    assert renderer.parse_response(ids(tok, "12<|eot_id|><|start_header_id|>")) == (
        {"role": "assistant", "content": "12"},
        True,
    )
    assert renderer.parse_response(ids(tok, "12")) == (
        {"role": "assistant", "content": "12"},
        False,
    )


def test_role_colon(tokenizers: dict[str, Any]) -> None:
    """role_colon cuts at the next "\\n\\nUser:" and drops the space after "Assistant:"."""
    tok = tokenizers["role_colon"]
    renderer = recipe.get_renderer("role_colon", tok)
    assert renderer.parse_response(ids(tok, " 12\n\nUser: next")) == (
        {"role": "assistant", "content": "12"},
        True,
    )
    assert renderer.parse_response(ids(tok, " 1\n\n2")) == (
        {"role": "assistant", "content": "1\n\n2"},
        False,
    )


def test_sampling_stop_sequences_fit_sampling_params(renderer: recipe.Renderer) -> None:
    """get_stop_sequences() is accepted as SamplingParams(stop=...)."""
    from mint_async.types import SamplingParams

    params = SamplingParams(max_tokens=8, stop=renderer.get_stop_sequences())
    assert list(params.stop or []) == renderer.get_stop_sequences()
