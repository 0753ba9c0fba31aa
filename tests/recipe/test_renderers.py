"""Renderers: exact formats, equality with apply_chat_template, loss weights per TrainOnWhat."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mint_async import InvalidInputError
from mint_async import recipe as recipe
from mint_async.recipe import Message, TrainOnWhat

from .conftest import template_key, template_text, template_tokens

MULTI_TURN: list[Message] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 3 * 4?"},
    {"role": "assistant", "content": "12"},
    {"role": "user", "content": "And 5 * 6?"},
    {"role": "assistant", "content": "30"},
]

EXPECTED_TEXT = {
    "qwen3": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 3 * 4?<|im_end|>\n"
        "<|im_start|>assistant\n12<|im_end|>\n<|im_start|>user\nAnd 5 * 6?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n30<|im_end|>\n"
    ),
    "qwen3_instruct": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 3 * 4?<|im_end|>\n"
        "<|im_start|>assistant\n12<|im_end|>\n<|im_start|>user\nAnd 5 * 6?<|im_end|>\n"
        "<|im_start|>assistant\n30<|im_end|>\n"
    ),
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 3 * 4?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n12<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd 5 * 6?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n30<|eot_id|>"
    ),
    "role_colon": (
        "System: Be brief.\n\nUser: What is 3 * 4?\n\nAssistant: 12\n\n"
        "User: And 5 * 6?\n\nAssistant: 30\n\n"
    ),
}
EXPECTED_TEXT["llama3_1"] = EXPECTED_TEXT["llama3"].replace(
    "\n\nBe brief.",
    "\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.",
)
EXPECTED_TEXT["qwen3_disable_thinking"] = EXPECTED_TEXT["qwen3"]

# The trained text of MULTI_TURN per mode (decoded weight-1 tokens, in order).
TRAINED_TEXT: dict[str, dict[TrainOnWhat, str]] = {
    "qwen3": {
        TrainOnWhat.LAST_ASSISTANT_MESSAGE: "<think>\n\n</think>\n\n30<|im_end|>",
        TrainOnWhat.ALL_ASSISTANT_MESSAGES: "12<|im_end|><think>\n\n</think>\n\n30<|im_end|>",
        TrainOnWhat.ALL_MESSAGES: (
            "Be brief.<|im_end|>What is 3 * 4?<|im_end|>12<|im_end|>And 5 * 6?<|im_end|>"
            "<think>\n\n</think>\n\n30<|im_end|>"
        ),
        TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES: (
            "Be brief.<|im_end|>What is 3 * 4?<|im_end|>And 5 * 6?<|im_end|>"
        ),
    },
    "qwen3_disable_thinking": {
        TrainOnWhat.LAST_ASSISTANT_MESSAGE: "30<|im_end|>",
        TrainOnWhat.ALL_ASSISTANT_MESSAGES: "12<|im_end|>30<|im_end|>",
        TrainOnWhat.ALL_MESSAGES: (
            "Be brief.<|im_end|>What is 3 * 4?<|im_end|>12<|im_end|>And 5 * 6?<|im_end|>30<|im_end|>"
        ),
        TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES: (
            "Be brief.<|im_end|>What is 3 * 4?<|im_end|>And 5 * 6?<|im_end|>"
        ),
    },
    "qwen3_instruct": {
        TrainOnWhat.LAST_ASSISTANT_MESSAGE: "30<|im_end|>",
        TrainOnWhat.ALL_ASSISTANT_MESSAGES: "12<|im_end|>30<|im_end|>",
        TrainOnWhat.ALL_MESSAGES: (
            "Be brief.<|im_end|>What is 3 * 4?<|im_end|>12<|im_end|>And 5 * 6?<|im_end|>30<|im_end|>"
        ),
        TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES: (
            "Be brief.<|im_end|>What is 3 * 4?<|im_end|>And 5 * 6?<|im_end|>"
        ),
    },
    "llama3": {
        TrainOnWhat.LAST_ASSISTANT_MESSAGE: "30<|eot_id|>",
        TrainOnWhat.ALL_ASSISTANT_MESSAGES: "12<|eot_id|>30<|eot_id|>",
        TrainOnWhat.ALL_MESSAGES: (
            "Be brief.<|eot_id|>What is 3 * 4?<|eot_id|>12<|eot_id|>And 5 * 6?<|eot_id|>30<|eot_id|>"
        ),
        TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES: (
            "Be brief.<|eot_id|>What is 3 * 4?<|eot_id|>And 5 * 6?<|eot_id|>"
        ),
    },
    "role_colon": {
        TrainOnWhat.LAST_ASSISTANT_MESSAGE: " 30\n\n",
        TrainOnWhat.ALL_ASSISTANT_MESSAGES: " 12\n\n 30\n\n",
        TrainOnWhat.ALL_MESSAGES: " Be brief.\n\n What is 3 * 4?\n\n 12\n\n And 5 * 6?\n\n 30\n\n",
        TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES: " Be brief.\n\n What is 3 * 4?\n\n And 5 * 6?\n\n",
    },
}

TRAINED_TEXT["llama3_1"] = TRAINED_TEXT["llama3"]

GENERATION_SUFFIX = {
    "qwen3": "<|im_start|>user\nAnd 5 * 6?<|im_end|>\n<|im_start|>assistant\n",
    "qwen3_disable_thinking": (
        "<|im_start|>user\nAnd 5 * 6?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    ),
    "qwen3_instruct": "<|im_start|>user\nAnd 5 * 6?<|im_end|>\n<|im_start|>assistant\n",
    "llama3": (
        "<|start_header_id|>user<|end_header_id|>\n\nAnd 5 * 6?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "role_colon": "User: And 5 * 6?\n\nAssistant:",
}
GENERATION_SUFFIX["llama3_1"] = GENERATION_SUFFIX["llama3"]


def trained_text(renderer: recipe.Renderer, tokens: list[int], weights: Any) -> str:
    """The decoded text of the weight-1 tokens."""
    tok: Any = renderer.tokenizer
    text: str = tok.decode([t for t, w in zip(tokens, weights, strict=True) if w == 1.0])
    return text


def test_supervised_example_renders_the_format(
    renderer: recipe.Renderer, renderer_name: str
) -> None:
    """The supervised example decodes to the format's exact text and equals apply_chat_template."""
    model_input, weights = renderer.build_supervised_example(MULTI_TURN)
    tokens = model_input.to_ints()
    tok: Any = renderer.tokenizer
    assert tok.decode(tokens) == EXPECTED_TEXT[renderer_name]
    assert template_text(renderer, MULTI_TURN) == EXPECTED_TEXT[renderer_name]
    assert tokens == template_tokens(renderer, MULTI_TURN)
    assert weights.dtype == np.float32 and weights.shape == (len(tokens),)


