"""The MinT SFT guide's renderer flow, end to end: messages → Datum on the wire."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from transformers import PreTrainedTokenizerBase

import mint_async.recipe as recipe
from mint_async import _codec
from mint_async.recipe import TrainOnWhat
from mint_async.types import Datum, ForwardBackwardInput


def test_sft_guide_flow(qwen_tokenizer: Any) -> None:
    """The guide's exact calls give a Datum training only the answer, encodable for the wire."""
    tokenizer = qwen_tokenizer
    renderer = recipe.renderers.get_renderer(
        recipe.get_recommended_renderer_name("Qwen/Qwen3-0.6B"),
        tokenizer,
    )
    messages = [
        {"role": "user", "content": "What is 3 * 4?"},
        {"role": "assistant", "content": "12"},
    ]
    model_input, weights = renderer.build_supervised_example(messages)
    datum = recipe.datum_from_model_input_weights(model_input, weights, max_length=2048)

    tokens = model_input.to_ints()
    assert datum.model_input.to_ints() == tokens[:-1]
    targets = datum.loss_fn_inputs["target_tokens"].to_numpy()
    mask = datum.loss_fn_inputs["weights"].to_numpy()
    assert tokenizer.decode(targets[mask == 1].tolist()) == "<think>\n\n</think>\n\n12<|im_end|>"
    # The prompt the model is trained to continue is exactly the sampling prompt.
    prompt = renderer.build_generation_prompt(messages[:1]).to_ints()
    assert tokens[: len(prompt)] == prompt and not mask[: len(prompt) - 1].any()

    body = _codec.encode(ForwardBackwardInput(data=[datum], loss_fn="cross_entropy"))
    assert _codec.decode(ForwardBackwardInput, body).data == [datum]
    assert _codec.decode(Datum, _codec.encode(datum)) == datum


def test_multi_turn_all_assistant_messages(qwen_tokenizer: Any) -> None:
    """TrainOnWhat.ALL_ASSISTANT_MESSAGES trains every assistant turn, as the guide says."""
    renderer = recipe.renderers.get_renderer("qwen3", qwen_tokenizer)
    messages = [
        {"role": "user", "content": "What is 3 * 4?"},
        {"role": "assistant", "content": "12"},
        {"role": "user", "content": "And 2 * 5?"},
        {"role": "assistant", "content": "10"},
    ]
    last = recipe.datum_from_model_input_weights(*renderer.build_supervised_example(messages))
    every = recipe.datum_from_model_input_weights(
        *renderer.build_supervised_example(messages, TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    )
    last_w, every_w = (d.loss_fn_inputs["weights"].to_numpy() for d in (last, every))
    assert (every_w >= last_w).all() and every_w.sum() > last_w.sum()
    targets = every.loss_fn_inputs["target_tokens"].to_numpy()
    assert qwen_tokenizer.decode(targets[every_w == 1].tolist()) == (
        "12<|im_end|><think>\n\n</think>\n\n10<|im_end|>"
    )


@pytest.mark.parametrize("name", ["mint-tiny", "mint-tiny-bpe"])
def test_tiny_local_model_uses_its_tokenizers_template(qwen_tokenizer: Any, name: str) -> None:
    """The local tiny model's recommended renderer matches its tokenizer's own template."""
    renderer = recipe.get_renderer(recipe.get_recommended_renderer_name(name), qwen_tokenizer)
    messages = [
        {"role": "user", "content": "What is 7 * 8?"},
        {"role": "assistant", "content": "56"},
    ]
    model_input, _ = renderer.build_supervised_example(messages)
    out: Any = qwen_tokenizer.apply_chat_template(messages, tokenize=False)
    assert model_input.to_ints() == qwen_tokenizer.encode(out, add_special_tokens=False)


def test_truncated_long_example(qwen_tokenizer: Any) -> None:
    """A long conversation cut by max_length keeps aligned targets and weights."""
    renderer = recipe.get_renderer("qwen3_disable_thinking", qwen_tokenizer)
    messages = [
        {"role": "user", "content": "count " * 50},
        {"role": "assistant", "content": "1 2 3 4 5 6 7 8 9"},
    ]
    model_input, weights = renderer.build_supervised_example(messages)
    datum = recipe.datum_from_model_input_weights(model_input, weights, max_length=64)
    assert datum.model_input.length == 63
    assert np.array_equal(datum.loss_fn_inputs["weights"].to_numpy(), weights[1:64])


def test_hugging_face_tokenizers_fit_the_protocol(qwen_tokenizer: Any) -> None:
    """A transformers tokenizer is a recipe.Tokenizer (checked statically by mypy and pyright)."""
    hf: PreTrainedTokenizerBase = qwen_tokenizer
    tokenizer: recipe.Tokenizer = hf
    assert recipe.get_renderer("qwen3", tokenizer).tokenizer is qwen_tokenizer
