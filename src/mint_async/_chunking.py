"""Splitting a forward_backward batch into chunks, and combining the chunks' results.

Chunking (protocol §7.2): consecutive datums are grouped while the chunk has
fewer than ``max_len`` datums and its estimated size stays within ``max_bytes``
(estimate: 10 bytes per token and per loss-input value; images by byte size).

Combining (protocol §8.4): outputs are concatenated in order; each metric key
``name:reduction`` present in every chunk is reduced by its suffix (weights =
the number of outputs per chunk); keys with an unknown suffix are dropped, as
the official SDK does. A single chunk's metrics are passed through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from . import types as t

__all__ = ["combine_outputs", "estimate_bytes", "estimate_input_bytes", "split_batch"]

logger = logging.getLogger("mint_async")

MAX_CHUNK_LEN: Final = 1024
MAX_CHUNK_BYTES: Final = 5_000_000


def estimate_input_bytes(model_input: t.ModelInput) -> int:
    """The SDK's size estimate of a model input (10 bytes a token; images by their size)."""
    total = 0
    for chunk in model_input.chunks:
        if isinstance(chunk, t.EncodedTextChunk):
            total += 10 * len(chunk.tokens)
        elif isinstance(chunk, t.ImageChunk):
            total += len(chunk.data)
        else:
            total += len(chunk.location)
    return total


def estimate_bytes(datum: t.Datum) -> int:
    """The SDK's size estimate of one datum."""
    total = estimate_input_bytes(datum.model_input)
    for td in datum.loss_fn_inputs.values():
        total += 10 * int(td.data.size)
    return total


def split_batch(
    data: Sequence[t.Datum], *, max_len: int = MAX_CHUNK_LEN, max_bytes: int = MAX_CHUNK_BYTES
) -> list[list[t.Datum]]:
    """Consecutive chunks of ``data`` within the count and byte limits (never empty chunks)."""
    chunks: list[list[t.Datum]] = []
    current: list[t.Datum] = []
    size = 0
    for datum in data:
        est = estimate_bytes(datum)
        if current and (len(current) >= max_len or size + est > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(datum)
        size += est
    if current:
        chunks.append(current)
    return chunks


def _reduce(reduction: str, values: list[float], weights: list[int]) -> float | None:
    total_w = sum(weights)
    if reduction == "sum":
        return float(sum(values))
    if reduction == "min":
        return float(min(values))
    if reduction == "max":
        return float(max(values))
    if reduction in ("mean", "slack"):
        mean = (
            sum(v * w for v, w in zip(values, weights, strict=True)) / total_w
            if total_w
            else sum(values) / len(values)
        )
        return float(max(values) - mean) if reduction == "slack" else float(mean)
    if reduction == "hash_unordered":
        return float(hash(tuple(sorted(int(v) for v in values))) & ((1 << 53) - 1))
    return None


def combine_outputs(outputs: Sequence[t.ForwardBackwardOutput]) -> t.ForwardBackwardOutput:
    """One ForwardBackwardOutput from the results of a batch's chunks, in order."""
    if not outputs:
        return t.ForwardBackwardOutput(
            loss_fn_output_type="ArrayRecord", loss_fn_outputs=[], metrics={}
        )
    if len(outputs) == 1:
        return outputs[0]
    weights = [len(o.loss_fn_outputs) for o in outputs]
    metrics: dict[str, float] = {}
    common = set(outputs[0].metrics).intersection(*(o.metrics for o in outputs[1:]))
    for key in sorted(common):
        name, sep, reduction = key.rpartition(":")
        if not sep or not name:
            logger.debug("dropping metric %r: no ':reduction' suffix to combine chunks by", key)
            continue
        values = [o.metrics[key] for o in outputs]
        if reduction == "unique":
            metrics[key] = values[0]
            for i, v in enumerate(values[1:], start=1):
                metrics[f"{key}_{i}"] = v
            continue
        reduced = _reduce(reduction, values, weights)
        if reduced is None:
            logger.debug("dropping metric %r: unknown reduction %r", key, reduction)
            continue
        metrics[key] = reduced
    return t.ForwardBackwardOutput(
        loss_fn_output_type=outputs[0].loss_fn_output_type,
        loss_fn_outputs=[item for o in outputs for item in o.loss_fn_outputs],
        metrics=metrics,
    )
