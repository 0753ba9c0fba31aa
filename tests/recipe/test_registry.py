"""Renderer lookup, recommended renderers per model, the public surface, bad input."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from mint_async import InvalidInputError
from mint_async import recipe as recipe
from mint_async.recipe import TrainOnWhat, renderers


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("Qwen/Qwen3-0.6B", "qwen3"),
        ("Qwen/Qwen3-8B", "qwen3"),
        ("Qwen/Qwen3-30B-A3B", "qwen3"),
        ("Qwen/Qwen3-8B-Base", "qwen3"),
        ("qwen3-0.6b", "qwen3"),
        ("Qwen/Qwen3-4B-Instruct-2507", "qwen3_instruct"),
        ("Qwen/Qwen3-235B-A22B-Instruct-2507", "qwen3_instruct"),
        ("mint-tiny", "qwen3"),
        ("mint-tiny-qwen3", "qwen3"),
        ("/tmp/models/mint-tiny-bpe/", "qwen3"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3"),
        ("meta-llama/Llama-3.2-1B", "llama3"),
        ("meta-llama/Meta-Llama-3-8B-Instruct", "llama3"),
        ("gpt2", "role_colon"),
        ("Qwen/Qwen2.5-7B", "role_colon"),
        ("", "role_colon"),
    ],
)
def test_recommended_renderer(model: str, expected: str) -> None:
    """Model families map to their chat format; unknown models to role_colon."""
    assert recipe.get_recommended_renderer_name(model) == expected


def test_recommended_renderer_rejects_non_strings() -> None:
    """A non-string model name is a clear error."""
    with pytest.raises(InvalidInputError, match="base_model"):
        recipe.get_recommended_renderer_name(None)  # type: ignore[arg-type]


def test_get_renderer_by_name(qwen_tokenizer: Any) -> None:
    """Every listed name gives a renderer of that name (through both import paths)."""
    for name in recipe.RENDERER_NAMES:
        tok = qwen_tokenizer
        if name == "llama3":
            continue  # needs the Llama 3 control tokens, which the tiny tokenizer also has
        renderer = renderers.get_renderer(name, tok)
        assert renderer.name == name and repr(renderer).endswith(f"(name={name!r})")
        assert type(recipe.get_renderer(name, tok)) is type(renderer)
    assert isinstance(renderers.get_renderer("llama3", qwen_tokenizer), renderers.Llama3Renderer)


def test_unknown_renderer_lists_valid_names(qwen_tokenizer: Any) -> None:
    """An unknown name raises InvalidInputError naming every valid renderer."""
    with pytest.raises(InvalidInputError) as info:
        renderers.get_renderer("chatml", qwen_tokenizer)
    for name in recipe.RENDERER_NAMES:
        assert name in str(info.value)


def test_train_on_what_accepts_strings_and_rejects_unknown(qwen_tokenizer: Any) -> None:
    """train_on_what takes enum members or their values; anything else lists the valid values."""
    renderer = recipe.get_renderer("qwen3", qwen_tokenizer)
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    _, by_enum = renderer.build_supervised_example(messages, TrainOnWhat.ALL_MESSAGES)
    _, by_str = renderer.build_supervised_example(messages, "all_messages")
    assert by_enum.tolist() == by_str.tolist()
    with pytest.raises(InvalidInputError, match="all_assistant_messages"):
        renderer.build_supervised_example(messages, "everything")


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty"),
        ("hello", "sequence of message mappings"),
        ({"role": "user", "content": "x"}, "sequence of message mappings"),
        (["hi"], r"messages\[0\] must be a mapping"),
        (
            [{"role": "robot", "content": "x"}],
            r"messages\[0\] has role 'robot'.*'system', 'user', 'assistant'",
        ),
        ([{"content": "x"}], "role None"),
        ([{"role": "user", "content": 3}], r"\['content'\] must be a str"),
        ([{"role": "user"}], r"\['content'\] must be a str"),
        (
            [{"role": "assistant", "content": "x", "reasoning_content": 1}],
            "reasoning_content'] must be a str or None",
        ),
    ],
)
def test_bad_messages(renderer: recipe.Renderer, messages: Any, match: str) -> None:
    """Malformed conversations raise InvalidInputError, for training and for sampling prompts."""
    with pytest.raises(InvalidInputError, match=match):
        renderer.build_supervised_example(messages)
    with pytest.raises(InvalidInputError, match=match):
        renderer.build_generation_prompt(messages)


@pytest.mark.parametrize(
    ("mode", "messages"),
    [
        (TrainOnWhat.LAST_ASSISTANT_MESSAGE, [{"role": "user", "content": "q"}]),
        (TrainOnWhat.ALL_ASSISTANT_MESSAGES, [{"role": "system", "content": "s"}]),
        (TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES, [{"role": "assistant", "content": "a"}]),
    ],
)
def test_selection_training_nothing_is_rejected(
    renderer: recipe.Renderer, mode: TrainOnWhat, messages: list[dict[str, str]]
) -> None:
    """A mode that selects no message (e.g. no assistant turn for the default) is an error."""
    with pytest.raises(InvalidInputError, match="selects no message"):
        renderer.build_supervised_example(messages, mode)


def test_reasoning_only_where_the_format_has_room(renderer: recipe.Renderer) -> None:
    """Non-thinking formats reject non-empty reasoning_content instead of dropping it silently."""
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_content": "because"},
    ]
    if renderer.thinking:
        renderer.build_supervised_example(messages)
    else:
        with pytest.raises(InvalidInputError, match="reasoning_content"):
            renderer.build_supervised_example(messages)
    # Empty or None reasoning is fine everywhere.
    for empty in ("", None):
        renderer.build_supervised_example(
            [messages[0], {**messages[1], "reasoning_content": empty}]
        )


def test_bad_prefill(renderer: recipe.Renderer) -> None:
    """A non-string prefill is rejected."""
    with pytest.raises(InvalidInputError, match="prefill"):
        renderer.build_generation_prompt([{"role": "user", "content": "q"}], prefill=3)  # type: ignore[arg-type]


def test_extra_message_keys_are_ignored(renderer: recipe.Renderer) -> None:
    """Keys other than role/content/reasoning_content do not change the rendering."""
    plain = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    extra = [{**m, "name": "x", "weight": 3} for m in plain]
    assert (
        renderer.build_supervised_example(extra)[0] == renderer.build_supervised_example(plain)[0]
    )


def test_public_all() -> None:
    """recipe and recipe.renderers export exactly documented, existing public names."""
    for module in (recipe, renderers):
        for name in module.__all__:
            obj = getattr(module, name)
            assert not name.startswith("_")
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert obj.__doc__, f"{module.__name__}.{name} has no docstring"


def test_recipe_imports_only_types_and_exceptions() -> None:
    """recipe's modules import only mint_async.types/_exceptions/_chat_templates, each other,
    numpy and stdlib."""
    allowed_absolute = {"__future__", "abc", "collections.abc", "dataclasses", "enum", "typing"}
    allowed_absolute |= {"json", "re"}  # tool specs and tool calls
    allowed_absolute |= {"numpy", "numpy.typing"}
    paths = sorted(Path(recipe.__file__).parent.glob("*.py"))
    assert len(paths) >= 9
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert {a.name for a in node.names} <= allowed_absolute, path.name
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    assert node.module in allowed_absolute, (path.name, node.module)
                elif node.level == 2:
                    assert node.module in ("types", "_exceptions", "_chat_templates"), (
                        path.name,
                        node.module,
                    )
                else:
                    assert node.level == 1, path.name