@pytest.mark.parametrize("mode", [m for m in TrainOnWhat if m is not TrainOnWhat.ALL_TOKENS])
def test_train_on_what_selects_bodies(
    renderer: recipe.Renderer, renderer_name: str, mode: TrainOnWhat
) -> None:
    """Each mode trains exactly the bodies it names; tokens never depend on the mode."""
    model_input, weights = renderer.build_supervised_example(MULTI_TURN, train_on_what=mode)
    tokens = model_input.to_ints()
    assert tokens == template_tokens(renderer, MULTI_TURN)
    assert set(weights.tolist()) <= {0.0, 1.0}
    assert trained_text(renderer, tokens, weights) == TRAINED_TEXT[renderer_name][mode]


def test_all_tokens_trains_everything(renderer: recipe.Renderer) -> None:
    """ALL_TOKENS gives every token, prefix and headers included, weight 1."""
    model_input, weights = renderer.build_supervised_example(MULTI_TURN, TrainOnWhat.ALL_TOKENS)
    assert weights.tolist() == [1.0] * model_input.length


def test_default_mode_is_last_assistant_message(renderer: recipe.Renderer) -> None:
    """Without train_on_what only the last assistant turn is trained."""
    _, default = renderer.build_supervised_example(MULTI_TURN)
    _, last = renderer.build_supervised_example(MULTI_TURN, "last_assistant_message")
    assert default.tolist() == last.tolist()


def test_prompt_is_weight_zero_prefix(renderer: recipe.Renderer) -> None:
    """With the default mode, the generation prompt's tokens are the weight-0 prefix."""
    model_input, weights = renderer.build_supervised_example(MULTI_TURN)
    trained = np.flatnonzero(weights)
    first_trained, last_trained = int(trained[0]), int(trained[-1])
    # One contiguous trained run; after it at most the format's separator ("\n" for ChatML).
    assert weights[first_trained : last_trained + 1].all()
    assert model_input.length - last_trained - 1 <= 1
    prompt = renderer.build_generation_prompt(MULTI_TURN[:-1])
    assert model_input.to_ints()[:first_trained] == prompt.to_ints()


def test_generation_prompt_equals_template(renderer: recipe.Renderer, renderer_name: str) -> None:
    """build_generation_prompt equals apply_chat_template(add_generation_prompt=True)."""
    prompt = renderer.build_generation_prompt(MULTI_TURN[:-1])
    expected = template_tokens(renderer, MULTI_TURN[:-1], add_generation_prompt=True)
    assert prompt.to_ints() == expected
    text = template_text(renderer, MULTI_TURN[:-1], add_generation_prompt=True)
    assert text.endswith(GENERATION_SUFFIX[renderer_name])


