"""ChatEnv: prompts rendered by a recipe renderer, its stop sequences sent, rewards on parsed messages."""

from __future__ import annotations

from typing import Any

import pytest

from mint_async import recipe, rl
from mint_async import types as t
from mint_async.recipe import Message

from .conftest import digits_run

pytestmark = pytest.mark.anyio


class TextSampler:
    """A SampleFn answering fixed texts (one per call), recording the params it was sent."""

    def __init__(self, tokenizer: Any, texts: list[str]) -> None:
        self._tokenizer = tokenizer
        self._texts = texts
        self.params: list[t.SamplingParams] = []
        self.prompts: list[list[int]] = []

    async def __call__(
        self, prompt: t.ModelInput, n: int, params: t.SamplingParams
    ) -> t.SampleResponse:
        self.params.append(params)
        self.prompts.append(prompt.to_ints())
        tokens = self._tokenizer.encode(self._texts[len(self.params) - 1], add_special_tokens=False)
        seq = t.SampledSequence(
            stop_reason="stop", tokens_np=tokens, logprobs_np=[-1.0] * len(tokens)
        )
        return t.SampleResponse(sequences=[seq] * n)


def says_four(message: Message, ok: bool) -> float:
    """1 for a properly ended answer containing 4."""
    return float(ok and "4" in str(message["content"]))


def tool_reply(conversation: list[Message]) -> dict[str, str] | None:
    """One follow-up user turn, then the episode ends."""
    return {"role": "user", "content": "sure?"} if len(conversation) == 1 else None


async def test_chat_env_renders_stops_and_parses() -> None:
    """The prompt is the renderer's generation prompt, its stop strings go out, the reward sees the message."""
    async with digits_run() as run:
        tokenizer = await run.tc.get_tokenizer()
    renderer = recipe.get_renderer("role_colon", tokenizer)
    messages = ({"role": "user", "content": "2+2?"},)
    builder = rl.ChatGroupBuilder(renderer, messages, says_four, group_size=2, max_tokens=9)
    sampler = TextSampler(tokenizer, [" 4\n\nUser:"])
    group = await rl.rollout_group(
        builder, sampler, t.SamplingParams(max_tokens=1), index=0, version=0
    )
    assert sampler.prompts == [renderer.build_generation_prompt(list(messages)).to_ints()]
    assert sampler.params[0].stop == renderer.get_stop_sequences()
    assert sampler.params[0].max_tokens == 9
    assert group.rewards == [1.0, 1.0]


async def test_multi_turn_chat_adds_replies_and_sums_rewards() -> None:
    """With reply=, the conversation continues with the next message and rewards add up."""
    async with digits_run() as run:
        tokenizer = await run.tc.get_tokenizer()
    renderer = recipe.get_renderer("role_colon", tokenizer)
    env = rl.ChatEnv(
        renderer, [{"role": "user", "content": "2+2?"}], says_four, reply=tool_reply, max_turns=3
    )
    sampler = TextSampler(tokenizer, [" 4\n\nUser:", " yes 4\n\nUser:"])

    class One:
        async def make_envs(self) -> list[rl.Env]:
            return [env]

    group = await rl.rollout_group(One(), sampler, t.SamplingParams(), index=0, version=0)
    assert group.rewards == [2.0]
    assert [m["content"] for m in env.conversation] == ["4", "yes 4"]
    assert len(sampler.prompts) == 2 and len(sampler.prompts[1]) > len(sampler.prompts[0])


WEATHER: recipe.ToolSpec = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def weather_result(conversation: list[Message]) -> dict[str, str] | None:
    """Answers the model's tool call with a tool result, once."""
    calls = conversation[-1].get("tool_calls") or []
    if len(conversation) == 1 and calls:
        return {"role": "tool", "content": '{"sky": "clear"}', "tool_call_id": "call_0"}
    return None


def called_then_answered(message: Message, ok: bool) -> float:
    """1 for a parsed tool call, 1 for a final answer mentioning the tool's result."""
    if message.get("tool_calls"):
        return 1.0
    return float(ok and "clear" in str(message["content"]))


async def test_chat_env_with_tools_renders_specs_and_sees_tool_calls() -> None:
    """tools= reach every prompt; the parsed tool call reaches reward_fn and reply."""
    async with digits_run() as run:
        tokenizer = await run.tc.get_tokenizer()
    renderer = recipe.get_renderer("qwen3_disable_thinking", tokenizer)
    messages = ({"role": "user", "content": "Weather in Paris?"},)
    builder = rl.ChatGroupBuilder(
        renderer,
        messages,
        called_then_answered,
        group_size=1,
        reply=weather_result,
        max_turns=2,
        tools=(WEATHER,),
    )
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    sampler = TextSampler(tokenizer, [call + "<|im_end|>", "It is clear.<|im_end|>"])
    group = await rl.rollout_group(builder, sampler, t.SamplingParams(), index=0, version=0)
    first = renderer.build_generation_prompt(list(messages), tools=[WEATHER]).to_ints()
    assert sampler.prompts[0] == first
    assert first != renderer.build_generation_prompt(list(messages)).to_ints()
    assert len(sampler.prompts) == 2
    second = tokenizer.decode(sampler.prompts[1])
    assert "<tool_response>" in second and '"sky": "clear"' in second  # the reply went in
    assert "get_weather" in second.split("<|im_start|>user")[0]  # the specs stay in the system turn
    assert group.rewards == [2.0]
