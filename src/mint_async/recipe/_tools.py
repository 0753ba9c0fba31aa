"""Tool definitions and tool calls as the Qwen3 and Llama 3.1 chat templates write them, and back.

Rendering follows the published templates character for character: tool specs
and arguments are JSON as Hugging Face's ``tojson`` filter writes it
(``json.dumps(..., ensure_ascii=False)``: ``", "`` and ``": "`` separators,
keys in the order given, non-ASCII text kept). Parsing never raises: a call
that cannot be read becomes an :class:`UnparsedToolCall` carrying its text and
the reason, so an RL loop can score it instead of crashing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Final, cast

from ._messages import ToolCall, UnparsedToolCall

__all__ = [
    "arguments_object",
    "arguments_text",
    "llama3_tool_call_text",
    "llama3_tools_text",
    "parse_llama3_tool_call",
    "parse_qwen3_tool_calls",
    "qwen3_tool_call_text",
    "qwen3_tools_text",
    "tojson",
]

QWEN3_TOOLS_HEAD: Final = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
QWEN3_TOOLS_TAIL: Final = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
LLAMA3_TOOLS_IN_USER: Final = (
    "Given the following functions, please respond with a JSON for a function call "
    "with its proper arguments that best answers the given prompt.\n\n"
)
LLAMA3_TOOLS_IN_SYSTEM: Final = (
    "You have access to the following functions. To call a function, please respond "
    "with JSON for a function call."
)
LLAMA3_TOOLS_FORMAT: Final = (
    'Respond in the format {"name": function name, "parameters": dictionary of argument '
    "name and its value}.Do not use variables.\n\n"
)

_QWEN3_BLOCK: Final = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


def tojson(value: object, *, indent: int | None = None) -> str:
    """``value`` as the chat templates' ``tojson`` filter writes it."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


def arguments_text(arguments: str | Mapping[str, object]) -> str:
    """Arguments as Qwen3's template writes them: text verbatim, a mapping as JSON."""
    return arguments if isinstance(arguments, str) else tojson(arguments)


def arguments_object(arguments: str | Mapping[str, object]) -> object:
    """Arguments as a JSON value (text is parsed; callers validated it is an object)."""
    return json.loads(arguments) if isinstance(arguments, str) else arguments


def qwen3_tools_text(tools: Sequence[Mapping[str, object]]) -> str:
    """The tools section of Qwen3's system turn (without the turn's markers)."""
    return QWEN3_TOOLS_HEAD + "".join("\n" + tojson(t) for t in tools) + QWEN3_TOOLS_TAIL


def qwen3_tool_call_text(content: str, calls: Sequence[ToolCall]) -> str:
    """The ``<tool_call>`` blocks after an assistant ``content``, as Qwen3's template writes them.

    A call is preceded by a newline unless it is the first and the content is
    empty (the template tests the content before stripping leading newlines).
    """
    parts: list[str] = []
    for j, call in enumerate(calls):
        if j > 0 or content:
            parts.append("\n")
        function = call["function"]
        parts.append(
            '<tool_call>\n{"name": "'
            + function["name"]
            + '", "arguments": '
            + arguments_text(function["arguments"])
            + "}\n</tool_call>"
        )
    return "".join(parts)


def llama3_tools_text(tools: Sequence[Mapping[str, object]]) -> str:
    """Each tool as Llama 3.1's template lists them: indented JSON and a blank line."""
    return "".join(tojson(t, indent=4) + "\n\n" for t in tools)


def llama3_tool_call_text(call: ToolCall) -> str:
    """A tool call as Llama 3.1's JSON tool format writes it: ``{"name": ..., "parameters": ...}``."""
    function = call["function"]
    return (
        '{"name": "'
        + function["name"]
        + '", "parameters": '
        + tojson(arguments_object(function["arguments"]))
        + "}"
    )


