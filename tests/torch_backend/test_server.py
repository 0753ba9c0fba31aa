"""The torch backend behind the local server, driven by the async client (asyncio and trio)."""

from __future__ import annotations

import pytest

import mint_async
from mint_async import types as t
from mint_async.server import ServerConfig
from mint_async.testing import serve_in_process

pytestmark = pytest.mark.anyio

PROMPT = "Question: What is 3 * 4?\nAnswer:"


async def test_train_save_load_and_sample_through_the_client() -> None:
    """Loss falls; checkpoints reload to identical logprobs; a sampler checkpoint samples like the live weights."""
    async with (
        serve_in_process(ServerConfig(backend="torch")) as server,
        mint_async.ServiceClient(
            base_url=server.base_url, api_key=server.api_key, transport=server.transport
        ) as svc,
    ):
        tc = await svc.create_lora_training_client("Qwen/Qwen3-0.6B", rank=8, seed=1)
        info = await tc.get_info()
        assert info.model_data.arch == "Qwen3ForCausalLM"
        tokenizer = await tc.get_tokenizer()
        prompt = tokenizer.encode(PROMPT)
        answer = [*tokenizer.encode(" 12"), tokenizer.eos_token_id]
        tokens = prompt + answer
        weights = [0.0] * (len(prompt) - 1) + [1.0] * len(answer)
        batch = [
            t.Datum(
                model_input=t.ModelInput.from_ints(tokens[:-1]),
                loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights},
            )
        ]
        losses: list[float] = []
        for _ in range(12):
            fb = await tc.forward_backward(batch, "cross_entropy")
            opt = await tc.optim_step(t.AdamParams(learning_rate=1e-2))
            losses.append((await fb).loss)
            await opt
        assert losses[-1] < 0.25 * losses[0]

        state = (await (await tc.save_state("ckpt"))).path
        resumed = await svc.create_training_client_from_state_with_optimizer(state)
        mine = (await (await tc.forward(batch))).loss_fn_outputs[0]["logprobs"].to_numpy()
        theirs = (await (await resumed.forward(batch))).loss_fn_outputs[0]["logprobs"].to_numpy()
        assert (mine == theirs).all()

        greedy = t.SamplingParams(max_tokens=6, temperature=0.0)
        sampler_path = (await (await tc.save_weights_for_sampler("s1"))).path
        live = await tc.save_weights_and_get_sampling_client()
        loaded = await svc.create_sampling_client(model_path=sampler_path)
        a = await live.sample(t.ModelInput.from_ints(prompt), 1, greedy)
        b = await loaded.sample(t.ModelInput.from_ints(prompt), 1, greedy)
        assert a.sequences[0].tokens == b.sequences[0].tokens
        assert a.sequences[0].logprobs == b.sequences[0].logprobs
        assert tokenizer.decode(a.sequences[0].tokens) == " 12<|im_end|>"


async def test_user_errors_fail_the_request_not_the_server() -> None:
    """An out-of-vocabulary token fails that request with a user error; the run keeps working."""
    async with (
        serve_in_process(ServerConfig(backend="torch")) as server,
        mint_async.ServiceClient(
            base_url=server.base_url, api_key=server.api_key, transport=server.transport
        ) as svc,
    ):
        tc = await svc.create_lora_training_client("mint-tiny-qwen3", rank=4)
        bad = t.Datum(
            model_input=t.ModelInput.from_ints([1, 2, 3]),
            loss_fn_inputs={"target_tokens": [2, 3, 10_000]},
        )
        with pytest.raises(mint_async.RequestFailedError) as info:
            await (await tc.forward_backward([bad], "cross_entropy"))
        assert info.value.category == "user"
        good = t.Datum(
            model_input=t.ModelInput.from_ints([1, 2, 3]),
            loss_fn_inputs={"target_tokens": [2, 3, 4]},
        )
        assert (await (await tc.forward_backward([good], "cross_entropy"))).loss > 0
