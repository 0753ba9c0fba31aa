"""The torch backend's sampling: cached decoding equals brute force, seeds, filters, stops, prompt logprobs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mint_async import InvalidInputError
from mint_async.server.backends._bigram_sampling import (
    _filter as synthetic_filter,  # pyright: ignore[reportPrivateUsage]
)
from mint_async.server.backends._torch_model import from_numpy
from mint_async.server.backends._torch_sampling import filtered_probs
from mint_async.server.backends.torch import TorchBackend, TorchSampler

from .conftest import TOKENS, datum, direct_logprobs, new_model, spec

EOS = 2


@pytest.fixture(scope="module")
def sampler(backend: TorchBackend) -> TorchSampler:
    """A trained-looking run's frozen weights (random B, so it differs from the base)."""
    return backend.snapshot_sampler(new_model(backend, seed=5))


def _greedy_brute_force(module: torch.nn.Module, prompt: list[int], n: int) -> list[int]:
    """Argmax decoding with a full, uncached forward pass per token."""
    seq = list(prompt)
    for _ in range(n):
        with torch.no_grad():
            seq.append(int(module(input_ids=torch.tensor([seq])).logits[0, -1].argmax()))
    return seq[len(prompt) :]


def test_greedy_equals_uncached_argmax_and_logprobs_equal_forward(
    backend: TorchBackend, sampler: TorchSampler
) -> None:
    """Temperature 0 with the KV cache picks what full passes pick; logprobs are forward's at T=1."""
    prompt = TOKENS[:4]
    res = backend.sample(sampler, spec(temperature=0.0, max_tokens=10, stop_token_ids=()))
    seq = res.sequences[0]
    assert seq.stop_reason == "length"
    assert seq.tokens == _greedy_brute_force(sampler.module, prompt, 10)
    full = prompt + seq.tokens
    with torch.no_grad():
        expected = direct_logprobs(sampler.module, full[:-1], full[1:])[len(prompt) - 1 :].numpy()
    assert seq.logprobs is not None
    np.testing.assert_allclose(seq.logprobs, expected, atol=1e-5)


def test_sampled_logprobs_are_the_models_at_temperature_one(
    backend: TorchBackend, sampler: TorchSampler
) -> None:
    """Sampling at T=0.5 with filters still reports unfiltered T=1 logprobs of the chosen tokens."""
    res = backend.sample(sampler, spec(temperature=0.5, top_k=5, top_p=0.8, num_samples=2))
    for seq in res.sequences:
        full = TOKENS[:4] + seq.tokens
        with torch.no_grad():
            expected = direct_logprobs(sampler.module, full[:-1], full[1:])[3:].numpy()
        assert seq.logprobs is not None
        np.testing.assert_allclose(seq.logprobs, expected, atol=1e-5)


def test_a_seed_fixes_the_samples(backend: TorchBackend, sampler: TorchSampler) -> None:
    """Same seed, same samples; another seed, other samples; samples of one request differ."""
    s = spec(temperature=1.5, num_samples=4, max_tokens=8)
    a, b = backend.sample(sampler, s), backend.sample(sampler, s)
    c = backend.sample(sampler, spec(temperature=1.5, num_samples=4, max_tokens=8, seed=8))
    tokens = [x.tokens for x in a.sequences]
    assert tokens == [x.tokens for x in b.sequences]
    assert tokens != [x.tokens for x in c.sequences]
    assert len({tuple(x) for x in tokens}) > 1


