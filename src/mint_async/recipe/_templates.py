"""Jinja chat templates that render exactly what each renderer tokenizes.

Each renderer's token output equals ``tokenizer.apply_chat_template`` with its
template (the Qwen3 one is the real Qwen3 format, so a Qwen3 tokenizer's own
template gives the same tokens). Installing one on a tokenizer that has no chat
template (a base model's) keeps Hugging Face tooling and the renderer in step::

    tokenizer.chat_template = recipe.ROLE_COLON_CHAT_TEMPLATE

Every tag trims the whitespace around it (``{%-``/``-%}``), so the line breaks
below are layout only; ``'\\n'`` inside a string literal is a real newline.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "LLAMA3_CHAT_TEMPLATE",
    "QWEN3_CHAT_TEMPLATE",
    "QWEN3_INSTRUCT_CHAT_TEMPLATE",
    "ROLE_COLON_CHAT_TEMPLATE",
]

QWEN3_CHAT_TEMPLATE: Final = r"""
{#- The Qwen3 (ChatML) format with thinking. Turns are
    <|im_start|>role\n ... <|im_end|>\n. An assistant turn after the last user
    query shows its reasoning in a <think> block, and the final turn always
    has one (empty when there is no reasoning); earlier assistant turns drop
    their reasoning. As in Qwen's template, a user message that is wholly a
    <tool_response>...</tool_response> block is a tool result, not a query.
    Reasoning comes from `reasoning_content`, or else from a
    <think>...</think> prefix of the content. enable_thinking=false puts an
    empty think block into the generation prompt. -#}
{%- set ns = namespace(last_user=messages | length - 1) -%}
{%- for m in messages -%}
    {%- if m['role'] == 'user' and not (m['content'].startswith('<tool_response>') and m['content'].endswith('</tool_response>')) -%}
        {%- set ns.last_user = loop.index0 -%}
    {%- endif -%}
{%- endfor -%}
{%- for m in messages -%}
    {%- if m['role'] == 'assistant' -%}
        {%- set content = m['content'] -%}
        {%- set reasoning = '' -%}
        {%- if m.get('reasoning_content') is string -%}
            {%- set reasoning = m['reasoning_content'] -%}
        {%- elif '</think>' in content -%}
            {%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') -%}
            {%- set content = content.split('</think>')[-1].lstrip('\n') -%}
        {%- endif -%}
        {{- '<|im_start|>assistant\n' -}}
        {%- if loop.index0 > ns.last_user and (loop.last or reasoning) -%}
            {{- '<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') -}}
        {%- else -%}
            {{- content -}}
        {%- endif -%}
        {{- '<|im_end|>\n' -}}
    {%- else -%}
        {{- '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
    {%- if enable_thinking is defined and enable_thinking is false -%}
        {{- '<think>\n\n</think>\n\n' -}}
    {%- endif -%}
{%- endif -%}
"""
"""The Qwen3 chat format (renderers ``qwen3`` and, with ``enable_thinking=False``, ``qwen3_disable_thinking``)."""

QWEN3_INSTRUCT_CHAT_TEMPLATE: Final = r"""
{#- Qwen3 Instruct-2507 models never think: plain ChatML turns. -#}
{%- for m in messages -%}
    {{- '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
"""
"""Plain ChatML turns without think blocks (renderer ``qwen3_instruct``)."""

LLAMA3_CHAT_TEMPLATE: Final = r"""
{#- The Llama 3 format: one <|begin_of_text|>, then per turn a role header and
    the trimmed content closed by <|eot_id|>. -#}
{{- '<|begin_of_text|>' -}}
{%- for m in messages -%}
    {{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + (m['content'] | trim) + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
{%- endif -%}
"""
"""The Llama 3 chat format, without Llama 3.1's default "Cutting Knowledge Date" system turn (renderer ``llama3``)."""

ROLE_COLON_CHAT_TEMPLATE: Final = r"""
{#- Plain text for any model: the BOS token if the tokenizer has one, then
    `Role: content` turns each closed by a blank line. -#}
{%- if bos_token -%}{{- bos_token -}}{%- endif -%}
{%- for m in messages -%}
    {{- (m['role'] | capitalize) + ': ' + m['content'] + '\n\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- 'Assistant:' -}}
{%- endif -%}
"""
"""``User: ...`` / ``Assistant: ...`` turns separated by blank lines (renderer ``role_colon``)."""
