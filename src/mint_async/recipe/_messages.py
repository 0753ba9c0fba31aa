"""Chat messages, the tokenizer a renderer needs, and which tokens to train on."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Literal, NotRequired, Protocol, TypeAlias, TypedDict, cast

from .._exceptions import InvalidInputError

__all__ = [
    "FunctionSpec",
    "Message",
    "MessageLike",
    "Tokenizer",
    "ToolCall",
    "ToolCallFunction",
    "ToolSpec",
    "ToolSpecLike",
    "TrainOnWhat",
    "UnparsedToolCall",
    "check_messages",
    "check_tools",
    "coerce_train_on_what",
]


class ToolCallFunction(TypedDict):
    """The function a tool call invokes: its name and its arguments.

    ``arguments`` is a JSON object, either as text (what OpenAI-style APIs and
    :meth:`Renderer.parse_response` give) or as a mapping (what Hugging Face
    chat templates are usually fed). Both render the same way.
    """

    name: str
    arguments: str | Mapping[str, object]


class ToolCall(TypedDict):
    """One call an assistant message makes, in the OpenAI / Hugging Face shape.

    ``id`` and ``type`` are carried along but no chat template renders them.

    Example::

        {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    """

    function: ToolCallFunction
    id: NotRequired[str]
    type: NotRequired[Literal["function"]]


class UnparsedToolCall(TypedDict):
    """A tool call in a sampled response that could not be parsed.

    ``raw_text`` is the call's text as sampled (e.g. a ``<tool_call>`` block
    holding broken JSON) and ``error`` says what is wrong with it. RL code can
    reward or penalise it; nothing is raised.
    """

    raw_text: str
    error: str


class FunctionSpec(TypedDict):
    """A function the model may call: name, description and JSON-schema parameters."""

    name: str
    description: NotRequired[str]
    parameters: NotRequired[Mapping[str, object]]


class ToolSpec(TypedDict):
    """A tool definition as chat templates take it (``apply_chat_template(tools=...)``).

    Rendered into the prompt exactly as given (key order kept), as JSON.

    Example::

        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    """

    type: Literal["function"]
    function: FunctionSpec


ToolSpecLike: TypeAlias = Mapping[str, object]
"""What renderers accept for a tool definition: a :class:`ToolSpec` or any JSON-able mapping."""


class Message(TypedDict):
    """One chat turn, in the shape Hugging Face chat templates read.

    ``reasoning_content`` is the model's thinking (the Qwen3 format shows it in a
    ``<think>`` block); formats without a place for it reject a non-empty one.
    An assistant message may carry ``tool_calls``; a ``"tool"`` message holds a
    tool's result (``tool_call_id`` and ``name`` are kept but not rendered by the
    Qwen3 and Llama 3 templates). ``unparsed_tool_calls`` only appears in what
    :meth:`Renderer.parse_response` returns.

    Example::

        {"role": "assistant", "content": "12", "reasoning_content": "3 * 4 = 12"}
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "add", "arguments": {"a": 3, "b": 4}}}
        ]}
        {"role": "tool", "content": "7", "tool_call_id": "call_0"}
    """

    role: str
    content: str
    reasoning_content: NotRequired[str | None]
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]
    unparsed_tool_calls: NotRequired[list[UnparsedToolCall]]


MessageLike: TypeAlias = Mapping[str, object]
"""What renderers accept for a message: a :class:`Message`, or any mapping of the same keys.

