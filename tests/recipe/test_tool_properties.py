"""Random tool conversations: our renderers equal the published templates run by transformers.

The published Qwen3 and Llama 3.1 templates (``differential/templates/``) are
rendered by ``apply_chat_template`` (Python Jinja, as Hugging Face and vLLM
render them) on the tiny offline tokenizer, for generated conversations: random
text (whitespace, newlines, unicode, braces and quotes), nested JSON arguments,
parallel calls, runs of tool results, reasoning, tool lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mint_async.recipe import TrainOnWhat, renderers

TEMPLATES = Path(__file__).parent / "differential" / "templates"

_text = st.text(alphabet='ab Z1\n\t{}[]":,é日🌍-', max_size=12)
_key = st.text(alphabet="abcxyz_", min_size=1, max_size=5)
_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_key, children, max_size=3),
    max_leaves=8,
)
_arguments = st.dictionaries(_key, _json, max_size=3)
_name = st.sampled_from(["get_weather", "search", "f"])


def _spec(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties},
        },
    }


_property: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"type": st.sampled_from(["string", "integer"])}
)
_tool_spec: st.SearchStrategy[dict[str, Any]] = st.builds(
    _spec, _name, _text, st.dictionaries(_key, _property, max_size=2)
)
_tools: st.SearchStrategy[list[dict[str, Any]] | None] = st.one_of(
    st.none(), st.just([]), st.lists(_tool_spec, min_size=1, max_size=3)
)


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


@st.composite
def conversations(draw: st.DrawFn, *, llama: bool) -> list[dict[str, Any]]:
    """A system prompt (maybe), a user query, then random assistant/tool/user turns."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(_text)})
    messages.append({"role": "user", "content": draw(_text)})
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["call", "answer", "user"]))
        if kind == "user":
            messages.append({"role": "user", "content": draw(_text)})
            continue
        message: dict[str, Any] = {"role": "assistant", "content": draw(_text)}
        if not llama and draw(st.booleans()):
            message["reasoning_content"] = draw(_text)
        if kind == "call":
            count = 1 if llama else draw(st.integers(1, 3))
            message["tool_calls"] = [_call(draw(_name), draw(_arguments)) for _ in range(count)]
            if llama:
                message["content"] = ""
            messages.append(message)
            results = draw(st.integers(1, 3))
            messages.extend({"role": "tool", "content": draw(_text)} for _ in range(results))
        else:
            messages.append(message)
    return messages


def _published(
    tok: Any, template: str, messages: list[dict[str, Any]], tools: Any, **kwargs: Any
) -> list[int]:
    out: Any = tok.apply_chat_template(
        messages, tools=tools, chat_template=template, tokenize=True, **kwargs
    )
    ids: Any = out["input_ids"] if hasattr(out, "keys") else out
    return [int(t) for t in ids]


@pytest.mark.parametrize("name", ["qwen3", "qwen3_disable_thinking"])
@given(messages=conversations(llama=False), tools=_tools, prompt=st.booleans())
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_qwen3_equals_published_template(
    tokenizers: dict[str, Any], name: str, messages: list[dict[str, Any]], tools: Any, prompt: bool
) -> None:
    """qwen3 renderers give the published Qwen3 template's tokens, with and without a prompt."""
    tok = tokenizers["qwen3"]
    renderer = renderers.get_renderer(name, tok)
    template = (TEMPLATES / "qwen3.jinja").read_text()
    kwargs = dict(renderer.chat_template_kwargs)
    if prompt:
        ours = renderer.build_generation_prompt(messages, tools=tools).to_ints()
    else:
        ours = renderer.build_supervised_example(messages, TrainOnWhat.ALL_TOKENS, tools=tools)[
            0
        ].to_ints()
    assert ours == _published(
        tok, template, messages, tools, add_generation_prompt=prompt, **kwargs
    )


@pytest.mark.parametrize(
    ("template_name", "options"),
    [
        ("llama3_1", {}),
        ("llama3_1", {"tools_in_user_message": False}),
        ("llama3_2", {"date_string": "05 Dec 2026"}),
    ],
)
@given(messages=conversations(llama=True), tools=_tools, prompt=st.booleans())
@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
def test_llama3_1_equals_published_template(
    tokenizers: dict[str, Any],
    template_name: str,
    options: dict[str, Any],
    messages: list[dict[str, Any]],
    tools: Any,
    prompt: bool,
) -> None:
    """llama3_1 gives the published Llama 3.1 / 3.2 templates' tokens for JSON tool conversations."""
    tok = tokenizers["llama3"]
    renderer = renderers.Llama31Renderer(tok, **options)
    template = (TEMPLATES / f"{template_name}.jinja").read_text()
    kwargs = {**options, "bos_token": "<|begin_of_text|>"}
    if prompt:
        ours = renderer.build_generation_prompt(messages, tools=tools).to_ints()
    else:
        ours = renderer.build_supervised_example(messages, TrainOnWhat.ALL_TOKENS, tools=tools)[
            0
        ].to_ints()
    assert ours == _published(
        tok, template, messages, tools, add_generation_prompt=prompt, **kwargs
    )


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
