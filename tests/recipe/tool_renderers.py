"""The renderer for each differential variant (see tool_cases.VARIANTS)."""

from __future__ import annotations

from typing import Any

from mint_async import recipe
from mint_async.recipe import renderers


def make_renderer(variant: str, tokenizer: Any) -> recipe.Renderer:
    """The renderer that must match ``variant``'s published template and kwargs."""
    match variant:
        case "llama3_1_tools_in_system":
            return renderers.Llama31Renderer(tokenizer, tools_in_user_message=False)
        case "llama3_1_dated":
            return renderers.Llama31Renderer(tokenizer, date_string="05 Dec 2026")
        case _:
            return recipe.get_renderer(variant, tokenizer)
