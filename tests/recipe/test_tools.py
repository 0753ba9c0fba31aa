"""Tool calling: goldens from the published templates, our own templates, parsing, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mint_async import InvalidInputError
from mint_async import recipe as recipe
from mint_async.recipe import Message, TrainOnWhat, renderers

from .tool_cases import (
    CALC,
    CASES,
    GOLDENS_PATH,
    WEATHER,
    Rendering,
    pack_goldens,
    renderings,
    unpack_goldens,
)
from .tool_renderers import make_renderer

GOLDENS: dict[str, str] = unpack_goldens(json.loads(GOLDENS_PATH.read_text(encoding="utf-8")))
"""Per rendering key, the published template's text (written by test_tool_differential)."""

RENDERINGS = renderings()


@pytest.fixture(scope="module")
def tok(tokenizers: dict[str, Any]) -> Any:
    """The tiny offline tokenizer; it has both formats' control tokens."""
    return tokenizers["qwen3"]


def build(renderer: recipe.Renderer, rendering: Rendering) -> list[int]:
    """The renderer's tokens for ``rendering`` (a prompt, or the whole conversation)."""
    if rendering["add_generation_prompt"]:
        prompt = renderer.build_generation_prompt(rendering["messages"], tools=rendering["tools"])
        return prompt.to_ints()
    model_input, _ = renderer.build_supervised_example(
        rendering["messages"], TrainOnWhat.ALL_TOKENS, tools=rendering["tools"]
    )
    return model_input.to_ints()


def test_goldens_cover_every_rendering() -> None:
    """The goldens hold exactly the differential's renderings, over at least 30 conversations."""
    assert set(GOLDENS) == {r["key"] for r in RENDERINGS}
    assert len(CASES) >= 30


def test_goldens_file_stores_each_text_once() -> None:
    """Equal texts are stored once; packing the unpacked goldens gives the file back."""
    packed = json.loads(GOLDENS_PATH.read_text(encoding="utf-8"))
    assert len(set(packed["texts"].values())) == len(packed["texts"])
    assert pack_goldens(GOLDENS) == packed
    assert pack_goldens({"b": "x", "a": "x", "c": "y"}) == {
        "texts": {"a": "x", "c": "y"},
        "same_as": {"b": "a"},
    }


@pytest.mark.parametrize("rendering", RENDERINGS, ids=lambda r: r["key"])
def test_matches_published_template_text(rendering: Rendering, tok: Any) -> None:
    """Our tokens decode to the published template's text and equal its tokenization."""
    tokens = build(make_renderer(rendering["variant"], tok), rendering)
    assert tok.decode(tokens) == GOLDENS[rendering["key"]]
    assert tokens == tok.encode(GOLDENS[rendering["key"]], add_special_tokens=False)


def _own_template_text(renderer: recipe.Renderer, rendering: Rendering, tok: Any) -> str:
    text: str = tok.apply_chat_template(
        rendering["messages"],
        tools=rendering["tools"],
        chat_template=renderer.chat_template,
        tokenize=False,
        add_generation_prompt=rendering["add_generation_prompt"],
        **renderer.chat_template_kwargs,
    )
    return text


@pytest.mark.parametrize("rendering", RENDERINGS, ids=lambda r: r["key"])
def test_renderer_chat_template_agrees(rendering: Rendering, tok: Any) -> None:
    """Each renderer's own ``chat_template`` renders tool conversations as the renderer does."""
    renderer = make_renderer(rendering["variant"], tok)
    tokens = build(renderer, rendering)
    assert tok.decode(tokens) == _own_template_text(renderer, rendering, tok)


@pytest.mark.parametrize(
    "rendering",
    [r for r in RENDERINGS if r["variant"] == "qwen3"],
    ids=lambda r: r["key"],
)
def test_qwen3_instruct_is_qwen3_without_thinking(rendering: Rendering, tok: Any) -> None:
    """qwen3_instruct renders Qwen3's tool format with no think blocks, as its template does."""
    renderer = recipe.get_renderer("qwen3_instruct", tok)
    messages = [
        {k: v for k, v in m.items() if k != "reasoning_content"} for m in rendering["messages"]
    ]
    plain: Rendering = {**rendering, "messages": messages}
    text = tok.decode(build(renderer, plain))
    assert text == _own_template_text(renderer, plain, tok)
    assert "<think>" not in text.replace("<think>\nUse", "").replace("<think>\nDone", "")
    # Outside the assistant turns, the text is Qwen3's published one.
    published = GOLDENS[rendering["key"]]
    assert text.split("<|im_start|>assistant")[0] == published.split("<|im_start|>assistant")[0]