def parse_qwen3_tool_calls(text: str) -> tuple[str, list[ToolCall], list[UnparsedToolCall]]:
    """``(content, calls, unparsed)`` of an assistant text holding ``<tool_call>`` blocks.

    The content is the text before the first block, less the newline the
    template puts between content and calls; any other text outside the blocks
    is appended to it, so nothing sampled is lost. ``arguments`` keep the exact
    JSON text the model wrote, so the parsed message renders back to the same
    tokens.
    """
    start = text.find("<tool_call>")
    if start < 0:
        return text, [], []
    content = text[:start].removesuffix("\n")
    calls: list[ToolCall] = []
    unparsed: list[UnparsedToolCall] = []
    stray: list[str] = []
    pos = start
    for match in _QWEN3_BLOCK.finditer(text, start):
        stray.append(text[pos : match.start()])
        pos = match.end()
        call, error = _qwen3_call(match.group(1))
        if call is None:
            unparsed.append({"raw_text": match.group(0), "error": error})
        else:
            calls.append(call)
    rest = text[pos:]
    cut = rest.find("<tool_call>")
    if cut >= 0:
        stray.append(rest[:cut])
        unparsed.append({"raw_text": rest[cut:], "error": "<tool_call> is never closed"})
    else:
        stray.append(rest)
    extra = "\n".join(s.strip() for s in stray if s.strip())
    if extra:
        content = f"{content}\n{extra}" if content else extra
    return content, calls, unparsed


def _qwen3_call(body: str) -> tuple[ToolCall | None, str]:
    """One ``<tool_call>`` block's JSON as a call, or None and why not."""
    value, error = _json_object(body.strip())
    if value is None:
        return None, error
    name, arguments = value.get("name"), value.get("arguments")
    if not isinstance(name, str) or not name:
        return None, "the tool call has no string 'name'"
    if isinstance(arguments, str):
        # Some models write the arguments as a JSON string holding the object.
        inner, error = _json_object(arguments)
        if inner is None:
            return None, f"'arguments' is a string that is not a JSON object ({error})"
        return {"type": "function", "function": {"name": name, "arguments": arguments}}, ""
    if not isinstance(arguments, dict):
        return None, "the tool call has no JSON-object 'arguments'"
    arguments = cast("dict[str, object]", arguments)
    # Keep the model's own spelling of the arguments when the block has the template's shape.
    stripped = body.strip()
    head = '{"name": "' + name + '", "arguments": '
    raw = tojson(arguments)
    if stripped.startswith(head) and stripped.endswith("}"):
        candidate = stripped[len(head) : -1]
        parsed, _ = _json_object(candidate)
        if parsed == arguments:
            raw = candidate
    return {"type": "function", "function": {"name": name, "arguments": raw}}, ""


def parse_llama3_tool_call(text: str) -> tuple[ToolCall | None, UnparsedToolCall | None]:
    """The JSON tool call an assistant text is, if it is one.

    A text is a call attempt when (after whitespace) it starts with
    ``{"name"`` or it followed ``<|python_tag|>``; an attempt that does not
    parse to ``{"name": str, "parameters": object}`` (``"arguments"`` is read
    too) is returned as unparsed. Any other text is no call: ``(None, None)``.
    """
    stripped = text.strip()
    tagged = stripped.startswith("<|python_tag|>")
    stripped = stripped.removeprefix("<|python_tag|>").strip()
    if not tagged and not re.match(r'\{\s*"name"', stripped):
        return None, None
    value, error = _json_object(stripped)
    if value is None:
        return None, {"raw_text": text, "error": error}
    name = value.get("name")
    arguments = value.get("parameters", value.get("arguments"))
    if not isinstance(name, str) or not name:
        return None, {"raw_text": text, "error": "the tool call has no string 'name'"}
    if not isinstance(arguments, dict):
        return None, {"raw_text": text, "error": "the tool call has no JSON-object 'parameters'"}
    arguments = cast("dict[str, object]", arguments)
    return {"type": "function", "function": {"name": name, "arguments": tojson(arguments)}}, None


def _json_object(text: str) -> tuple[dict[str, object] | None, str]:
    """``text`` parsed as a JSON object, or None and the parse error."""
    try:
        value: object = json.loads(text)
    except ValueError as exc:
        return None, f"invalid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return cast("dict[str, object]", value), ""
