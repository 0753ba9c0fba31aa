# The guide's code is kept verbatim, untyped parameters included:
# mypy: disable-error-code="type-arg, no-untyped-def"
# pyright: basic
"""The MinT SFT guide's example: its code, with ``from mint_async import sync as mint``.

``import mint`` / ``from mint import types`` become
``from mint_async import sync as mint`` / ``from mint_async import types``;
everything between the ``--- guide ---`` markers is the guide's code, but for
the lines marked ``# guide: ...`` (which say what the guide has):

* the loss is printed per trained token: ``result.loss`` is a sum over the
  batch's tokens (about 300 here), so the guide's ``loss=1778.1`` is
  ``5.9`` per token, the figure that compares across batch sizes;
* the learning rate is a parameter: the guide's 5e-5 suits Qwen3-0.6B on a real
  endpoint, while the local tiny model needs 3e-3 to learn in a few seconds;
* samples are printed with control characters escaped: a model that has not
  learned much samples arbitrary tokens of the byte-level vocabulary.

The scaffolding around it builds the ``batches`` the guide leaves to you and,
when ``MINT_BASE_URL`` is not set, starts the embedded local server and points
``MINT_BASE_URL`` / ``MINT_API_KEY`` at it (so ``mint.ServiceClient()`` finds it).
It then asks the trained model three questions in the training's format (the
guide samples ``"3 * 7 ="``, a prompt it never trained on).

Locally the defaults are 120 steps at 3e-3 (about 12 s on a quiet 2-core
machine, most answers right; ``mint-async demo`` learns the whole table);
against ``MINT_BASE_URL`` the guide's 10 steps at 5e-5::

    python examples/sft_quickstart_sync.py
    python examples/sft_quickstart_sync.py --steps 10 --lr 5e-5   # the guide's settings
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
from collections.abc import Generator, Sequence

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


def trained_tokens(batch: Sequence[types.Datum]) -> float:
    """The number of target tokens with weight: what ``result.loss`` sums over."""
    return sum(float(d.loss_fn_inputs["weights"].to_numpy().sum()) for d in batch)


def readable(text: str) -> str:
    """``text`` with control characters escaped (``\\x05``), so every sample prints on its line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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


def quickstart(steps: int, learning_rate: float) -> None:
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
    adam_params = types.AdamParams(learning_rate=learning_rate)  # guide: 5e-5
    # --- end guide ---

    # Scaffolding: the guide's batches, `steps` times the whole multiplication table.
    examples = [{"question": f"What is {a} * {b}?"} for a in range(1, 10) for b in range(1, 10)]
    batches = [[process_sft_example(ex, tokenizer) for ex in examples]] * steps

    # --- guide: "All Parameters" (usage) ---
    adam_params = types.AdamParams(
        learning_rate=learning_rate,  # guide: 5e-5
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
    )
    for step, batch in enumerate(batches):
        result = training_client.forward_backward(batch, loss_fn="cross_entropy").result()
        training_client.optim_step(adam_params).result()
        # guide: print(f"Step {step}: loss={result.loss:.4f}"), the sum over the batch's tokens
        print(f"Step {step}: loss={result.loss / trained_tokens(batch):.4f} per token")
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
        print(readable(tokenizer.decode(seq.tokens)))  # guide: print(tokenizer.decode(...))
    # --- end guide ---

    # Scaffolding: "3 * 7 =" is not the training's format, so the guide's samples
    # are loose; the training's own prompts show what the model learned.
    print(
        "(above: samples of the guide's prompt '3 * 7 =', unlike any training prompt, at "
        f"temperature 0.7; {tokenizer.eos_token} ends a sequence, \ufffd is a partial character)"
    )
    print("Asked in the training's format (greedy):")
    greedy = types.SamplingParams(max_tokens=8, temperature=0.0, stop=[tokenizer.eos_token_id])
    for a, b in [(3, 7), (6, 8), (9, 9)]:
        prompt = tokenizer.encode(f"Question: What is {a} * {b}?\nAnswer:")
        answer = checkpoint.sample(
            prompt=types.ModelInput.from_ints(prompt), sampling_params=greedy, num_samples=1
        ).sequences[0]
        text = tokenizer.decode(answer.tokens, skip_special_tokens=True).strip()
        print(f"  What is {a} * {b}?  expected {a * b:>2}, answered {readable(text)!r}")

    service_client.close()  # scaffolding: the guide's script ends here and exits


def main(argv: list[str] | None = None) -> None:
    """Run the guide's example against ``MINT_BASE_URL`` or a local server."""
    parser = argparse.ArgumentParser(description="The MinT SFT guide's example, sync facade")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="passes over the 81 questions (default: 120 locally, 10 against MINT_BASE_URL)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: 3e-3 locally, the guide's 5e-5 against MINT_BASE_URL)",
    )
    args = parser.parse_args(argv)
    remote = bool(os.environ.get("MINT_BASE_URL"))
    steps = args.steps if args.steps is not None else 10 if remote else 120
    lr = args.lr if args.lr is not None else 5e-5 if remote else 3e-3
    with local_endpoint_unless_configured():
        quickstart(steps, lr)


if __name__ == "__main__":
    main()
