"""Recipes for building training data: chat renderers and datum builders.

Laid out as the MinT SFT guide uses ``mint.recipe``::

    import mint_async.recipe as recipe

    renderer = recipe.renderers.get_renderer(
        recipe.get_recommended_renderer_name("Qwen/Qwen3-0.6B"), tokenizer
    )
    messages = [
        {"role": "user", "content": "What is 3 * 4?"},
        {"role": "assistant", "content": "12"},
    ]
    model_input, weights = renderer.build_supervised_example(messages)  # prompt at weight 0
    datum = recipe.datum_from_model_input_weights(model_input, weights, max_length=2048)

Tool calling (Qwen3 renderers and ``llama3_1``): pass ``tools=`` to the build
methods, put ``tool_calls`` on assistant messages and results in ``"tool"``
messages; ``parse_response`` returns the calls a sample makes (see
docs/tool-calling.md)::

    prompt = renderer.build_generation_prompt(messages, tools=[weather_tool])
    message, ok = renderer.parse_response(sampled_tokens)
    for call in message.get("tool_calls", []):
        result = run(call["function"]["name"], json.loads(call["function"]["arguments"]))

Pure functions over a tokenizer: nothing here talks to a server. Any Hugging
Face tokenizer works (see :class:`Tokenizer`); ``transformers`` is never
imported by this package.
"""

from __future__ import annotations

from .._chat_templates import LLAMA3_1_CHAT_TEMPLATE as LLAMA3_1_CHAT_TEMPLATE
from .._chat_templates import LLAMA3_CHAT_TEMPLATE as LLAMA3_CHAT_TEMPLATE
from .._chat_templates import QWEN3_CHAT_TEMPLATE as QWEN3_CHAT_TEMPLATE
from .._chat_templates import QWEN3_INSTRUCT_CHAT_TEMPLATE as QWEN3_INSTRUCT_CHAT_TEMPLATE
from .._chat_templates import ROLE_COLON_CHAT_TEMPLATE as ROLE_COLON_CHAT_TEMPLATE
from . import renderers as renderers
from ._base import Renderer as Renderer
from ._base import Weights as Weights
from ._datum import datum_from_model_input_weights as datum_from_model_input_weights
from ._messages import FunctionSpec as FunctionSpec
from ._messages import Message as Message
from ._messages import MessageLike as MessageLike
from ._messages import Tokenizer as Tokenizer
from ._messages import ToolCall as ToolCall
from ._messages import ToolCallFunction as ToolCallFunction
from ._messages import ToolSpec as ToolSpec
from ._messages import ToolSpecLike as ToolSpecLike
from ._messages import TrainOnWhat as TrainOnWhat
from ._messages import UnparsedToolCall as UnparsedToolCall
from ._registry import RENDERER_NAMES as RENDERER_NAMES
from ._registry import RendererName as RendererName
from ._registry import get_recommended_renderer_name as get_recommended_renderer_name
from ._registry import get_renderer as get_renderer

__all__ = [
    "renderers",
    # the SFT guide's entry points
    "datum_from_model_input_weights",
    "get_recommended_renderer_name",
    "get_renderer",
    "TrainOnWhat",
    # types
    "Message",
    "MessageLike",
    "Renderer",
    "RendererName",
    "RENDERER_NAMES",
    "Tokenizer",
    "Weights",
    # tool calling
    "FunctionSpec",
    "ToolCall",
    "ToolCallFunction",
    "ToolSpec",
    "ToolSpecLike",
    "UnparsedToolCall",
    # chat templates matching the renderers
    "LLAMA3_1_CHAT_TEMPLATE",
    "LLAMA3_CHAT_TEMPLATE",
    "QWEN3_CHAT_TEMPLATE",
    "QWEN3_INSTRUCT_CHAT_TEMPLATE",
    "ROLE_COLON_CHAT_TEMPLATE",
]
