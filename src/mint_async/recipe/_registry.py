"""Renderers by name, and which one a base model wants."""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

from .._exceptions import InvalidInputError
from ._base import Renderer
from ._llama3 import Llama3Renderer, Llama31Renderer
from ._messages import Tokenizer
from ._qwen3 import Qwen3DisableThinkingRenderer, Qwen3InstructRenderer, Qwen3Renderer
from ._role_colon import RoleColonRenderer

__all__ = ["RENDERER_NAMES", "RendererName", "get_recommended_renderer_name", "get_renderer"]

RendererName: TypeAlias = Literal[
    "qwen3", "qwen3_disable_thinking", "qwen3_instruct", "llama3", "llama3_1", "role_colon"
]
"""The names :func:`get_renderer` knows."""

RENDERER_NAMES: Final[tuple[RendererName, ...]] = get_args(RendererName)

_CLASSES: Final[dict[str, type[Renderer]]] = {
    cls.name: cls
    for cls in (
        Qwen3Renderer,
        Qwen3DisableThinkingRenderer,
        Qwen3InstructRenderer,
        Llama3Renderer,
        Llama31Renderer,
        RoleColonRenderer,
    )
}


def get_renderer(name: str, tokenizer: Tokenizer) -> Renderer:
    """The renderer called ``name``, encoding with ``tokenizer``.

    Example::

        renderer = get_renderer(get_recommended_renderer_name("Qwen/Qwen3-0.6B"), tokenizer)

    Raises InvalidInputError for an unknown name (the message lists the valid
    ones) or a tokenizer lacking the format's control tokens.
    """
    cls = _CLASSES.get(name)
    if cls is None:
        msg = f"unknown renderer {name!r}; valid renderers: {', '.join(RENDERER_NAMES)}"
        raise InvalidInputError(msg)
    return cls(tokenizer)


def get_recommended_renderer_name(base_model: str) -> RendererName:
    """The renderer for ``base_model``'s chat format (a Hugging Face id or local name).

    * Qwen3 models (``Qwen/Qwen3-0.6B``, ``Qwen3-8B-Base``...) → ``qwen3``;
      Qwen3 Instruct models (``Qwen/Qwen3-4B-Instruct-2507``), which never
      think → ``qwen3_instruct``;
    * the bundled tiny local model (names starting ``mint-tiny``) → ``qwen3``;
    * Llama 3.x models (``meta-llama/Llama-3.1-8B-Instruct``) → ``llama3``, the plain
      format without the date header (``llama3_1`` renders the 3.1/3.2/3.3 Instruct
      template exactly, tool calling included; choose it by name);
    * anything else → ``role_colon``, which needs no special tokens.
    """
    if not isinstance(base_model, str):
        msg = f"base_model must be a str, got {type(base_model).__name__}"
        raise InvalidInputError(msg)
    # "Qwen/Qwen3-0.6B" and "Qwen3-0.6B" name the same model; so may a local path.
    model = base_model.strip().rstrip("/").rsplit("/", 1)[-1].lower()
    if model.startswith("mint-tiny"):
        return "qwen3"
    if model.startswith("qwen3"):
        return "qwen3_instruct" if "instruct" in model else "qwen3"
    if model.startswith(("llama-3", "llama3", "meta-llama-3")):
        return "llama3"
    return "role_colon"