def test_top_k_one_is_greedy(backend: TorchBackend, sampler: TorchSampler) -> None:
    """top_k=1 at any temperature picks the argmax."""
    greedy = backend.sample(sampler, spec(temperature=0.0))
    topk1 = backend.sample(sampler, spec(temperature=2.0, top_k=1, num_samples=2))
    assert all(x.tokens == greedy.sequences[0].tokens for x in topk1.sequences)


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(1.0, -1, 1.0), (0.7, 20, 1.0), (1.3, -1, 0.9), (0.5, 50, 0.6), (1.0, 10_000, 0.99)],
)
def test_filters_match_the_synthetic_backend(temperature: float, top_k: int, top_p: float) -> None:
    """Temperature, top-k and top-p keep and weigh tokens exactly as the synthetic backend does."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, (4, 386))
    ours = filtered_probs(from_numpy(logits), temperature, top_k, top_p).numpy()
    theirs = synthetic_filter(logits / temperature, top_k, top_p)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_draws_follow_the_filtered_distribution(
    backend: TorchBackend, sampler: TorchSampler
) -> None:
    """First tokens of 4,000 samples land only in the filtered support, with its frequencies."""
    s = spec(temperature=0.8, top_k=12, top_p=0.95, num_samples=4000, max_tokens=1, seed=3)
    res = backend.sample(sampler, s)
    with torch.no_grad():
        logits = sampler.module(input_ids=torch.tensor([TOKENS[:4]])).logits[0, -1].double()
    probs = filtered_probs(logits[None], 0.8, 12, 0.95)[0].numpy()
    counts = np.bincount([x.tokens[0] for x in res.sequences], minlength=probs.size) / 4000
    assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(probs))
    assert np.abs(counts - probs).max() < 0.03


def test_stop_tokens(backend: TorchBackend, sampler: TorchSampler) -> None:
    """A stop token ends a sequence (kept, reason stop); no stop list means EOS; () disables stops."""
    free = backend.sample(sampler, spec(temperature=0.0, max_tokens=6, stop_token_ids=()))
    tokens = free.sequences[0].tokens
    stopped = backend.sample(
        sampler, spec(temperature=0.0, max_tokens=6, stop_token_ids=(tokens[1],))
    )
    seq = stopped.sequences[0]
    first = tokens.index(tokens[1])
    assert seq.tokens == tokens[: first + 1] and seq.stop_reason == "stop"
    assert free.sequences[0].stop_reason == "length" and len(tokens) == 6
    # A model whose greedy continuation is EOS: its EOS row is 10x the argmax token's row
    # (whose logit is positive), under the default stop set (None = EOS).
    module = copy.deepcopy(sampler.module)
    head = module.get_submodule("lm_head")
    assert isinstance(head, torch.nn.Linear)
    with torch.no_grad():
        head.weight[EOS] = 10 * head.weight[tokens[0]]
    eos_sampler = TorchSampler(base_model=sampler.base_model, module=module)
    default = backend.sample(eos_sampler, spec(temperature=0.0, stop_token_ids=None))
    assert default.sequences[0].tokens == [EOS] and default.sequences[0].stop_reason == "stop"
    disabled = backend.sample(eos_sampler, spec(temperature=0.0, stop_token_ids=(), max_tokens=3))
    assert disabled.sequences[0].tokens[0] == EOS and len(disabled.sequences[0].tokens) == 3
    assert disabled.sequences[0].stop_reason == "length"


def test_stop_strings(backend: TorchBackend, sampler: TorchSampler) -> None:
    """A stop string ends a sequence at the token that completes it."""
    from tokenizers import Tokenizer

    free = backend.sample(sampler, spec(temperature=0.0, max_tokens=6, stop_token_ids=()))
    tokens = free.sequences[0].tokens
    tok = Tokenizer.from_file(str(backend.models()[0].tokenizer_id) + "/tokenizer.json")
    text = tok.decode(tokens[:3])
    target = text[-1]
    res = backend.sample(
        sampler, spec(temperature=0.0, max_tokens=6, stop_token_ids=(), stop_strings=(target,))
    )
    seq = res.sequences[0]
    assert seq.stop_reason == "stop" and len(seq.tokens) <= 3
    assert target in tok.decode(seq.tokens) and target not in tok.decode(seq.tokens[:-1])


def test_prompt_logprobs_and_top_k(backend: TorchBackend, sampler: TorchSampler) -> None:
    """Prompt logprobs equal forward's (first None); top-k rows are sorted and hold the argmax."""
    res = backend.sample(sampler, spec(prompt_logprobs=True, topk_prompt_logprobs=3, max_tokens=1))
    prompt = TOKENS[:4]
    with torch.no_grad():
        expected = direct_logprobs(sampler.module, prompt[:-1], prompt[1:]).numpy()
        logp = torch.log_softmax(sampler.module(input_ids=torch.tensor([prompt])).logits[0], -1)
    assert res.prompt_logprobs is not None and res.prompt_logprobs[0] is None
    np.testing.assert_allclose(
        np.array(res.prompt_logprobs[1:], dtype=np.float64), expected, atol=1e-5
    )
    topk = res.topk_prompt_logprobs
    assert topk is not None and topk[0] is None and len(topk) == len(prompt)
    for position, row in enumerate(topk[1:]):
        assert row is not None and len(row) == 3
        values = [v for _, v in row]
        assert values == sorted(values, reverse=True)
        assert row[0][0] == int(logp[position].argmax())
        assert row[0][1] == pytest.approx(float(logp[position].max()), abs=1e-5)
    plain = backend.sample(sampler, spec(max_tokens=1))
    assert plain.prompt_logprobs is None and plain.topk_prompt_logprobs is None


def test_shapes_and_zero_max_tokens(backend: TorchBackend, sampler: TorchSampler) -> None:
    """num_samples sequences of at most max_tokens; max_tokens=0 gives empty 'length' sequences."""
    res = backend.sample(sampler, spec(num_samples=3, max_tokens=5, stop_token_ids=()))
    assert [len(x.tokens) for x in res.sequences] == [5, 5, 5]
    empty = backend.sample(sampler, spec(num_samples=2, max_tokens=0))
    assert [(x.tokens, x.stop_reason) for x in empty.sequences] == [([], "length")] * 2


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "message"),
    [
        ([], 4, "empty"),
        ([1, 2, 999], 4, "outside the vocabulary"),
        ([1] * 2000, 100, "context"),
    ],
)
def test_bad_requests(
    backend: TorchBackend, sampler: TorchSampler, prompt: list[int], max_tokens: int, message: str
) -> None:
    """Empty, out-of-vocabulary or too-long prompts are user errors."""
    with pytest.raises(InvalidInputError, match=message):
        backend.sample(
            sampler, spec(prompt=np.array(prompt, dtype=np.int64), max_tokens=max_tokens)
        )