Plain ``dict[str, str]`` values (what a JSON dataset gives) type-check without a cast;
the keys are checked at run time. Unknown keys are ignored.
"""


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer a renderer uses.

    Any ``transformers`` tokenizer fits; so does a small stand-in with these
    three methods. Control tokens (``<|im_end|>``, ``<|eot_id|>``) must be added
    tokens, so that ``encode`` never splits them and ``convert_tokens_to_ids``
    knows them. ``decode`` must return a ``str`` for a flat list of ids.
    """

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``; renderers always pass ``add_special_tokens=False``."""
        ...

    def decode(self, token_ids: list[int], /) -> object:
        """The text of ``token_ids``, control tokens included."""
        ...

    def convert_tokens_to_ids(self, tokens: str, /) -> object:
        """The id of one token given as its string (``None`` or an unk id if unknown)."""
        ...


class TrainOnWhat(StrEnum):
    """Which tokens of a conversation get loss weight 1 (the rest get 0).

    A rendered message is a *header* (the role marker, e.g. ``<|im_start|>user\\n``),
    a *body* (the message's text and its end-of-turn token, e.g. ``Hi<|im_end|>``;
    for Qwen3 assistant turns also the ``<think>`` block) and a *separator* (format
    glue after the end of turn, e.g. the ``\\n`` after ``<|im_end|>``). A conversation
    may start with a prefix (``<|begin_of_text|>``). Headers, separators and the
    prefix are only trained with :attr:`ALL_TOKENS`.

    Strings are accepted wherever a TrainOnWhat is: ``"all_assistant_messages"``.
    """

    LAST_ASSISTANT_MESSAGE = "last_assistant_message"
    """The body of the last assistant message only (the default; SFT on a final answer)."""

    ALL_ASSISTANT_MESSAGES = "all_assistant_messages"
    """The bodies of every assistant message (multi-turn SFT)."""

    ALL_MESSAGES = "all_messages"
    """The bodies of every message, whatever its role."""

    ALL_TOKENS = "all_tokens"
    """Every token: prefix, headers, bodies and separators (continued pre-training)."""

    ALL_USER_AND_SYSTEM_MESSAGES = "all_user_and_system_messages"
    """The bodies of user and system messages (e.g. to train a user simulator)."""


def coerce_train_on_what(value: TrainOnWhat | str) -> TrainOnWhat:
    """``value`` as a TrainOnWhat; a clear error for anything else."""
    try:
        return TrainOnWhat(value)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in TrainOnWhat)
        msg = f"unknown train_on_what {value!r}; valid values: {valid}"
        raise InvalidInputError(msg) from None


def check_messages(
    messages: Sequence[MessageLike], roles: Sequence[str], *, thinking: bool, tools: bool = False
) -> list[Message]:
    """Validated copies of ``messages``: known roles, ``str`` content, at least one message.

    ``thinking`` says whether the format can show ``reasoning_content``; if not, a
    non-empty one is an error rather than silently dropped. ``tools`` says
    whether the format renders ``tool_calls``; if not, a message with some is an
    error. An assistant message with tool calls may have ``content`` None (as
    OpenAI-style messages do), read as ``""``.
    """
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        msg = f"messages must be a sequence of message mappings, got {type(messages).__name__}"
        raise InvalidInputError(msg)
    if not messages:
        msg = "messages is empty; a conversation needs at least one message"
        raise InvalidInputError(msg)
    out: list[Message] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            msg = (
                f"messages[{i}] must be a mapping with 'role' and 'content', got {type(m).__name__}"
            )
            raise InvalidInputError(msg)
        role, content, reasoning = m.get("role"), m.get("content"), m.get("reasoning_content")
        if not isinstance(role, str) or role not in roles:
            valid = ", ".join(repr(r) for r in roles)
            msg = f"messages[{i}] has role {role!r}; this renderer accepts {valid}"
            raise InvalidInputError(msg)
        calls = _check_tool_calls(i, role, m.get("tool_calls"), tools=tools)
        if content is None and calls:
            content = ""
        if not isinstance(content, str):
            msg = f"messages[{i}]['content'] must be a str, got {type(content).__name__}"
            raise InvalidInputError(msg)
        if reasoning is not None and not isinstance(reasoning, str):
            msg = f"messages[{i}]['reasoning_content'] must be a str or None, got {type(reasoning).__name__}"
            raise InvalidInputError(msg)
        if reasoning and not thinking:
            msg = (
                f"messages[{i}] has reasoning_content, which this format cannot show; "
                "use a thinking renderer (qwen3) or put the reasoning into the content"
            )
            raise InvalidInputError(msg)
        message: Message = {"role": role, "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = calls
        call_id, name = _optional_str(i, m, "tool_call_id"), _optional_str(i, m, "name")
        if call_id is not None:
            message["tool_call_id"] = call_id
        if name is not None:
            message["name"] = name
        out.append(message)
    return out


def _optional_str(i: int, message: MessageLike, key: str) -> str | None:
    """``message[key]`` if it is a str, None if absent; an error for anything else."""
    value = message.get(key)
    if value is not None and not isinstance(value, str):
        msg = f"messages[{i}][{key!r}] must be a str, got {type(value).__name__}"
        raise InvalidInputError(msg)
    return value


def _check_tool_calls(i: int, role: str, value: object, *, tools: bool) -> list[ToolCall]:
    """Validated copies of a message's ``tool_calls`` (None or an empty list: no calls)."""
    if value is None:
        return []
    kind = type(value).__name__
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        msg = f"messages[{i}]['tool_calls'] must be a list of tool calls, got {kind}"
        raise InvalidInputError(msg)
    if not value:
        return []
    if role != "assistant":
        msg = f"messages[{i}] has tool_calls but role {role!r}; only assistant messages make calls"
        raise InvalidInputError(msg)
    if not tools:
        msg = (
            f"messages[{i}] has tool_calls, which this format cannot show; use a renderer "
            "with a tool format (qwen3, qwen3_disable_thinking, qwen3_instruct, llama3_1)"
        )
        raise InvalidInputError(msg)
    calls: list[ToolCall] = []
    for j, item in enumerate(cast("Sequence[object]", value)):
        where = f"messages[{i}]['tool_calls'][{j}]"
        if not isinstance(item, Mapping):
            msg = f"{where} must be a mapping, got {type(item).__name__}"
            raise InvalidInputError(msg)
        call = cast("Mapping[str, object]", item)
        # Hugging Face templates accept the function's fields directly on the call, too.
        function_value = call.get("function", call)
        if not isinstance(function_value, Mapping):
            msg = f"{where}['function'] must be a mapping, got {type(function_value).__name__}"
            raise InvalidInputError(msg)
        function = cast("Mapping[str, object]", function_value)
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not name:
            msg = f"{where} needs a non-empty str function name, got {name!r}"
            raise InvalidInputError(msg)
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments)
            except ValueError as exc:
                msg = f"{where}['arguments'] is not valid JSON: {exc}"
                raise InvalidInputError(msg) from None
            if not isinstance(parsed, dict):
                msg = f"{where}['arguments'] must be a JSON object, got {arguments!r}"
                raise InvalidInputError(msg)
        elif isinstance(arguments, Mapping):
            arguments = cast("Mapping[str, object]", arguments)
            try:
                json.dumps(arguments)
            except (TypeError, ValueError) as exc:
                msg = f"{where}['arguments'] is not JSON-serializable: {exc}"
                raise InvalidInputError(msg) from None
        else:
            msg = f"{where}['arguments'] must be a JSON object (str or mapping), got {type(arguments).__name__}"
            raise InvalidInputError(msg)
        out: ToolCall = {"function": {"name": name, "arguments": arguments}}
        call_id = call.get("id")
        if isinstance(call_id, str):
            out["id"] = call_id
        if call.get("type") == "function":
            out["type"] = "function"
        calls.append(out)
    return calls


def check_tools(
    tools: Sequence[ToolSpecLike] | None, *, supported: bool
) -> list[dict[str, object]] | None:
    """Validated copies of ``tools`` (None: no tools given), each JSON-serializable.

    ``supported`` says whether the format renders tool definitions at all.
    """
    if tools is None:
        return None
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        msg = f"tools must be a sequence of tool definitions, got {type(tools).__name__}"
        raise InvalidInputError(msg)
    if not supported:
        msg = (
            "this renderer has no tool format; use qwen3, qwen3_disable_thinking, "
            "qwen3_instruct or llama3_1 for tool calling"
        )
        raise InvalidInputError(msg)
    out: list[dict[str, object]] = []
    for k, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            msg = f"tools[{k}] must be a mapping (a JSON-schema function spec), got {type(tool).__name__}"
            raise InvalidInputError(msg)
        try:
            json.dumps(tool)
        except (TypeError, ValueError) as exc:
            msg = f"tools[{k}] is not JSON-serializable: {exc}"
            raise InvalidInputError(msg) from None
        out.append(dict(tool))
    return out
