"""Property tests over random conversations: template equality, exact weights, parse round trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mint_async import InvalidInputError
from mint_async import recipe as recipe
from mint_async.recipe import Message, TrainOnWhat

from .conftest import template_key, template_text, template_tokens

CONTROL_TEXT = (
    "<|im_start|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
)
THINK_TEXT = ("<think>", "</think>")
TOOL_TEXT = ("<tool_response>", "</tool_response>")
PLAIN_FRAGMENTS = (
    "a",
    "Zq",
    "7",
    "42",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "é",
    "中文",
    "🙂",
    "!",
    ": ",
    "?",
    "User:",
)

_plain = st.lists(st.one_of(st.sampled_from(PLAIN_FRAGMENTS), st.text(max_size=3)), max_size=6).map(
    "".join
)
_tricky = st.lists(
    st.one_of(
        st.sampled_from(PLAIN_FRAGMENTS + CONTROL_TEXT + THINK_TEXT + TOOL_TEXT),
        st.text(max_size=3),
    ),
    max_size=6,
).map("".join)


@st.composite
def conversations(draw: st.DrawFn, name: str, content: st.SearchStrategy[str]) -> list[Message]:
    """1-5 messages of any role; reasoning only where the renderer can show it."""
    messages: list[Message] = []
    for _ in range(draw(st.integers(1, 5))):
        m: Message = {
            "role": draw(st.sampled_from(["system", "user", "assistant"])),
            "content": draw(content),
        }
        if name.startswith("qwen3") and name != "qwen3_instruct" and m["role"] == "assistant":
            reasoning = draw(st.one_of(st.none(), st.just("absent"), content))
            if reasoning != "absent":
                m["reasoning_content"] = reasoning
        messages.append(m)
    return messages


def make_renderer(tokenizers: dict[str, Any], name: str) -> recipe.Renderer:
    """The renderer on the tokenizer carrying its template."""
    return recipe.get_renderer(name, tokenizers[template_key(name)])


@pytest.mark.parametrize("name", recipe.RENDERER_NAMES)
@given(data=st.data())
@settings(deadline=None)
def test_tokens_equal_apply_chat_template(
    tokenizers: dict[str, Any], name: str, data: st.DataObject
) -> None:
    """Any conversation (control-token text, think tags, odd whitespace) tokenizes as the template does."""
    renderer = make_renderer(tokenizers, name)
    messages = data.draw(conversations(name, _tricky))
    mode = data.draw(st.sampled_from(list(TrainOnWhat)))
    try:
        model_input, weights = renderer.build_supervised_example(messages, mode)
    except InvalidInputError as exc:
        error = str(exc)
    else:
        error = ""
        assert model_input.to_ints() == template_tokens(renderer, messages)
        assert len(weights) == model_input.length
    assert not error or "selects no message" in error
    prompt = renderer.build_generation_prompt(messages)
    assert prompt.to_ints() == template_tokens(renderer, messages, add_generation_prompt=True)


def expected_bodies(renderer: recipe.Renderer, messages: list[Message]) -> list[str]:
    """Each message's trainable text, cut out of the template's own rendering."""
    if renderer.name == "role_colon":
        return [" " + m["content"] + "\n\n" for m in messages]
    text = template_text(renderer, messages)
    if renderer.name in ("llama3", "llama3_1"):
        turns = text.split("<|start_header_id|>")[1:]
        llama_bodies = [t.split("<|end_header_id|>\n\n", 1)[1] for t in turns]
        if renderer.name == "llama3_1":
            # Llama 3.1's date header opens the system turn, which exists even without a system message.
            dates = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
            llama_bodies = [b.removeprefix(dates) for b in llama_bodies]
            if messages[0]["role"] != "system":
                llama_bodies = llama_bodies[1:]
        return llama_bodies
    bodies: list[str] = []
    for turn, m in zip(text.split("<|im_start|>")[1:], messages, strict=True):
        body = turn[len(m["role"]) + 1 : -1]  # after "role\n", before the separator "\n"
        if renderer.name == "qwen3_disable_thinking":
            # An empty think block is prompt here: the generation prompt ends with one.
            body = body.removeprefix("<think>\n\n</think>\n\n")
        bodies.append(body)
    return bodies


def trained_runs(renderer: recipe.Renderer, tokens: list[int], weights: Any) -> list[str]:
    """The decoded text of each maximal run of weight-1 tokens."""
    tok: Any = renderer.tokenizer
    runs: list[list[int]] = []
    previous = 0.0
    for token, weight in zip(tokens, weights.tolist(), strict=True):
        if weight == 1.0:
            if previous != 1.0:
                runs.append([])
            runs[-1].append(token)
        previous = weight
    return [tok.decode(run) for run in runs]


@pytest.mark.parametrize("name", recipe.RENDERER_NAMES)
@given(data=st.data())
@settings(deadline=None)
def test_weights_cover_exactly_the_selected_bodies(
    tokenizers: dict[str, Any], name: str, data: st.DataObject
) -> None:
    """Trained tokens decode to exactly the selected messages' bodies, one run per message.

    The tiny tokenizer never merges across a header/body boundary, so here
    alignment is exact (straddling merges are covered in test_tokenize).
    """
    renderer = make_renderer(tokenizers, name)
    messages = data.draw(conversations(name, _plain))
    mode = data.draw(st.sampled_from([m for m in TrainOnWhat if m is not TrainOnWhat.ALL_TOKENS]))
    selected = {
        TrainOnWhat.LAST_ASSISTANT_MESSAGE: [
            i for i, m in enumerate(messages) if m["role"] == "assistant"
        ][-1:],
        TrainOnWhat.ALL_ASSISTANT_MESSAGES: [
            i for i, m in enumerate(messages) if m["role"] == "assistant"
        ],
        TrainOnWhat.ALL_MESSAGES: list(range(len(messages))),
        TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES: [
            i for i, m in enumerate(messages) if m["role"] != "assistant"
        ],
    }[mode]
    if not selected:
        with pytest.raises(InvalidInputError, match="selects no message"):
            renderer.build_supervised_example(messages, mode)
        return
    model_input, weights = renderer.build_supervised_example(messages, mode)
    bodies = expected_bodies(renderer, messages)
    assert trained_runs(renderer, model_input.to_ints(), weights) == [bodies[i] for i in selected]


_final_content = _plain.filter(lambda s: "\n\nUser:" not in s)


@pytest.mark.parametrize("name", recipe.RENDERER_NAMES)
@given(content=_final_content, reasoning=st.one_of(st.none(), _plain))
@settings(deadline=None)
def test_parse_response_round_trip(
    tokenizers: dict[str, Any], name: str, content: str, reasoning: str | None
) -> None:
    """Parsing the trained tokens of a final answer gives a message that renders identically."""
    renderer = make_renderer(tokenizers, name)
    tok: Any = renderer.tokenizer
    answer: Message = {"role": "assistant", "content": content}
    if renderer.thinking:
        answer["reasoning_content"] = reasoning
    conversation: list[Message] = [{"role": "user", "content": "q"}, answer]
    model_input, weights = renderer.build_supervised_example(conversation)
    tokens = model_input.to_ints()
    sampled = [t for t, w in zip(tokens, weights.tolist(), strict=True) if w == 1.0]
    if name == "role_colon":
        sampled += tok.encode("User:", add_special_tokens=False)  # the sampler stops after it
    parsed, ok = renderer.parse_response(sampled)
    assert ok
    again, _ = renderer.build_supervised_example([conversation[0], parsed])
    assert again.to_ints() == tokens