def test_tool_weights_train_calls_not_results(tok: Any) -> None:
    """By default the last assistant turn (a tool call) is trained; tool results never are."""
    renderer = recipe.get_renderer("qwen3_instruct", tok)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        },
        {"role": "tool", "content": "21"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "calculate", "arguments": {"expression": "21*2"}},
                }
            ],
        },
    ]
    model_input, weights = renderer.build_supervised_example(messages, tools=[WEATHER, CALC])
    tokens = model_input.to_ints()
    trained = tok.decode([t for t, w in zip(tokens, weights.tolist(), strict=True) if w == 1.0])
    assert (
        trained
        == '<tool_call>\n{"name": "calculate", "arguments": {"expression": "21*2"}}\n</tool_call><|im_end|>'
    )
    _, all_weights = renderer.build_supervised_example(messages, "all_messages", tools=[WEATHER])
    assert all_weights.sum() > weights.sum()


# --- parse_response ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rendering",
    [
        r
        for r in RENDERINGS
        if not r["add_generation_prompt"]
        and r["messages"][-1]["role"] == "assistant"
        and r["variant"] != "qwen3_disable_thinking"
    ],
    ids=lambda r: r["key"],
)
def test_parse_response_round_trip(rendering: Rendering, tok: Any) -> None:
    """The last assistant turn, sampled, parses to a message that renders the same tokens."""
    renderer = make_renderer(rendering["variant"], tok)
    messages, tools = rendering["messages"], rendering["tools"]
    head = renderer.build_generation_prompt(messages[:-1], tools=tools).to_ints()
    full = build(renderer, rendering)
    assert full[: len(head)] == head
    message, ok = renderer.parse_response(full[len(head) :])
    assert ok
    again = build(renderer, {**rendering, "messages": [*messages[:-1], dict(message)]})
    assert again == full
    calls = message.get("tool_calls", [])
    assert [c["function"]["name"] for c in calls] == [
        c["function"]["name"] for c in messages[-1].get("tool_calls", [])
    ]
    for c, original in zip(calls, messages[-1].get("tool_calls", []), strict=True):
        arguments = original["function"]["arguments"]
        expected = json.loads(arguments) if isinstance(arguments, str) else arguments
        assert json.loads(str(c["function"]["arguments"])) == expected


def field(message: Message, key: str) -> Any:
    """``message[key]``, which must be there (the parse tests know which keys they expect)."""
    return dict(message)[key]


def _sample(tok: Any, text: str, end: str | None) -> list[int]:
    ids: list[int] = tok.encode(text, add_special_tokens=False)
    return ids + ([tok.convert_tokens_to_ids(end)] if end else [])


@pytest.mark.parametrize("name", ["qwen3", "qwen3_disable_thinking", "qwen3_instruct"])
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('<tool_call>\n{"name": "f", "arguments": {"a": 1}\n</tool_call>', "invalid JSON"),
        ('<tool_call>\n{"arguments": {"a": 1}}\n</tool_call>', "no string 'name'"),
        ('<tool_call>\n{"name": "f", "arguments": [1]}\n</tool_call>', "JSON-object 'arguments'"),
        ('<tool_call>\n["f"]\n</tool_call>', "expected a JSON object"),
        ('<tool_call>\n{"name": "f", "arguments": {"a": 1}}', "never closed"),
    ],
)
def test_qwen3_malformed_tool_call_is_typed_not_raised(
    tok: Any, name: str, text: str, error: str
) -> None:
    """A broken call is reported in unparsed_tool_calls with its text and reason, ok=False."""
    renderer = recipe.get_renderer(name, tok)
    message, ok = renderer.parse_response(_sample(tok, "Calling.\n" + text, "<|im_end|>"))
    assert not ok
    assert message["content"] == "Calling."
    assert "tool_calls" not in message
    [unparsed] = field(message, "unparsed_tool_calls")
    assert error in unparsed["error"]
    assert unparsed["raw_text"].startswith("<tool_call>")


