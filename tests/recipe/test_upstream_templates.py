"""Renderers against the chat templates the model publishers ship (tests/data/chat_templates).

The other recipe tests compare each renderer with our own template rewrite
(``recipe.QWEN3_CHAT_TEMPLATE`` ...); here the reference is the published
template itself, installed on the tiny tokenizer (which has every control token
of both formats). Which renderer stands for which upstream template and options:

* ``qwen3`` — Qwen3-0.6B's template, ``enable_thinking`` unset (its default, thinking on);
* ``qwen3_disable_thinking`` — the same template with ``enable_thinking=False``;
* ``llama3`` — Meta-Llama-3-8B-Instruct's template (with ``bos_token`` ``<|begin_of_text|>``).
  The Llama 3.1-style template (checked with Llama 3.3's) adds a default
  "Cutting Knowledge Date" system block; ``llama3`` deliberately does not, and
  :func:`test_llama3_1_style_template_adds_only_the_knowledge_block` pins that
  exact difference.

Conversations are tool-free (the renderers take no tools); ``qwen3_instruct``
and ``role_colon`` have no published template checked here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mint_async import _tinytok
from mint_async import recipe as recipe
from mint_async.recipe import Message

from .test_properties import CONTROL_TEXT, PLAIN_FRAGMENTS, THINK_TEXT, TOOL_TEXT, conversations

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "data" / "chat_templates"

UPSTREAM_FOR: dict[str, str] = {
    "qwen3": "qwen3",
    "qwen3_disable_thinking": "qwen3",
    "llama3": "llama3",
}
"""Renderer name → upstream template file stem."""

OUR_TEMPLATE: dict[str, str] = {
    "qwen3": recipe.QWEN3_CHAT_TEMPLATE,
    "llama3": recipe.LLAMA3_CHAT_TEMPLATE,
}
"""Upstream stem → our rewrite, which must render the same text."""

KNOWLEDGE_BLOCK = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
"""What Llama 3.1-style templates put at the start of the system turn (no date_string given)."""


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny tokenizer per published template; the Llama ones get Llama's BOS token."""
    root = tmp_path_factory.mktemp("upstream")
    toks: dict[str, Any] = {}
    for stem in ("qwen3", "llama3", "llama3_3"):
        template = (TEMPLATE_DIR / f"{stem}.jinja").read_text(encoding="utf-8")
        tok: Any = _tinytok.load_tokenizer(
            _tinytok.build_tiny_tokenizer(root / stem, chat_template=template)
        )
        if stem.startswith("llama"):
            # Meta's tokenizer_config has bos_token <|begin_of_text|>; its template prepends it.
            tok.bos_token = "<|begin_of_text|>"
        toks[stem] = tok
    return toks


def apply(
    tok: Any,
    messages: Sequence[Mapping[str, object]],
    *,
    tokenize: bool,
    add_generation_prompt: bool = False,
    chat_template: str | None = None,
    **kwargs: Any,
) -> Any:
    """``tok.apply_chat_template`` as a list of ids (``tokenize=True``) or the text."""
    out: Any = tok.apply_chat_template(
        [dict(m) for m in messages],
        tokenize=tokenize,
        add_generation_prompt=add_generation_prompt,
        chat_template=chat_template,
        **kwargs,
    )
    if not tokenize:
        return out
    ids: Any = out["input_ids"] if hasattr(out, "keys") else out
    return [int(t) for t in ids]


def upstream_renderer(name: str, upstream: dict[str, Any]) -> recipe.Renderer:
    """The renderer ``name`` on the tokenizer carrying its published template."""
    return recipe.get_renderer(name, upstream[UPSTREAM_FOR[name]])


def assert_matches_upstream(renderer: recipe.Renderer, messages: Sequence[Message]) -> None:
    """Supervised tokens and generation prompt equal the published template's tokens."""
    tok: Any = renderer.tokenizer
    kwargs = dict(renderer.chat_template_kwargs)
    model_input, weights = renderer.build_supervised_example(messages, "all_messages")
    assert model_input.to_ints() == apply(tok, messages, tokenize=True, **kwargs)
    assert len(weights) == model_input.length
    prompt = renderer.build_generation_prompt(messages)
    assert prompt.to_ints() == apply(
        tok, messages, tokenize=True, add_generation_prompt=True, **kwargs
    )


