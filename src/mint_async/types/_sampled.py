"""Sampling results (protocol §8.6)."""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, TypeAlias

import msgspec
import numpy as np

from .._arrays import (
    ArrayInput,
    as_array,
)
from ._base import Float32Array, Int32Array, StopReason, WireStruct, invalid
from ._tensors import TensorData

TopkEntry: TypeAlias = tuple[int, float]
"""One ``(token_id, logprob)`` cell of a top-k row."""


class SampledSequence(WireStruct, dict=True, eq=False, kw_only=True):
    """One sampled sequence.

    ``tokens_np`` / ``logprobs_np`` are numpy arrays decoded straight from the
    wire; ``tokens`` / ``logprobs`` are Python lists made on first access (the
    official SDK's spelling).
    """

    stop_reason: StopReason
    tokens_np: Int32Array = msgspec.field(name="tokens")
    logprobs_np: Float32Array | None = msgspec.field(default=None, name="logprobs")
    topk_logprobs: list[list[TopkEntry] | None] | None = None
    """[0.38] Per generated token, up to ``topk_sample_logprobs`` ``(token_id, logprob)``
    pairs, most likely first (``None`` where the server reported nothing)."""
    sequence_id: str | None = None
    """[0.38] Session-scoped id of this sequence, from the promise's ``sample_sequence_ids``
    (stamped by the client; it names the sequence in provenance spans)."""

    if TYPE_CHECKING:

        def __init__(
            self,
            *,
            stop_reason: StopReason,
            tokens_np: ArrayInput,
            logprobs_np: ArrayInput | None = None,
            topk_logprobs: list[list[TopkEntry] | None] | None = None,
            sequence_id: str | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        if self.stop_reason not in ("length", "stop"):
            msg = f"stop_reason must be 'length' or 'stop', got {self.stop_reason!r}"
            raise invalid(msg)
        tokens = self.tokens_np
        if not (isinstance(tokens, np.ndarray) and tokens.dtype == np.int32):  # pyright: ignore[reportUnnecessaryComparison]
            wide = as_array(tokens, "int64")
            if wide.size and (wide.min() < 0 or wide.max() >= 2**31):
                msg = "token ids must be in [0, 2**31)"
                raise invalid(msg)
            self.tokens_np = wide.astype(np.int32)
        if self.logprobs_np is not None:
            self.logprobs_np = as_array(self.logprobs_np, "float32")
            if self.logprobs_np.shape != self.tokens_np.shape:
                msg = "logprobs must have one entry per token"
                raise invalid(msg)
        if self.topk_logprobs is not None and len(self.topk_logprobs) != self.tokens_np.size:
            msg = "topk_logprobs must have one row per token"
            raise invalid(msg)

    @cached_property
    def tokens(self) -> list[int]:
        """The generated token ids as a list."""
        values: list[int] = self.tokens_np.tolist()
        return values

    @cached_property
    def logprobs(self) -> list[float] | None:
        """The log-probability of each generated token, if requested."""
        if self.logprobs_np is None:
            return None
        values: list[float] = self.logprobs_np.tolist()
        return values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampledSequence):
            return NotImplemented
        same_logprobs = (self.logprobs_np is None) == (other.logprobs_np is None) and (
            self.logprobs_np is None
            or other.logprobs_np is None
            or np.array_equal(self.logprobs_np, other.logprobs_np, equal_nan=True)
        )
        return (
            self.stop_reason == other.stop_reason
            and np.array_equal(self.tokens_np, other.tokens_np)
            and bool(same_logprobs)
            and _same_topk(self.topk_logprobs, other.topk_logprobs)
            and self.sequence_id == other.sequence_id
        )

    __hash__: ClassVar[None] = None  # type: ignore[assignment]


def _same_topk(
    a: list[list[TopkEntry] | None] | None, b: list[list[TopkEntry] | None] | None
) -> bool:
    """Top-k rows compared by value (decoded rows hold lists, built ones tuples)."""
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(
        (ra is None and rb is None)
        or (ra is not None and rb is not None and [tuple(c) for c in ra] == [tuple(c) for c in rb])
        for ra, rb in zip(a, b, strict=True)
    )


class PromptAltTokens(WireStruct, kw_only=True):
    """[0.38] ``prompt_alt_tokens_k`` draws at every prompt position after the first.

    Both tensors are dense ``[len(prompt) - 1, k]``: row ``i`` holds ``k``
    independent draws (with replacement, at the request's temperature) from the
    model's distribution over prompt token ``i + 1``; ``logprobs[i][j]`` is the
    model's logprob of ``tokens[i][j]`` there.
    """

    tokens: TensorData
    logprobs: TensorData


class SampleResponse(WireStruct, tag="sample", tag_field="type", kw_only=True):
    """The result of ``sample``: one sequence per sample, plus prompt logprobs when asked."""

    sequences: list[SampledSequence]
    prompt_logprobs: list[float | None] | None = None
    topk_prompt_logprobs: list[list[TopkEntry] | None] | None = None
    prompt_cache_hit_tokens: int | None = None
    """[0.38] How many prompt tokens hit the server's prompt cache."""
    target_prompt_logprobs: TensorData | None = None
    """[0.38] Logprobs of the ids the request's ``target_prompt_logprobs`` named: float32, same
    shape and layout (dense or sparse CSR), 0.0 where the request had ``-1``."""
    prompt_alt_tokens: PromptAltTokens | None = None
    """[0.38] The draws ``prompt_alt_tokens_k`` asked for (see :class:`PromptAltTokens`)."""

    @property
    def prompt_logprobs_np(self) -> Float32Array | None:
        """``prompt_logprobs`` as a float32 array, NaN where the server computed none."""
        if self.prompt_logprobs is None:
            return None
        return np.array(
            [math.nan if v is None else v for v in self.prompt_logprobs], dtype=np.float32
        )


class SampleResult(SampleResponse, tag="sample", tag_field="type", kw_only=True):
    """A SampleResponse plus the ``policy_version`` of the sampler replica (MinT docs)."""

    policy_version: int | None = None