def test_sampling_matches_training_forward(backend: TorchBackend) -> None:
    """Prompt logprobs of a snapshot equal the run's forward logprobs (merged vs adapter weights)."""
    model = new_model(backend, seed=9)
    out = backend.forward_backward(model, [datum()], "cross_entropy", {}, backward=False)
    res = backend.sample(
        backend.snapshot_sampler(model),
        spec(prompt=np.array(TOKENS, dtype=np.int64), prompt_logprobs=True, max_tokens=1),
    )
    assert res.prompt_logprobs is not None
    np.testing.assert_allclose(
        np.array(res.prompt_logprobs[1:], dtype=np.float64),
        out.loss_fn_outputs[0]["logprobs"].to_numpy(),
        atol=1e-5,
    )


# Hand-computed filter cases. Convention (protocol.md §8.5 only names the fields, MinT's
# docs call top_p the "nucleus sampling threshold"; both backends implement nucleus
# sampling as Holtzman et al., Hugging Face and vLLM do): top_p keeps the smallest set
# of most likely tokens whose mass reaches top_p, so the token that crosses the threshold
# is kept and the most likely token always is. top_k keeps every token whose logit is at
# least the k-th largest: tokens tied at the k-th place are all kept (the cut is by value,
# never by position), so a tie can leave more than k tokens and never depends on order.
# At a boundary (top_p=.8 = .5 + .3) float rounding of the softmax would decide (.5 + .3
# sums just below .8 in float64); both backends allow a slack of TOP_P_SLACK, so a mass
# that reaches top_p up to rounding counts as reaching it.
_PROBS = np.array([[0.5, 0.3, 0.15, 0.05]])


def _both_filters(probs: np.ndarray, top_k: int, top_p: float) -> list[np.ndarray]:
    """Filtered probabilities of the torch and the synthetic backend for these probabilities."""
    logits = np.log(probs)
    torch_p = filtered_probs(from_numpy(logits), 1.0, top_k, top_p).numpy()
    return [torch_p, synthetic_filter(logits, top_k, top_p)]


@pytest.mark.parametrize(
    ("top_k", "top_p", "expected"),
    [
        (-1, 0.75, [0.625, 0.375, 0.0, 0.0]),  # .5 < .75 <= .5 + .3: the crossing token stays
        (-1, 0.8, [0.625, 0.375, 0.0, 0.0]),  # .5 + .3 reaches .8 exactly: two, not three
        (-1, 0.95, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0]),  # the same at the third step
        (-1, 0.45, [1.0, 0.0, 0.0, 0.0]),  # the top token alone reaches .45
        (-1, 1e-9, [1.0, 0.0, 0.0, 0.0]),  # below the slack: still the top token
        (-1, 0.5, [1.0, 0.0, 0.0, 0.0]),  # mass exactly .5 reaches .5: "reaches" is >=
        (-1, 0.9, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0]),
        (-1, 1.0, [0.5, 0.3, 0.15, 0.05]),  # off
        (2, 1.0, [0.625, 0.375, 0.0, 0.0]),
        (1, 1.0, [1.0, 0.0, 0.0, 0.0]),
        (4, 1.0, [0.5, 0.3, 0.15, 0.05]),  # k >= vocab: off
        (0, 1.0, [0.5, 0.3, 0.15, 0.05]),  # k <= 0: off, as -1
        (3, 0.75, [0.625, 0.375, 0.0, 0.0]),  # top-k first, then top-p on the renormalised rest
        # top-k first: after k=3 the top token has .5/.95 > .52, alone enough (without
        # top-k, .5 < .52 would keep two).
        (3, 0.52, [1.0, 0.0, 0.0, 0.0]),
        (-1, 0.52, [0.625, 0.375, 0.0, 0.0]),
    ],
)
def test_filters_keep_the_hand_computed_tokens(
    top_k: int, top_p: float, expected: list[float]
) -> None:
    """[.5, .3, .15, .05] filtered by top_k/top_p gives the hand-computed distribution, both backends."""
    for probs in _both_filters(_PROBS, top_k, top_p):
        np.testing.assert_allclose(probs[0], expected, atol=1e-12)


def test_top_k_keeps_every_token_tied_at_the_kth_place() -> None:
    """top_k=2 over [.4, .2, .2, .2] keeps all three tokens tied for second, in either backend."""
    for probs in (np.array([[0.4, 0.2, 0.2, 0.2]]), np.array([[0.2, 0.2, 0.4, 0.2]])):
        for out in _both_filters(probs, 2, 1.0):
            np.testing.assert_allclose(out, probs, atol=1e-12)
    # Below the tie the cut is ordinary: [.4, .3, .15, .15] with k=2 keeps two.
    for out in _both_filters(np.array([[0.4, 0.3, 0.15, 0.15]]), 2, 1.0):
        np.testing.assert_allclose(out[0], [0.4 / 0.7, 0.3 / 0.7, 0.0, 0.0], atol=1e-12)