def test_qwen3_good_and_bad_calls_together(tok: Any) -> None:
    """Good calls are returned even beside a broken one; stray text stays in the content."""
    renderer = recipe.get_renderer("qwen3", tok)
    text = (
        "<think>\nplan\n</think>\n\n"
        '<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
        "<tool_call>\nnot json\n</tool_call>\n"
        '<tool_call>\n{"name": "b", "arguments": "{\\"y\\": 2}"}\n</tool_call>\ntrailing words'
    )
    message, ok = renderer.parse_response(_sample(tok, text, "<|im_end|>"))
    assert not ok
    assert field(message, "reasoning_content") == "plan"
    assert [c["function"]["name"] for c in field(message, "tool_calls")] == ["a", "b"]
    assert field(message, "tool_calls")[0]["function"]["arguments"] == '{"x": 1}'
    assert json.loads(str(field(message, "tool_calls")[1]["function"]["arguments"])) == {"y": 2}
    assert message["content"] == "trailing words"
    assert len(field(message, "unparsed_tool_calls")) == 1


def test_qwen3_call_without_end_of_turn(tok: Any) -> None:
    """A sample cut off after a complete call still returns the call, with ok=False."""
    renderer = recipe.get_renderer("qwen3_instruct", tok)
    text = '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    message, ok = renderer.parse_response(_sample(tok, text, None))
    assert not ok
    assert field(message, "tool_calls") == [
        {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert "unparsed_tool_calls" not in message


def test_qwen3_unclosed_think_keeps_text(tok: Any) -> None:
    """An unclosed think block is not parsed for calls: all text stays content, ok=False."""
    renderer = recipe.get_renderer("qwen3", tok)
    text = '<think>\nhmm <tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    message, ok = renderer.parse_response(_sample(tok, text, "<|im_end|>"))
    assert not ok and message == {"role": "assistant", "content": text}


@pytest.mark.parametrize(
    ("text", "call", "error"),
    [
        (
            '{"name": "f", "parameters": {"a": [1, 2]}}',
            {"name": "f", "arguments": '{"a": [1, 2]}'},
            None,
        ),
        ('  {"name": "f", "arguments": {}}  ', {"name": "f", "arguments": "{}"}, None),
        ('{"name": "f", "parameters": {"a": ', None, "invalid JSON"),
        ('{"name": 3, "parameters": {}}', None, "no string 'name'"),
        ('{"name": "f", "parameters": "x"}', None, "JSON-object 'parameters'"),
        (
            '<|python_tag|>{"name": "f", "parameters": {"q": "é"}}',
            {"name": "f", "arguments": '{"q": "é"}'},
            None,
        ),
        ("<|python_tag|>print(1)", None, "invalid JSON"),
        ('{"answer": 42}', None, None),
        ("Plain answer.", None, None),
    ],
)
def test_llama3_1_parse(
    tok: Any, text: str, call: dict[str, str] | None, error: str | None
) -> None:
    """Llama 3.1 JSON calls parse; broken attempts are typed; other text is content."""
    renderer = renderers.Llama31Renderer(tok)
    message, ok = renderer.parse_response(_sample(tok, text, "<|eot_id|>"))
    assert ok is (error is None)
    if call is not None:
        assert message == {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": call}],
        }
    else:
        assert message["content"] == text
        assert "tool_calls" not in message
    if error is not None:
        assert error in field(message, "unparsed_tool_calls")[0]["error"]


# --- bad input ---------------------------------------------------------------------------------

_CALL: dict[str, Any] = {"type": "function", "function": {"name": "f", "arguments": {}}}


BAD_TOOL_INPUT: list[tuple[str, list[dict[str, Any]], Any, str]] = [
    ("llama3", [{"role": "user", "content": "q"}], [WEATHER], "no tool format"),
    ("role_colon", [{"role": "user", "content": "q"}], [WEATHER], "no tool format"),
    (
        "llama3",
        [{"role": "assistant", "content": "", "tool_calls": [_CALL]}],
        None,
        "cannot show",
    ),
    ("qwen3", [{"role": "user", "content": "q"}], WEATHER, "sequence of tool definitions"),
    ("qwen3", [{"role": "user", "content": "q"}], ["x"], r"tools\[0\] must be a mapping"),
    ("qwen3", [{"role": "user", "content": "q"}], [{"f": {1, 2}}], "not JSON-serializable"),
    (
        "qwen3",
        [{"role": "user", "content": "q", "tool_calls": [_CALL]}],
        None,
        "only assistant",
    ),
    (
        "qwen3",
        [{"role": "assistant", "content": "", "tool_calls": _CALL}],
        None,
        "list of tool calls",
    ),
    (
        "qwen3",
        [{"role": "assistant", "content": "", "tool_calls": ["x"]}],
        None,
        r"\[0\] must be a mapping",
    ),
    (
        "qwen3",
        [{"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": {}}}]}],
        None,
        "non-empty str function name",
    ),
    (
        "qwen3",
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": "{x"}}],
            }
        ],
        None,
        "not valid JSON",
    ),
    (
        "qwen3",
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}],
            }
        ],
        None,
        "must be a JSON object",
    ),
    (
        "qwen3",
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": 3}}],
            }
        ],
        None,
        "must be a JSON object",
    ),
    ("qwen3", [{"role": "tool", "content": "r", "tool_call_id": 7}], None, "tool_call_id"),
    ("qwen3", [{"role": "assistant", "content": None}], None, r"\['content'\] must be a str"),
    (
        "llama3_1",
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "", "tool_calls": [_CALL, _CALL]},
        ],
        None,
        "one per message",
    ),
    (
        "llama3_1",
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "hi", "tool_calls": [_CALL]},
        ],
        None,
        "both content and a tool call",
    ),
    ("llama3_1", [{"role": "system", "content": "s"}], [WEATHER], "has none"),
    (
        "llama3_1",
        [{"role": "assistant", "content": "a"}],
        [WEATHER],
        "start with a user message",
    ),
]


