"""Fixtures: the tiny offline tokenizer built with each renderer's chat template."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from mint_async import recipe as recipe
from mint_async.server.backends import _tiny_tokenizer

TEMPLATES: dict[str, str] = {
    "qwen3": recipe.QWEN3_CHAT_TEMPLATE,
    "qwen3_instruct": recipe.QWEN3_INSTRUCT_CHAT_TEMPLATE,
    "llama3": recipe.LLAMA3_CHAT_TEMPLATE,
    "llama3_1": recipe.LLAMA3_1_CHAT_TEMPLATE,
    "role_colon": recipe.ROLE_COLON_CHAT_TEMPLATE,
}
"""Template key per tokenizer build; qwen3_disable_thinking shares qwen3's."""


def template_key(renderer_name: str) -> str:
    """Which tokenizer build carries the template of ``renderer_name``."""
    return (
        "qwen3"
        if renderer_name.startswith("qwen3") and renderer_name != "qwen3_instruct"
        else renderer_name
    )


@pytest.fixture(scope="session")
def tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny tokenizer per chat template, loaded once per test session."""
    root: Path = tmp_path_factory.mktemp("tok")
    return {
        key: _tiny_tokenizer.load_tokenizer(
            _tiny_tokenizer.build_tiny_tokenizer(root / key, chat_template=tpl)
        )
        for key, tpl in TEMPLATES.items()
    }


@pytest.fixture(scope="session")
def qwen_tokenizer(tokenizers: dict[str, Any]) -> Any:
    """The tiny tokenizer with its default (Qwen3) chat template."""
    return tokenizers["qwen3"]


@pytest.fixture(params=recipe.RENDERER_NAMES)
def renderer_name(request: pytest.FixtureRequest) -> str:
    """Each renderer name in turn."""
    name: str = request.param
    return name


@pytest.fixture
def renderer(renderer_name: str, tokenizers: dict[str, Any]) -> recipe.Renderer:
    """The renderer, on a tokenizer carrying that renderer's chat template."""
    return recipe.get_renderer(renderer_name, tokenizers[template_key(renderer_name)])


def template_tokens(
    renderer: recipe.Renderer,
    messages: Sequence[Mapping[str, object]],
    *,
    add_generation_prompt: bool = False,
) -> list[int]:
    """What ``apply_chat_template`` of the renderer's tokenizer gives for ``messages``."""
    tok: Any = renderer.tokenizer
    out: Any = tok.apply_chat_template(
        [dict(m) for m in messages],
        tokenize=True,
        add_generation_prompt=add_generation_prompt,
        **renderer.chat_template_kwargs,
    )
    # transformers 5 returns a BatchEncoding here, 4.x a plain list.
    ids: Any = out["input_ids"] if hasattr(out, "keys") else out
    return [int(t) for t in ids]


def template_text(
    renderer: recipe.Renderer,
    messages: Sequence[Mapping[str, object]],
    *,
    add_generation_prompt: bool = False,
) -> str:
    """The rendered template string for ``messages``."""
    tok: Any = renderer.tokenizer
    text: str = tok.apply_chat_template(
        [dict(m) for m in messages],
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
        **renderer.chat_template_kwargs,
    )
    return text
