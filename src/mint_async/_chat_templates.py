"""Jinja chat templates that render exactly what each ``mint_async.recipe`` renderer tokenizes.

A module of the shared layer (not of ``recipe``) because the local server's tiny
tokenizer carries the Qwen3 template too; ``mint_async.recipe`` re-exports them all.

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
    "LLAMA3_1_CHAT_TEMPLATE",
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
    empty think block into the generation prompt. Tools (JSON-schema specs)
    are listed in the system turn; tool calls follow the assistant content as
    <tool_call> blocks; consecutive tool messages share one user turn. -#}
{%- if tools -%}
    {{- '<|im_start|>system\n' -}}
    {%- if messages[0]['role'] == 'system' -%}
        {{- messages[0]['content'] + '\n\n' -}}
    {%- endif -%}
    {{- '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
    {%- for tool in tools -%}
        {{- '\n' + (tool | tojson) -}}
    {%- endfor -%}
    {{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' -}}
{%- endif -%}
{%- set ns = namespace(last_user=messages | length - 1) -%}
{%- for m in messages -%}
    {%- if m['role'] == 'user' and not (m['content'].startswith('<tool_response>') and m['content'].endswith('</tool_response>')) -%}
        {%- set ns.last_user = loop.index0 -%}
    {%- endif -%}
{%- endfor -%}
{%- for m in messages -%}
    {%- if m['role'] == 'system' and loop.first and tools -%}
    {%- elif m['role'] == 'assistant' -%}
        {%- set content = m['content'] or '' -%}
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
        {%- for call in m.get('tool_calls') or [] -%}
            {%- if not loop.first or content -%}
                {{- '\n' -}}
            {%- endif -%}
            {%- set f = call['function'] if call['function'] is defined else call -%}
            {{- '<tool_call>\n{"name": "' + f['name'] + '", "arguments": ' -}}
            {{- f['arguments'] if f['arguments'] is string else (f['arguments'] | tojson) -}}
            {{- '}\n</tool_call>' -}}
        {%- endfor -%}
        {{- '<|im_end|>\n' -}}
    {%- elif m['role'] == 'tool' -%}
        {%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}
            {{- '<|im_start|>user' -}}
        {%- endif -%}
        {{- '\n<tool_response>\n' + m['content'] + '\n</tool_response>' -}}
        {%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}
            {{- '<|im_end|>\n' -}}
        {%- endif -%}
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
{#- Qwen3 Instruct-2507 models never think: plain ChatML turns, with Qwen3's
    tool format (tools in the system turn, <tool_call> blocks after the
    assistant content, tool results as <tool_response> blocks in a user turn). -#}
{%- if tools -%}
    {{- '<|im_start|>system\n' -}}
    {%- if messages[0]['role'] == 'system' -%}
        {{- messages[0]['content'] + '\n\n' -}}
    {%- endif -%}
    {{- '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
    {%- for tool in tools -%}
        {{- '\n' + (tool | tojson) -}}
    {%- endfor -%}
    {{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' -}}
{%- endif -%}
{%- for m in messages -%}
    {%- if m['role'] == 'system' and loop.first and tools -%}
    {%- elif m['role'] == 'assistant' -%}
        {%- set content = m['content'] or '' -%}
        {{- '<|im_start|>assistant\n' + content -}}
        {%- for call in m.get('tool_calls') or [] -%}
            {%- if not loop.first or content -%}
                {{- '\n' -}}
            {%- endif -%}
            {%- set f = call['function'] if call['function'] is defined else call -%}
            {{- '<tool_call>\n{"name": "' + f['name'] + '", "arguments": ' -}}
            {{- f['arguments'] if f['arguments'] is string else (f['arguments'] | tojson) -}}
            {{- '}\n</tool_call>' -}}
        {%- endfor -%}
        {{- '<|im_end|>\n' -}}
    {%- elif m['role'] == 'tool' -%}
        {%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}
            {{- '<|im_start|>user' -}}
        {%- endif -%}
        {{- '\n<tool_response>\n' + m['content'] + '\n</tool_response>' -}}
        {%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}
            {{- '<|im_end|>\n' -}}
        {%- endif -%}
    {%- else -%}
        {{- '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
"""
"""Plain ChatML turns without think blocks, Qwen3's tool format (renderer ``qwen3_instruct``)."""

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

LLAMA3_1_CHAT_TEMPLATE: Final = r"""
{#- The Llama 3.1 / 3.2 / 3.3 Instruct format with Meta's JSON tool calling.
    A system turn always comes first: "Environment: ipython" when tools are
    given, the knowledge and today's dates (date_string, default
    "26 Jul 2024"), then the system message. Tools (indented JSON with Meta's
    instructions) go into the first user message, or into the system turn with
    tools_in_user_message=false. A tool call renders as
    {"name": ..., "parameters": ...} and nothing else; tool results are
    ipython turns holding their content as a JSON string. -#}
{%- set date = date_string if date_string is defined else '26 Jul 2024' -%}
{%- set in_user = tools_in_user_message if tools_in_user_message is defined else true -%}
{%- set has_tools = tools is defined and tools is not none -%}
{%- set fmt = 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.\n\n' -%}
{%- set listing = namespace(text='') -%}
{%- for t in (tools if has_tools else []) -%}
    {%- set listing.text = listing.text + (t | tojson(indent=4)) + '\n\n' -%}
{%- endfor -%}
{{- '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n' -}}
{%- if has_tools -%}
    {{- 'Environment: ipython\n' -}}
{%- endif -%}
{{- 'Cutting Knowledge Date: December 2023\nToday Date: ' + date + '\n\n' -}}
{%- if has_tools and not in_user -%}
    {{- 'You have access to the following functions. To call a function, please respond with JSON for a function call.' + fmt + listing.text -}}
{%- endif -%}
{%- if messages[0]['role'] == 'system' -%}
    {{- messages[0]['content'] | trim -}}
{%- endif -%}
{{- '<|eot_id|>' -}}
{%- set first_user = 1 if messages[0]['role'] == 'system' else 0 -%}
{%- for m in messages -%}
    {%- if loop.first and m['role'] == 'system' -%}
    {%- elif loop.index0 == first_user and has_tools and in_user -%}
        {{- '<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n' -}}
        {{- fmt + listing.text + (m['content'] | trim) + '<|eot_id|>' -}}
    {%- elif m.get('tool_calls') -%}
        {%- set call = m['tool_calls'][0] -%}
        {%- set f = call['function'] if call['function'] is defined else call -%}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "' + f['name'] + '", "parameters": ' -}}
        {{- f['arguments'] if f['arguments'] is string else (f['arguments'] | tojson) -}}
        {{- '}<|eot_id|>' -}}
    {%- elif m['role'] == 'tool' or m['role'] == 'ipython' -%}
        {{- '<|start_header_id|>ipython<|end_header_id|>\n\n' + (m['content'] | tojson) + '<|eot_id|>' -}}
    {%- else -%}
        {{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + (m['content'] | trim) + '<|eot_id|>' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
{%- endif -%}
"""
"""The Llama 3.1/3.2/3.3 Instruct format with JSON tool calling (renderer ``llama3_1``).

Equal to Meta's template for custom (JSON) tools; tool-call arguments given as
text are written as they are (Meta's template would quote them as a JSON string).
"""

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
