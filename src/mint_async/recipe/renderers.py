"""Chat renderers: conversations to tokens and loss weights for one model's chat format.

The layout follows the MinT SFT guide::

    import mint_async.recipe as recipe

    renderer = recipe.renderers.get_renderer(
        recipe.get_recommended_renderer_name("Qwen/Qwen3-0.6B"), tokenizer
    )
    model_input, weights = renderer.build_supervised_example(messages)

Renderers: ``qwen3``, ``qwen3_disable_thinking``, ``qwen3_instruct``, ``llama3``,
``llama3_1``, ``role_colon`` (see :data:`RENDERER_NAMES`). The Qwen3 renderers and
``llama3_1`` render tool definitions, tool calls and tool results (see :class:`ToolSpec`).
"""

from __future__ import annotations

from ._base import Renderer as Renderer
from ._base import Weights as Weights
from ._llama3 import Llama3Renderer as Llama3Renderer
from ._llama3 import Llama31Renderer as Llama31Renderer
from ._messages import Message as Message
from ._messages import MessageLike as MessageLike
from ._messages import Tokenizer as Tokenizer
from ._messages import ToolCall as ToolCall
from ._messages import ToolSpec as ToolSpec
from ._messages import TrainOnWhat as TrainOnWhat
from ._messages import UnparsedToolCall as UnparsedToolCall
from ._qwen3 import Qwen3DisableThinkingRenderer as Qwen3DisableThinkingRenderer
from ._qwen3 import Qwen3InstructRenderer as Qwen3InstructRenderer
from ._qwen3 import Qwen3Renderer as Qwen3Renderer
from ._registry import RENDERER_NAMES as RENDERER_NAMES
from ._registry import RendererName as RendererName
from ._registry import get_recommended_renderer_name as get_recommended_renderer_name
from ._registry import get_renderer as get_renderer
from ._role_colon import RoleColonRenderer as RoleColonRenderer

__all__ = [
    "get_renderer",
    "get_recommended_renderer_name",
    "RENDERER_NAMES",
    "RendererName",
    # renderers
    "Renderer",
    "Llama3Renderer",
    "Llama31Renderer",
    "Qwen3DisableThinkingRenderer",
    "Qwen3InstructRenderer",
    "Qwen3Renderer",
    "RoleColonRenderer",
    # messages and weights
    "Message",
    "MessageLike",
    "Tokenizer",
    "ToolCall",
    "ToolSpec",
    "TrainOnWhat",
    "UnparsedToolCall",
    "Weights",
]