SYSTEM: Message = {"role": "system", "content": "You are a careful calculator."}
Q1: Message = {"role": "user", "content": "What is 3 * 4?"}
A1: Message = {"role": "assistant", "content": "12"}
Q2: Message = {"role": "user", "content": "And 5 * 6?"}
A2: Message = {"role": "assistant", "content": "30"}

CONVERSATIONS: dict[str, list[Message]] = {
    "single_turn": [Q1, A1],
    "single_turn_system": [SYSTEM, Q1, A1],
    "multi_turn_system": [SYSTEM, Q1, A1, Q2, A2],
    "trailing_user": [SYSTEM, Q1, A1, Q2],
    "whitespace": [
        {"role": "system", "content": "  padded system \n"},
        {"role": "user", "content": "\nq  "},
        {"role": "assistant", "content": " a \n\n"},
    ],
    "only_system_and_assistant": [SYSTEM, A1],
}
"""Tool-free conversations every renderer checked here accepts."""

THINKING_CONVERSATIONS: dict[str, list[Message]] = {
    "reasoning_last_turn": [
        Q1,
        {"role": "assistant", "content": "12", "reasoning_content": "3 fours"},
    ],
    "reasoning_in_history_is_dropped": [
        SYSTEM,
        Q1,
        {"role": "assistant", "content": "12", "reasoning_content": "3 fours"},
        Q2,
        {"role": "assistant", "content": "30", "reasoning_content": "6 fives"},
    ],
    "think_block_in_content": [
        Q1,
        {"role": "assistant", "content": "<think>\nthree fours\n</think>\n\n12"},
        Q2,
        {"role": "assistant", "content": "<think>six fives</think>30"},
    ],
    "empty_reasoning_is_explicit": [
        Q1,
        {"role": "assistant", "content": "<think>x</think>12", "reasoning_content": ""},
    ],
    "assistant_turns_after_the_query": [
        Q1,
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b", "reasoning_content": "why b"},
        {"role": "assistant", "content": "c"},
    ],
    # Qwen3's template treats a user turn that is wholly a <tool_response> block as a
    # tool result, not a query: the first answer's reasoning stays shown.
    "tool_response_user_turn": [
        Q1,
        {"role": "assistant", "content": "let me look", "reasoning_content": "need a tool"},
        {"role": "user", "content": "<tool_response>\n12\n</tool_response>"},
        {"role": "assistant", "content": "12", "reasoning_content": "the tool says 12"},
    ],
    "only_tool_responses": [
        {"role": "user", "content": "<tool_response>1</tool_response>"},
        {"role": "assistant", "content": "a", "reasoning_content": "r"},
    ],
}
"""Conversations exercising Qwen3's think-block rules."""


@pytest.mark.parametrize("name", sorted(UPSTREAM_FOR))
@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
def test_renderer_equals_published_template(
    upstream: dict[str, Any], name: str, conversation: str
) -> None:
    """Supervised example and generation prompt tokens equal the published template's."""
    assert_matches_upstream(upstream_renderer(name, upstream), CONVERSATIONS[conversation])


@pytest.mark.parametrize("name", ["qwen3", "qwen3_disable_thinking"])
@pytest.mark.parametrize("conversation", sorted(THINKING_CONVERSATIONS))
def test_qwen3_thinking_rules_equal_published_template(
    upstream: dict[str, Any], name: str, conversation: str
) -> None:
    """Think blocks (shown, dropped, parsed out of content, tool results) follow Qwen's template."""
    assert_matches_upstream(upstream_renderer(name, upstream), THINKING_CONVERSATIONS[conversation])


def test_qwen3_tool_response_turn_keeps_reasoning(upstream: dict[str, Any]) -> None:
    """After a <tool_response> user turn, the earlier answer's reasoning is still rendered."""
    renderer = upstream_renderer("qwen3", upstream)
    messages = THINKING_CONVERSATIONS["tool_response_user_turn"]
    model_input, _ = renderer.build_supervised_example(messages)
    text: str = upstream["qwen3"].decode(model_input.to_ints())
    assert "<think>\nneed a tool\n</think>\n\nlet me look<|im_end|>" in text