def test_generation_prompt_prefill(renderer: recipe.Renderer) -> None:
    """A prefill is tokenized as the continuation of the prompt's text."""
    messages = MULTI_TURN[:-1]
    prompt = renderer.build_generation_prompt(messages, prefill="The answer")
    text = template_text(renderer, messages, add_generation_prompt=True) + "The answer"
    tok: Any = renderer.tokenizer
    assert prompt.to_ints() == tok.encode(text, add_special_tokens=False)


def test_generation_prompt_for_another_role(renderer: recipe.Renderer) -> None:
    """role= opens a turn for that role (e.g. to simulate the user)."""
    prompt = renderer.build_generation_prompt(MULTI_TURN[:3], role="user")
    tok: Any = renderer.tokenizer
    text: str = tok.decode(prompt.to_ints())
    assert text.endswith(
        ("<|im_start|>user\n", "<|start_header_id|>user<|end_header_id|>\n\n", "User:")
    )
    assert "<think>\n\n</think>\n\n" not in text.rsplit("user", 1)[-1]
    with pytest.raises(InvalidInputError, match="role 'robot'"):
        renderer.build_generation_prompt(MULTI_TURN[:3], role="robot")


def test_stop_sequences(renderer: recipe.Renderer, renderer_name: str) -> None:
    """Each format stops at its end-of-turn token (or, for role_colon, the next user turn)."""
    tok: Any = renderer.tokenizer
    expected: dict[str, list[int] | list[str]] = {
        "qwen3": [tok.convert_tokens_to_ids("<|im_end|>")],
        "qwen3_disable_thinking": [tok.convert_tokens_to_ids("<|im_end|>")],
        "qwen3_instruct": [tok.convert_tokens_to_ids("<|im_end|>")],
        "llama3": [tok.convert_tokens_to_ids("<|eot_id|>")],
        "llama3_1": [
            tok.convert_tokens_to_ids("<|eot_id|>")
        ],  # the tiny vocabulary has no <|eom_id|>
        "role_colon": ["\n\nUser:"],
    }
    assert renderer.get_stop_sequences() == expected[renderer_name]


def test_qwen3_history_drops_reasoning_and_last_turn_shows_it(qwen_tokenizer: Any) -> None:
    """Reasoning before the last user message is dropped; the final turn's is shown and trained."""
    renderer = recipe.get_renderer("qwen3", qwen_tokenizer)
    messages: list[Message] = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello", "reasoning_content": "greet back"},
        {"role": "user", "content": "3 * 4?"},
        {"role": "assistant", "content": "<think>\nmultiply\n</think>\n\n12"},
    ]
    model_input, weights = renderer.build_supervised_example(messages, "all_assistant_messages")
    tokens = model_input.to_ints()
    assert tokens == template_tokens(renderer, messages)
    text = qwen_tokenizer.decode(tokens)
    assert "greet back" not in text
    assert trained_text(renderer, tokens, weights) == (
        "Hello<|im_end|><think>\nmultiply\n</think>\n\n12<|im_end|>"
    )


def test_qwen3_tool_response_turn_is_not_a_query(qwen_tokenizer: Any) -> None:
    """A user turn that is wholly a <tool_response> block is a tool result, as in Qwen3's own
    template: the reasoning of the answer before it stays shown (a real query would drop it)."""
    renderer = recipe.get_renderer("qwen3", qwen_tokenizer)
    tool_turn: list[Message] = [
        {"role": "user", "content": "3 * 4?"},
        {"role": "assistant", "content": "let me look", "reasoning_content": "need a tool"},
        {"role": "user", "content": "<tool_response>\n12\n</tool_response>"},
        {"role": "assistant", "content": "12", "reasoning_content": "the tool says 12"},
    ]
    query_turn = [*tool_turn[:2], {"role": "user", "content": "and 12?"}, tool_turn[3]]
    for messages, kept in ((tool_turn, True), (query_turn, False)):
        model_input, _ = renderer.build_supervised_example(messages)
        assert model_input.to_ints() == template_tokens(renderer, messages)
        text = qwen_tokenizer.decode(model_input.to_ints())
        assert ("<think>\nneed a tool\n</think>\n\nlet me look<|im_end|>" in text) is kept
        assert text.endswith("<think>\nthe tool says 12\n</think>\n\n12<|im_end|>\n")


def test_qwen3_reasoning_between_assistant_turns(qwen_tokenizer: Any) -> None:
    """After the last user turn, a non-final assistant turn shows reasoning only if it has some."""
    renderer = recipe.get_renderer("qwen3", qwen_tokenizer)
    messages: list[Message] = [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b", "reasoning_content": "why b"},
        {"role": "assistant", "content": "c"},
    ]
    model_input, _ = renderer.build_supervised_example(messages)
    text = qwen_tokenizer.decode(model_input.to_ints())
    assert "assistant\na<|im_end|>" in text
    assert "assistant\n<think>\nwhy b\n</think>\n\nb<|im_end|>" in text
    assert text.endswith("assistant\n<think>\n\n</think>\n\nc<|im_end|>\n")
    assert model_input.to_ints() == template_tokens(renderer, messages)


