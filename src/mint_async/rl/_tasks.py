"""A task the local server's tiny models learn in a few steps: say digits.

Used by ``examples/rl_async.py``, ``benchmarks/bench_rl.py`` and the tests; a
template for your own :class:`~mint_async.rl.RLDataset`. Everything pickles, so
it runs in process pools and on Ray workers too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._env import EnvGroupBuilder, TokenGroupBuilder

__all__ = ["DigitShare", "DigitsDataset"]


@dataclass(frozen=True, slots=True)
class DigitShare:
    """Reward: the share of sampled tokens that are digit tokens (0 for an empty sample)."""

    digits: frozenset[int]

    def __call__(self, tokens: list[int]) -> float:
        if not tokens:
            return 0.0
        return sum(tok in self.digits for tok in tokens) / len(tokens)


@dataclass(frozen=True, slots=True)
class DigitsDataset:
    """Prompt ``i`` is ``Say a number: {i % prompts}``; groups of ``group_size`` samples."""

    prompts: tuple[tuple[int, ...], ...]
    reward: DigitShare
    group_size: int
    max_tokens: int | None = None

    @classmethod
    def from_tokenizer(
        cls, tokenizer: Any, *, prompts: int, group_size: int, max_tokens: int | None = None
    ) -> DigitsDataset:
        """Build the prompts and the digit token ids with ``tokenizer``."""
        digits = frozenset(tokenizer.encode(str(d), add_special_tokens=False)[0] for d in range(10))
        encoded = tuple(
            tuple(tokenizer.encode(f"Say a number: {i}", add_special_tokens=False))
            for i in range(prompts)
        )
        return cls(encoded, DigitShare(digits), group_size, max_tokens)

    def group_builder(self, index: int) -> EnvGroupBuilder:
        """The group at data position ``index``."""
        prompt = self.prompts[index % len(self.prompts)]
        return TokenGroupBuilder(prompt, self.reward, self.group_size, self.max_tokens)