@pytest.mark.parametrize(("name", "messages", "tools", "match"), BAD_TOOL_INPUT)
def test_bad_tool_input(
    tok: Any, name: str, messages: list[dict[str, Any]], tools: Any, match: str
) -> None:
    """Malformed tools and tool messages raise InvalidInputError before anything is built."""
    renderer = recipe.get_renderer(name, tok)
    with pytest.raises(InvalidInputError, match=match):
        renderer.build_supervised_example(messages, "all_tokens", tools=tools)
    with pytest.raises(InvalidInputError, match=match):
        renderer.build_generation_prompt(messages, tools=tools)


def test_none_content_with_tool_calls_reads_as_empty(tok: Any) -> None:
    """OpenAI-style ``content: None`` beside tool calls renders as empty content."""
    renderer = recipe.get_renderer("qwen3", tok)
    call: dict[str, Any] = {"function": {"name": "f", "arguments": {}}}
    with_none: list[Any] = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
    ]
    with_empty: list[Any] = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
    ]
    a, _ = renderer.build_supervised_example(with_none)
    b, _ = renderer.build_supervised_example(with_empty)
    assert a.to_ints() == b.to_ints()


def test_llama3_1_options(tok: Any) -> None:
    """date_string and tools_in_user_message change the render and its chat_template_kwargs."""
    renderer = renderers.Llama31Renderer(
        tok, date_string="01 Jan 2030", tools_in_user_message=False
    )
    assert renderer.chat_template_kwargs == {
        "date_string": "01 Jan 2030",
        "tools_in_user_message": False,
    }
    messages: list[Message] = [{"role": "user", "content": "q"}]
    text = tok.decode(renderer.build_generation_prompt(messages, tools=[WEATHER]).to_ints())
    assert "Today Date: 01 Jan 2030\n\nYou have access to the following functions." in text
    assert text.endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    with pytest.raises(InvalidInputError, match="date_string"):
        renderers.Llama31Renderer(tok, date_string=None)  # type: ignore[arg-type]
