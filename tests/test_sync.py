"""The blocking facade: the MinT SFT guide's code runs with only the import changed; also inside a running loop."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from mint_async.testing import LoopbackServer, serve_loopback


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    """A loopback server for the module."""
    with serve_loopback() as srv:
        yield srv


@pytest.fixture
def mint_env(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the MinT guide expects (MINT_API_KEY, MINT_BASE_URL)."""
    monkeypatch.setenv("MINT_API_KEY", server.api_key)
    monkeypatch.setenv("MINT_BASE_URL", server.base_url)


def run_sft_guide() -> list[float]:
    """The MinT SFT guide (sft-guide.txt), verbatim apart from the two import lines."""
    from mint_async import sync as mint
    from mint_async import types

    service_client = mint.ServiceClient()
    training_client = service_client.create_lora_training_client(
        base_model="Qwen/Qwen3-0.6B",
        rank=16,
        train_mlp=True,
        train_attn=True,
        train_unembed=True,
    )
    tokenizer = training_client.get_tokenizer()

    def process_sft_example(ex: dict[str, str], tokenizer: Any) -> types.Datum:
        # ex = {"question": "What is 3 * 4?"}
        a, b = map(int, re.findall(r"\d+", ex["question"]))
        answer = str(a * b)
        prompt = f"Question: {ex['question']}\nAnswer:"
        completion = f" {answer}"
        prompt_tokens = tokenizer.encode(prompt, add_special_tokens=True)
        completion_tokens = tokenizer.encode(completion, add_special_tokens=False)
        completion_tokens.append(tokenizer.eos_token_id)
        all_tokens = prompt_tokens + completion_tokens
        all_weights = [0] * len(prompt_tokens) + [1] * len(completion_tokens)
        # Shift for teacher-forcing: input = all_tokens[:-1], target = all_tokens[1:]
        input_tokens = all_tokens[:-1]
        target_tokens = all_tokens[1:]
        weights = all_weights[1:]
        return types.Datum(
            model_input=types.ModelInput.from_ints(tokens=input_tokens),
            loss_fn_inputs={"target_tokens": target_tokens, "weights": weights},
        )

    examples = [{"question": f"What is {a} * {b}?"} for a in range(2, 6) for b in range(2, 6)]
    batches = [
        [process_sft_example(ex, tokenizer) for ex in examples[i : i + 4]] for i in range(0, 16, 4)
    ]

    adam_params = types.AdamParams(
        learning_rate=5e-5,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
    )
    losses: list[float] = []
    for step, batch in enumerate(batches):
        result = training_client.forward_backward(batch, loss_fn="cross_entropy").result()
        training_client.optim_step(adam_params).result()
        print(f"Step {step}: loss={result.loss:.4f}")
        losses.append(result.loss)

    # After SFT training completes:
    checkpoint = training_client.save_weights_and_get_sampling_client(name="my-sft-v1")

    prompt_ids = tokenizer.encode("3 * 7 =")
    samples = checkpoint.sample(
        prompt=types.ModelInput.from_ints(prompt_ids),
        sampling_params=types.SamplingParams(max_tokens=16, temperature=0.7),
        num_samples=4,
    )
    for seq in samples.sequences:
        print(tokenizer.decode(seq.tokens))
    assert len(samples.sequences) == 4
    # The types docs' spelling works too: .result()
    assert samples.result().sequences == samples.sequences
    service_client.close()
    return losses


@pytest.mark.usefixtures("mint_env")
def test_sft_guide_runs_with_import_changed(capsys: pytest.CaptureFixture[str]) -> None:
    """The guide's loop trains (four steps with losses) and samples four sequences."""
    losses = run_sft_guide()
    assert len(losses) == 4 and all(loss > 0 for loss in losses)
    assert capsys.readouterr().out.count("Step ") == 4


@pytest.mark.usefixtures("mint_env")
def test_sync_facade_inside_a_running_event_loop() -> None:
    """Like Jupyter: the blocking API is called from a thread that runs an asyncio loop."""

    async def notebook_cell() -> int:
        from mint_async import sync as mint
        from mint_async import types

        with mint.ServiceClient() as svc:
            sc = svc.create_sampling_client(base_model="Qwen/Qwen3-0.6B")
            out = sc.sample(
                types.ModelInput.from_ints([1, 2, 3]), 2, types.SamplingParams(max_tokens=3)
            ).result(timeout=30)
            return len(out.sequences)

    assert asyncio.run(notebook_cell()) == 2


@pytest.mark.usefixtures("mint_env")
def test_sync_facade_on_trio_and_rest() -> None:
    """The portal can run trio; REST calls and futures' request ids work through it."""
    pytest.importorskip("trio", reason="the asyncio-only test session runs without trio")
    from mint_async import sync as mint
    from mint_async import types

    with mint.ServiceClient(backend="trio") as svc:
        tc = svc.create_lora_training_client(rank=4)
        fut = tc.save_state("s1")
        assert fut.request_id is not None
        path = fut.result().path
        rest = svc.create_rest_client()
        assert any(c.tinker_path == path for c in rest.list_checkpoints(tc.model_id).checkpoints)
        info = rest.get_weights_info_by_tinker_path(path)  # via the generic passthrough
        assert info.base_model == "Qwen/Qwen3-0.6B"
        assert tc.get_info().model_id == tc.model_id
        logprobs = tc.create_sampling_client(
            tc.save_weights_for_sampler("w").result().path
        ).compute_logprobs(types.ModelInput.from_ints([1, 2, 3]))
        assert logprobs[0] is None and len(logprobs) == 3


@pytest.mark.usefixtures("mint_env")
def test_closed_sync_client_refuses_work() -> None:
    """After close(), calls raise ClientClosedError; close() is idempotent."""
    import mint_async
    from mint_async import sync as mint

    svc = mint.ServiceClient()
    svc.close()
    svc.close()
    with pytest.raises(mint_async.ClientClosedError):
        svc.create_lora_training_client()
