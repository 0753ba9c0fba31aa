"""Stop tokens and stop strings through asample: the sequence is cut at the stop, stop_reason "stop"."""

from __future__ import annotations

from typing import Any

import pytest
from tokenizers import Tokenizer

from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer

from ._support import Api, Json, running, sample_body

pytestmark = pytest.mark.anyio

MAX_TOKENS = 16


async def greedy(api: Api, sampler: str, seq_id: int, stop: Any) -> Json:
    """The one sequence of a greedy (temperature 0) sample with ``stop``."""
    body = sample_body(sampler, seq_id, max_tokens=MAX_TOKENS, temperature=0.0, stop=stop)
    answer = await api.run("asample", body)
    assert answer["type"] == "sample", answer
    sequence: Json = answer["sequences"][0]
    return sequence


async def test_stop_token_cuts_the_sequence() -> None:
    """stop=[token] ends the sequence at that token's first occurrence (included) with stop_reason stop."""
    async with running() as (_, api):
        sampler = await api.sampler(await api.session())
        free = await greedy(api, sampler, 0, [])  # [] disables every stop, EOS included
        assert free["stop_reason"] == "length" and len(free["tokens"]) == MAX_TOKENS
        tokens: list[int] = free["tokens"]
        stop_at = tokens[2]
        expected = tokens[: tokens.index(stop_at) + 1]
        cut = await greedy(api, sampler, 1, [stop_at])
        assert cut["stop_reason"] == "stop" and cut["tokens"] == expected
        assert len(cut["logprobs"]) == len(expected)
        assert cut["logprobs"] == pytest.approx(free["logprobs"][: len(expected)])


async def test_stop_string_cuts_the_sequence() -> None:
    """stop=[text] ends the sequence at the first token whose decoded prefix contains the text."""
    decode = Tokenizer.from_file(str(ensure_tiny_tokenizer() / "tokenizer.json")).decode
    async with running() as (_, api):
        sampler = await api.sampler(await api.session())
        free: list[int] = (await greedy(api, sampler, 0, None))["tokens"]
        text = decode(free)
        # A printable ASCII character the model emits (byte-level pieces may decode to U+FFFD).
        needle = next(c for c in text if c.isascii() and c.isalnum())
        n = next(i for i in range(1, len(free) + 1) if needle in decode(free[:i]))
        assert n < len(free), "the needle should come before the end"
        for seq_id, stop in ((1, [needle]), (2, needle)):  # a list of strings, or one string
            cut = await greedy(api, sampler, seq_id, stop)
            assert cut["stop_reason"] == "stop" and cut["tokens"] == free[:n], stop
