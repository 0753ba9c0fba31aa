"""The tiny offline tokenizer: deterministic, loads offline, renders the Qwen3 chat format."""

from __future__ import annotations

import json
from pathlib import Path

from mint_async.server.backends import _tiny_tokenizer


def test_build_is_deterministic(tmp_path: Path) -> None:
    """Two builds produce byte-identical files."""
    a = _tiny_tokenizer.build_tiny_tokenizer(tmp_path / "a")
    b = _tiny_tokenizer.build_tiny_tokenizer(tmp_path / "b")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_ensure_reuses_cache(tmp_path: Path) -> None:
    """ensure_tiny_tokenizer builds once and returns the same directory afterwards."""
    first = _tiny_tokenizer.ensure_tiny_tokenizer(tmp_path)
    mtime = (first / "tokenizer.json").stat().st_mtime_ns
    assert _tiny_tokenizer.ensure_tiny_tokenizer(tmp_path) == first
    assert (first / "tokenizer.json").stat().st_mtime_ns == mtime


def test_round_trip_and_digits(tmp_path: Path) -> None:
    """Text decodes back unchanged and digits are single tokens."""
    tok = _tiny_tokenizer.load_tokenizer(_tiny_tokenizer.ensure_tiny_tokenizer(tmp_path))
    text = "Question: What is 12 * 11?\nAnswer: 132"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert [tok.decode([i]) for i in tok.encode("132")] == ["1", "3", "2"]
    assert tok.eos_token == "<|im_end|>"


def test_chat_template_qwen3_format(tmp_path: Path) -> None:
    """The chat template renders ChatML turns, think blocks and the generation prompt."""
    tok = _tiny_tokenizer.load_tokenizer(_tiny_tokenizer.ensure_tiny_tokenizer(tmp_path))
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\ngreet\n</think>\n\nHello"},
    ]
    assert tok.apply_chat_template(msgs, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n<think>\ngreet\n</think>\n\nHello<|im_end|>\n"
    )
    prompt = tok.apply_chat_template(
        msgs[:2], tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # Reasoning of an assistant turn before the last user message is dropped.
    history = [*msgs, {"role": "user", "content": "Again"}]
    assert "greet" not in tok.apply_chat_template(history, tokenize=False)


def test_final_assistant_turn_gets_an_empty_think_block(tmp_path: Path) -> None:
    """As the real Qwen3 template, the final assistant turn always has a think block."""
    tok = _tiny_tokenizer.load_tokenizer(_tiny_tokenizer.ensure_tiny_tokenizer(tmp_path))
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert tok.apply_chat_template(msgs, tokenize=False).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>\n"
    )


def test_custom_chat_template(tmp_path: Path) -> None:
    """build_tiny_tokenizer(chat_template=...) saves that template instead of Qwen3's."""
    template = "{%- for m in messages -%}{{ m['role'] }}={{ m['content'] }};{%- endfor -%}"
    tok = _tiny_tokenizer.load_tokenizer(
        _tiny_tokenizer.build_tiny_tokenizer(tmp_path, chat_template=template)
    )
    assert tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False) == "user=x;"
    default = _tiny_tokenizer.build_tiny_tokenizer(tmp_path / "default")
    config = json.loads((default / "tokenizer_config.json").read_text())
    assert config["chat_template"] == _tiny_tokenizer.QWEN3_CHAT_TEMPLATE