def test_qwen3_without_user_message_has_no_think_block(qwen_tokenizer: Any) -> None:
    """As the template: with no user message no assistant turn gets a think block."""
    renderer = recipe.get_renderer("qwen3", qwen_tokenizer)
    messages: list[Message] = [
        {"role": "system", "content": "S"},
        {"role": "assistant", "content": "x", "reasoning_content": "r"},
    ]
    model_input, _ = renderer.build_supervised_example(messages)
    assert "<think>" not in qwen_tokenizer.decode(model_input.to_ints())
    assert model_input.to_ints() == template_tokens(renderer, messages)


def test_disable_thinking_trains_reasoning_when_present(qwen_tokenizer: Any) -> None:
    """qwen3_disable_thinking keeps a real think block in the trained body."""
    renderer = recipe.get_renderer("qwen3_disable_thinking", qwen_tokenizer)
    messages: list[Message] = [
        {"role": "user", "content": "3 * 4?"},
        {"role": "assistant", "content": "12", "reasoning_content": "three fours"},
    ]
    model_input, weights = renderer.build_supervised_example(messages)
    tokens = model_input.to_ints()
    assert tokens == template_tokens(renderer, messages)
    assert (
        trained_text(renderer, tokens, weights) == "<think>\nthree fours\n</think>\n\n12<|im_end|>"
    )


def test_llama3_trims_content(tokenizers: dict[str, Any]) -> None:
    """Llama 3 content is trimmed, as Meta's template does."""
    renderer = recipe.get_renderer("llama3", tokenizers["llama3"])
    messages: list[Message] = [
        {"role": "user", "content": "  hi \n"},
        {"role": "assistant", "content": "\n yo  "},
    ]
    model_input, weights = renderer.build_supervised_example(messages)
    tokens = model_input.to_ints()
    assert tokens == template_tokens(renderer, messages)
    assert trained_text(renderer, tokens, weights) == "yo<|eot_id|>"


def test_trailing_user_message_is_context(renderer: recipe.Renderer) -> None:
    """The last assistant message need not be the last message; later turns stay at weight 0."""
    messages = [*MULTI_TURN[:3], {"role": "user", "content": "Thanks"}]
    model_input, weights = renderer.build_supervised_example(messages)
    tokens = model_input.to_ints()
    assert tokens == template_tokens(renderer, messages)
    assert "12" in trained_text(renderer, tokens, weights)
    assert "Thanks" not in trained_text(renderer, tokens, weights)


def test_tokenizer_without_control_tokens_is_rejected(tokenizers: dict[str, Any]) -> None:
    """A renderer refuses a tokenizer whose vocabulary lacks its control tokens."""

    class Plain:
        def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
            return [ord(c) for c in text]

        def decode(self, token_ids: list[int], /) -> str:
            return "".join(chr(t) for t in token_ids)

        def convert_tokens_to_ids(self, tokens: str, /) -> int | None:
            return ord(tokens) if len(tokens) == 1 else None

    for name in ("qwen3", "qwen3_disable_thinking", "qwen3_instruct", "llama3"):
        with pytest.raises(InvalidInputError, match="control token"):
            recipe.get_renderer(name, Plain())
    # role_colon needs no control tokens.
    renderer = recipe.get_renderer("role_colon", Plain())
    model_input, _ = renderer.build_supervised_example(MULTI_TURN[1:3])
    assert Plain().decode(model_input.to_ints()) == "User: What is 3 * 4?\n\nAssistant: 12\n\n"


def test_role_colon_starts_with_bos_when_the_tokenizer_has_one(tokenizers: dict[str, Any]) -> None:
    """role_colon prepends the tokenizer's BOS token, as its template does."""
    tok: Any = tokenizers["role_colon"]
    tok.bos_token = "<|begin_of_text|>"
    try:
        renderer = recipe.get_renderer("role_colon", tok)
        model_input, weights = renderer.build_supervised_example(MULTI_TURN[1:3])
        assert model_input.to_ints()[0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
        assert model_input.to_ints() == template_tokens(renderer, MULTI_TURN[1:3])
        assert weights[0] == 0.0
    finally:
        tok.bos_token = None


@pytest.mark.parametrize("name", recipe.RENDERER_NAMES)
def test_each_renderer_matches_its_class_template(name: str, tokenizers: dict[str, Any]) -> None:
    """The tokenizer's own template is the renderer's chat_template (so the two can't drift)."""
    renderer = recipe.get_renderer(name, tokenizers[template_key(name)])
    assert renderer.tokenizer.chat_template == renderer.chat_template  # type: ignore[attr-defined]
