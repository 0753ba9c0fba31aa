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

Pure functions over a tokenizer: nothing here talks to a server. Any Hugging
Face tokenizer works (see :class:`Tokenizer`); ``transformers`` is never
imported by this package.
"""

from __future__ import annotations

from . import renderers as renderers
from ._base import Renderer as Renderer
from ._base import Weights as Weights
from ._datum import datum_from_model_input_weights as datum_from_model_input_weights
from ._messages import Message as Message
from ._messages import MessageLike as MessageLike
from ._messages import Tokenizer as Tokenizer
from ._messages import TrainOnWhat as TrainOnWhat
from ._registry import RENDERER_NAMES as RENDERER_NAMES
from ._registry import RendererName as RendererName
from ._registry import get_recommended_renderer_name as get_recommended_renderer_name
from ._registry import get_renderer as get_renderer
from ._templates import LLAMA3_CHAT_TEMPLATE as LLAMA3_CHAT_TEMPLATE
from ._templates import QWEN3_CHAT_TEMPLATE as QWEN3_CHAT_TEMPLATE
from ._templates import QWEN3_INSTRUCT_CHAT_TEMPLATE as QWEN3_INSTRUCT_CHAT_TEMPLATE
from ._templates import ROLE_COLON_CHAT_TEMPLATE as ROLE_COLON_CHAT_TEMPLATE

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
    # chat templates matching the renderers
    "LLAMA3_CHAT_TEMPLATE",
    "QWEN3_CHAT_TEMPLATE",
    "QWEN3_INSTRUCT_CHAT_TEMPLATE",
    "ROLE_COLON_CHAT_TEMPLATE",
]
