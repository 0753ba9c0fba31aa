"""Parameters: Adam, LoRA, sampling, wandb (protocol §8.5, §8.7, §8.8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from ._base import MAX_LORA_RANK, Stop, WireStruct, check_finite, check_int, invalid, sent


class AdamParams(WireStruct, kw_only=True):
    """AdamW hyper-parameters of one ``optim_step``; all six fields are always sent.

    ``betas=(beta1, beta2)`` (the MinT docs' spelling) is accepted too; it sets
    ``beta1``/``beta2`` and is not sent itself.

    Example::

        AdamParams(learning_rate=5e-5, betas=(0.9, 0.999), eps=1e-8)
    """

    learning_rate: float = sent(1e-4)
    beta1: float = sent(0.9)
    beta2: float = sent(0.95)
    eps: float = sent(1e-12)
    weight_decay: float = sent(0.0)
    grad_clip_norm: float = sent(0.0)
    betas: tuple[float, float] | None = None
    """Input-only spelling of (beta1, beta2); always None after construction."""

    def __post_init__(self) -> None:
        if self.betas is not None:
            betas = tuple(self.betas)
            if len(betas) != 2:
                msg = f"betas must be a pair (beta1, beta2), got {self.betas!r}"
                raise invalid(msg)
            self.beta1, self.beta2 = float(betas[0]), float(betas[1])
            self.betas = None
        for name in ("learning_rate", "beta1", "beta2", "eps", "weight_decay", "grad_clip_norm"):
            value = getattr(self, name)
            check_finite(name, value)
            if value < 0:
                msg = f"{name} must be >= 0, got {value}"
                raise invalid(msg)
        for name in ("beta1", "beta2"):
            if getattr(self, name) >= 1:
                msg = f"{name} must be in [0, 1), got {getattr(self, name)}"
                raise invalid(msg)


class LoraConfig(WireStruct, kw_only=True):
    """LoRA adapter configuration of a new training run."""

    rank: int
    seed: int | None = None
    train_unembed: bool = sent(True)
    train_mlp: bool = sent(True)
    train_attn: bool = sent(True)

    def __post_init__(self) -> None:
        check_int("rank", self.rank, minimum=1)
        if self.rank > MAX_LORA_RANK:
            msg = f"rank must be at most {MAX_LORA_RANK} on MinT, got {self.rank}"
            raise invalid(msg)
        if self.seed is not None:
            check_int("seed", self.seed)
        if not (self.train_unembed or self.train_mlp or self.train_attn):
            msg = "at least one of train_unembed, train_mlp, train_attn must be True"
            raise invalid(msg)


class SamplingParams(WireStruct, kw_only=True):
    """How to sample: ``temperature``, ``top_k``, ``top_p`` are always sent.

    ``stop`` takes strings or token ids; ``stop_token_ids=[...]`` (the MinT docs'
    spelling) is merged into ``stop`` and not sent itself.

    Example::

        SamplingParams(max_tokens=16, temperature=0.0, stop_token_ids=[eos_id])
    """

    max_tokens: int | None = None
    seed: int | None = None
    stop: Stop | None = None
    temperature: float = sent(1.0)
    top_k: int = sent(-1)
    top_p: float = sent(1.0)
    stop_token_ids: list[int] | None = None
    """Input-only spelling of token stops; always None after construction."""

    def __post_init__(self) -> None:
        if self.max_tokens is not None:
            check_int("max_tokens", self.max_tokens, minimum=0)
        if self.seed is not None:
            check_int("seed", self.seed, minimum=0)
            if self.seed >= 2**64:
                msg = "seed must fit in 64 bits"
                raise invalid(msg)
        check_finite("temperature", self.temperature)
        if self.temperature < 0:
            msg = f"temperature must be >= 0, got {self.temperature}"
            raise invalid(msg)
        check_int("top_k", self.top_k)
        if self.top_k == 0 or self.top_k < -1:
            msg = f"top_k must be -1 (disabled) or >= 1, got {self.top_k}"
            raise invalid(msg)
        check_finite("top_p", self.top_p)
        if not 0 < self.top_p <= 1:
            msg = f"top_p must be in (0, 1], got {self.top_p}"
            raise invalid(msg)
        self.stop = _normalise_stop(self.stop, self.stop_token_ids)
        self.stop_token_ids = None


def _as_items(value: object, what: str) -> list[object]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        msg = f"{what} must be a list, got {value!r}"
        raise invalid(msg)
    return list(cast("Sequence[object]", value))


def _is_token_id(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _normalise_stop(stop: object, stop_token_ids: object) -> Stop | None:
    """``stop`` as a string, a list of strings or a list of token ids (with stop_token_ids merged)."""
    if stop_token_ids is not None:
        ids = _as_items(stop_token_ids, "stop_token_ids")
        if stop is None:
            stop = ids
        elif isinstance(stop, str) or any(isinstance(s, str) for s in _as_items(stop, "stop")):
            msg = "stop strings and stop_token_ids cannot be combined on the wire; pass one kind"
            raise invalid(msg)
        else:
            stop = [*_as_items(stop, "stop"), *ids]
    if stop is None or isinstance(stop, str):
        return stop
    items = _as_items(stop, "stop (strings or token ids)")
    if all(isinstance(s, str) for s in items):
        return cast("list[str]", items)
    if all(_is_token_id(s) for s in items):
        return [int(cast("int", s)) for s in items]
    msg = f"stop must be all strings or all token ids, got {items!r}"
    raise invalid(msg)


class WandbConfig(WireStruct, kw_only=True):
    """Weights & Biases settings for ``create_lora_training_client(wandb=...)`` (MinT docs)."""

    project: str
    name: str | None = None
