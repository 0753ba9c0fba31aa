# The guide's code is kept verbatim, untyped parameters included:
# mypy: disable-error-code="type-arg, no-untyped-def"
# pyright: basic
"""The MinT SFT guide's example, verbatim except the two import lines.

``import mint`` / ``from mint import types`` become
``from mint_async import sync as mint`` / ``from mint_async import types``;
everything between the ``--- guide ---`` markers is the guide's code. The
scaffolding around it builds the ``batches`` the guide leaves to you and, when
``MINT_BASE_URL`` is not set, starts the embedded local server and points
``MINT_BASE_URL`` / ``MINT_API_KEY`` at it (so ``mint.ServiceClient()`` finds it).

The guide's learning rate (5e-5) suits Qwen3-0.6B on a real endpoint: on the
local tiny model the loss falls slowly. ``examples/sft_quickstart_async.py``
and ``mint-async demo`` use rates that suit the tiny model::

    python examples/sft_quickstart_sync.py --steps 10
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
from collections.abc import Generator

from mint_async import sync as mint  # the guide: import mint
from mint_async import types  # the guide: from mint import types
from mint_async.server import ServerConfig
from mint_async.testing import serve_loopback


@contextlib.contextmanager
def local_endpoint_unless_configured() -> Generator[None]:
    """Leave ``MINT_BASE_URL`` alone if set; else serve locally and set it (and the key)."""
    if os.environ.get("MINT_BASE_URL"):
        yield
        return
    backend = "torch" if importlib.util.find_spec("torch") else "synthetic"
    with serve_loopback(ServerConfig(backend=backend)) as server:
        saved = {k: os.environ.get(k) for k in ("MINT_BASE_URL", "MINT_API_KEY")}
        os.environ["MINT_BASE_URL"], os.environ["MINT_API_KEY"] = server.base_url, server.api_key
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


# --- guide: "Prompting Guide" ---
def process_sft_example(ex: dict, tokenizer) -> types.Datum:
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


# --- end guide ---


def quickstart(steps: int) -> None:
    """The guide's configuration, training loop and sampling, in order."""
    # --- guide: "Configuration" ---
    service_client = mint.ServiceClient()
    training_client = service_client.create_lora_training_client(
        base_model="Qwen/Qwen3-0.6B",
        rank=16,
        train_mlp=True,
        train_attn=True,
        train_unembed=True,
    )
    tokenizer = training_client.get_tokenizer()
    adam_params = types.AdamParams(learning_rate=5e-5)
    # --- end guide ---

    # Scaffolding: the guide's batches, `steps` times the whole multiplication table.
    examples = [{"question": f"What is {a} * {b}?"} for a in range(1, 10) for b in range(1, 10)]
    batches = [[process_sft_example(ex, tokenizer) for ex in examples]] * steps

    # --- guide: "All Parameters" (usage) ---
    adam_params = types.AdamParams(
        learning_rate=5e-5,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
    )
    for step, batch in enumerate(batches):
        result = training_client.forward_backward(batch, loss_fn="cross_entropy").result()
        training_client.optim_step(adam_params).result()
        print(f"Step {step}: loss={result.loss:.4f}")
    # --- end guide ---

    # --- guide: "Output Format" ---
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
    # --- end guide ---

    service_client.close()  # scaffolding: the guide's script ends here and exits


def main(argv: list[str] | None = None) -> None:
    """Run the guide's example against ``MINT_BASE_URL`` or a local server."""
    parser = argparse.ArgumentParser(description="The MinT SFT guide's example, sync facade")
    parser.add_argument("--steps", type=int, default=10, help="passes over the 81 questions")
    args = parser.parse_args(argv)
    with local_endpoint_unless_configured():
        quickstart(args.steps)


if __name__ == "__main__":
    main()