def test_qwen3_enable_thinking_true_is_the_default(upstream: dict[str, Any]) -> None:
    """qwen3 (no kwargs) equals the template with enable_thinking=True as well as unset."""
    renderer = upstream_renderer("qwen3", upstream)
    assert dict(renderer.chat_template_kwargs) == {}
    messages = CONVERSATIONS["multi_turn_system"]
    prompt = renderer.build_generation_prompt(messages)
    on = apply(
        upstream["qwen3"], messages, tokenize=True, add_generation_prompt=True, enable_thinking=True
    )
    assert prompt.to_ints() == on
    disabled = upstream_renderer("qwen3_disable_thinking", upstream)
    assert dict(disabled.chat_template_kwargs) == {"enable_thinking": False}
    text: str = upstream["qwen3"].decode(disabled.build_generation_prompt(messages).to_ints())
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


REWRITE_CASES: list[tuple[str, str, bool | None]] = [
    *((stem, c, None) for stem in sorted(OUR_TEMPLATE) for c in sorted(CONVERSATIONS)),
    *(("qwen3", c, False) for c in sorted(CONVERSATIONS)),
    *(
        ("qwen3", f"thinking:{c}", flag)
        for c in sorted(THINKING_CONVERSATIONS)
        for flag in (None, False)
    ),
]
"""(template stem, conversation, enable_thinking) for the rewrite check; reasoning is Qwen3's alone."""


@pytest.mark.parametrize(("stem", "conversation", "enable_thinking"), REWRITE_CASES)
def test_our_template_rewrite_renders_like_published(
    upstream: dict[str, Any], stem: str, conversation: str, enable_thinking: bool | None
) -> None:
    """recipe.QWEN3/LLAMA3_CHAT_TEMPLATE render the same text as the published templates."""
    if conversation.startswith("thinking:"):
        messages = THINKING_CONVERSATIONS[conversation.removeprefix("thinking:")]
    else:
        messages = CONVERSATIONS[conversation]
    kwargs: dict[str, Any] = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    tok = upstream[stem]
    for gen in (False, True):
        ours = apply(
            tok,
            messages,
            tokenize=False,
            add_generation_prompt=gen,
            chat_template=OUR_TEMPLATE[stem],
            **kwargs,
        )
        assert ours == apply(tok, messages, tokenize=False, add_generation_prompt=gen, **kwargs)


def test_llama3_1_style_template_adds_only_the_knowledge_block(upstream: dict[str, Any]) -> None:
    """Llama 3.1+ templates differ from llama3 only by the default knowledge-date system block.

    This is the documented choice of the llama3 renderer: with a system message
    S, the 3.1-style template equals the renderer given the system message
    KNOWLEDGE_BLOCK + S; without one, it inserts a system turn holding just the block.
    """
    tok: Any = upstream["llama3_3"]
    renderer = recipe.get_renderer("llama3", tok)
    with_system = CONVERSATIONS["multi_turn_system"]
    shifted: list[Message] = [
        {"role": "system", "content": KNOWLEDGE_BLOCK + with_system[0]["content"]},
        *with_system[1:],
    ]
    model_input, _ = renderer.build_supervised_example(shifted)
    assert model_input.to_ints() == apply(tok, with_system, tokenize=True)
    prompt = renderer.build_generation_prompt(shifted[:-1])
    assert prompt.to_ints() == apply(
        tok, with_system[:-1], tokenize=True, add_generation_prompt=True
    )

    without_system = CONVERSATIONS["single_turn"]
    ours: str = tok.decode(renderer.build_supervised_example(without_system)[0].to_ints())
    bos = "<|begin_of_text|>"
    block = f"<|start_header_id|>system<|end_header_id|>\n\n{KNOWLEDGE_BLOCK}<|eot_id|>"
    assert ours.startswith(bos)
    assert apply(tok, without_system, tokenize=False) == bos + block + ours.removeprefix(bos)


_fragments = st.sampled_from(PLAIN_FRAGMENTS + CONTROL_TEXT + THINK_TEXT + TOOL_TEXT)
_content = st.lists(st.one_of(_fragments, st.text(max_size=3)), max_size=6).map("".join)
_tool_result = _content.map(lambda s: f"<tool_response>{s}</tool_response>")


@pytest.mark.parametrize("name", sorted(UPSTREAM_FOR))
@given(data=st.data())
@settings(deadline=None, max_examples=60)
def test_random_conversations_equal_published_template(
    upstream: dict[str, Any], name: str, data: st.DataObject
) -> None:
    """Any tool-free conversation renders as the published template tokenizes it."""
    renderer = upstream_renderer(name, upstream)
    messages = data.draw(conversations(name, st.one_of(_content, _tool_result)))
    assert_matches_upstream(renderer, messages)
