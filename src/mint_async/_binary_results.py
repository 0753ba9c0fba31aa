"""Protobuf form of the two results a server may send as binary (protocol.md §9.2, §9.3).

``ForwardBackwardOutput`` (per-datum outputs batched into ``ArrayRecord`` chunks
of ``BatchedTensor`` fields) and ``SampleResponse``; decoders for the client,
encoders for the server. Used through :mod:`mint_async._binary`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt

from . import types as t
from ._binary_common import (
    F32,
    FROM_PB_DTYPE,
    I32,
    I64,
    MAX_DATUMS,
    TO_PB_DTYPE,
    TOPK_SENTINEL_LOGPROB,
    Buffer,
    check_int32,
    decoding,
    frombuffer,
    parse,
    tensor_from_pb,
    tensor_to_pb,
    widen,
)
from ._exceptions import DecodeError
from ._proto import tinker_public_pb2 as pb

__all__ = [
    "PROTOBUF_RESULT_TYPES",
    "decode_forward_backward_output",
    "decode_result",
    "decode_sample_response",
    "encode_forward_backward_output",
    "encode_sample_response",
]

PROTOBUF_RESULT_TYPES = (t.ForwardBackwardOutput, t.SampleResponse)
"""The result types a server may answer as protobuf (protocol §9.3)."""

_T = TypeVar("_T")

_TO_PB_STOP: dict[str, pb.StopReason.ValueType] = {
    "stop": pb.STOP_REASON_STOP,
    "length": pb.STOP_REASON_LENGTH,
}
_FROM_PB_STOP: dict[int, t.StopReason] = {
    pb.STOP_REASON_STOP: "stop",
    pb.STOP_REASON_LENGTH: "length",
}


# ---------------------------------------------------------------------------
# ForwardBackwardOutput
# ---------------------------------------------------------------------------


def _layout(datum: dict[str, t.TensorData]) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """What datums must share to be batched in one ArrayRecord: names, dtypes, trailing shapes."""
    return tuple(sorted((name, td.dtype, td.dims[1:]) for name, td in datum.items()))


def _batch_to_pb(tds: Sequence[t.TensorData], out: pb.BatchedTensor) -> None:
    code, dtype = TO_PB_DTYPE[tds[0].dtype]
    arrays = [
        (td.to_numpy() if td.is_sparse else td.data).astype(dtype, copy=False).reshape(-1)
        for td in tds
    ]
    offsets = np.zeros(len(arrays) + 1, dtype=I64)
    np.cumsum([a.size * dtype.itemsize for a in arrays], out=offsets[1:])
    out.data = np.concatenate(arrays).tobytes()
    out.offsets = offsets.tobytes()
    out.dtype = code
    out.trailing_shape.extend(tds[0].dims[1:])


def encode_forward_backward_output(out: t.ForwardBackwardOutput) -> bytes:
    """Serialize a forward/forward_backward result (server side).

    Consecutive datums with the same fields, dtypes and trailing shapes share one
    ``ArrayRecord`` (one, normally); ragged outputs take several, in order.
    """
    msg = pb.ForwardBackwardOutput(loss_fn_output_type=out.loss_fn_output_type)
    msg.metrics.update(out.metrics)
    outputs = out.loss_fn_outputs
    start = 0
    while start < len(outputs):
        layout = _layout(outputs[start])
        stop = start + 1
        while stop < len(outputs) and _layout(outputs[stop]) == layout:
            stop += 1
        record = msg.loss_fn_outputs.add(num_datums=stop - start)
        for name in outputs[start]:
            _batch_to_pb([d[name] for d in outputs[start:stop]], record.fields[name])
        start = stop
    return msg.SerializeToString()


def _split_batch(name: str, bt: pb.BatchedTensor) -> tuple[t.TensorDtype, list[npt.NDArray[Any]]]:
    """One BatchedTensor as per-datum flat arrays (views of one buffer)."""
    known = FROM_PB_DTYPE.get(bt.dtype)
    if known is None:
        err = f"loss_fn_outputs field {name!r} has unsupported dtype {bt.dtype}"
        raise DecodeError(err)
    raw_dtype, dtype = known
    flat = frombuffer(bt.data, raw_dtype, f"field {name!r}")
    offsets = frombuffer(bt.offsets, I64, f"offsets of field {name!r}")
    if offsets.size == 0:
        return dtype, []
    size = raw_dtype.itemsize
    if (
        offsets[0] < 0
        or offsets[-1] > flat.size * size
        or np.any(offsets % size)
        or np.any(np.diff(offsets) < 0)
    ):
        err = f"offsets of field {name!r} are not increasing item boundaries within its data"
        raise DecodeError(err)
    flat = widen(flat, bt.dtype)  # same element count: byte offsets // size still apply
    bounds = (offsets // size).tolist()
    return dtype, [flat[a:b] for a, b in itertools.pairwise(bounds)]


def _record_outputs(record: pb.ArrayRecord) -> list[dict[str, t.TensorData]]:
    fields = {
        name: (*_split_batch(name, bt), list(bt.trailing_shape))
        for name, bt in record.fields.items()
    }
    count = record.num_datums
    if count == 0 and fields:
        # Encoders that predate num_datums: every field has one entry per datum.
        count = len(next(iter(fields.values()))[1])
    if not 0 <= count <= MAX_DATUMS:
        err = f"num_datums {count} is out of range"
        raise DecodeError(err)
    outputs: list[dict[str, t.TensorData]] = [{} for _ in range(count)]
    for name, (dtype, arrays, trailing) in fields.items():
        if len(arrays) != count:
            err = f"field {name!r} has {len(arrays)} datums, num_datums says {count}"
            raise DecodeError(err)
        per_row = math.prod(trailing)
        for datum, arr in zip(outputs, arrays, strict=True):
            if (arr.size % per_row) if per_row else arr.size:
                err = f"field {name!r}: {arr.size} values do not fill rows of shape {trailing}"
                raise DecodeError(err)
            rows = arr.size // per_row if per_row else 0
            datum[name] = t.TensorData(data=arr, dtype=dtype, shape=[rows, *trailing])
    return outputs


def decode_forward_backward_output(data: Buffer) -> t.ForwardBackwardOutput:
    """Parse a protobuf ForwardBackwardOutput (the result of forward/forward_backward).

    ``num_datums`` decides how many per-datum outputs there are (fields may be
    absent); per-datum shapes are ``[n / prod(trailing_shape), *trailing_shape]``;
    ``loss_fn_output_type`` keeps the text after its last ``:`` (``ArrayRecord`` if empty).
    """
    with decoding("ForwardBackwardOutput"):
        msg = parse(pb.ForwardBackwardOutput, data)
        outputs: list[dict[str, t.TensorData]] = []
        for record in msg.loss_fn_outputs:
            outputs.extend(_record_outputs(record))
            if len(outputs) > MAX_DATUMS:
                err = f"more than {MAX_DATUMS} datums"
                raise DecodeError(err)
        return t.ForwardBackwardOutput(
            loss_fn_output_type=msg.loss_fn_output_type.rsplit(":", 1)[-1] or "ArrayRecord",
            loss_fn_outputs=outputs,
            metrics=dict(msg.metrics),
        )


# ---------------------------------------------------------------------------
# SampleResponse
# ---------------------------------------------------------------------------

TopkRows: TypeAlias = list[list[t.TopkEntry] | None]


def _topk_to_pb(rows: TopkRows, out: pb.TopkLogprobs) -> None:
    n = len(rows)
    # k >= 1 even when every row is empty, so the rows read back as None, not as "no top-k".
    k = max((len(row) for row in rows if row), default=0) or 1
    ids = np.zeros((n, k), dtype=I32)
    logprobs = np.full((n, k), TOPK_SENTINEL_LOGPROB, dtype=F32)
    for i, row in enumerate(rows):
        if row:
            ids[i, : len(row)] = [token for token, _ in row]
            logprobs[i, : len(row)] = [logprob for _, logprob in row]
    out.token_ids = ids.tobytes()
    out.logprobs = logprobs.tobytes()
    out.k = k
    out.length = n


def _topk_from_pb(msg: pb.TopkLogprobs) -> TopkRows | None:
    n, k = msg.length, msg.k
    if n == 0 or k == 0:
        return None  # as the SDKs read it
    ids = frombuffer(msg.token_ids, I32, "top-k token ids")
    logprobs = frombuffer(msg.logprobs, F32, "top-k logprobs")
    if ids.size != n * k or logprobs.size != n * k:
        err = f"top-k matrices must hold {n} x {k} cells"
        raise DecodeError(err)
    ids, logprobs = ids.reshape(n, k), logprobs.reshape(n, k)
    filled = (ids != 0) | (logprobs != TOPK_SENTINEL_LOGPROB)
    # Cells up to the last filled one are kept; a row whose first cell is empty is None.
    keep = np.where(filled.any(axis=1), k - np.argmax(filled[:, ::-1], axis=1), 0).tolist()
    first_filled = filled[:, 0].tolist()
    id_rows, lp_rows = ids.tolist(), logprobs.tolist()
    return [
        list(zip(id_rows[i][:m], lp_rows[i][:m], strict=True)) if first_filled[i] else None
        for i, m in enumerate(keep)
    ]


def encode_sample_response(resp: t.SampleResponse) -> bytes:
    """Serialize a sample result (server side).

    ``None`` prompt logprobs become NaN; top-k rows are padded with sentinel cells
    ``(0, -99999.0)`` to the longest row (``None`` rows are all sentinels).
    """
    msg = pb.SampleResponse()
    for seq in resp.sequences:
        seq_msg = msg.sequences.add(stop_reason=_TO_PB_STOP[seq.stop_reason])
        seq_msg.tokens = seq.tokens_np.astype(I32, copy=False).tobytes()
        if seq.logprobs_np is not None:
            seq_msg.logprobs = seq.logprobs_np.astype(F32, copy=False).tobytes()
        if seq.topk_logprobs is not None:
            _topk_to_pb(seq.topk_logprobs, seq_msg.topk_sampled_logprobs)
    if resp.prompt_logprobs is not None:
        values = [math.nan if v is None else v for v in resp.prompt_logprobs]
        msg.prompt_logprobs = np.array(values, dtype=F32).tobytes()
    if resp.topk_prompt_logprobs is not None:
        _topk_to_pb(resp.topk_prompt_logprobs, msg.topk_prompt_logprobs)
    if resp.prompt_cache_hit_tokens:
        msg.prompt_cache_hit_tokens = check_int32(
            resp.prompt_cache_hit_tokens, "prompt_cache_hit_tokens"
        )
    if resp.target_prompt_logprobs is not None:
        tensor_to_pb(resp.target_prompt_logprobs, msg.target_prompt_logprobs)
    if resp.prompt_alt_tokens is not None:
        tensor_to_pb(resp.prompt_alt_tokens.tokens, msg.prompt_alt_tokens.tokens)
        tensor_to_pb(resp.prompt_alt_tokens.logprobs, msg.prompt_alt_tokens.logprobs)
    return msg.SerializeToString()


def _sequence_from_pb(msg: pb.SampledSequence) -> t.SampledSequence:
    reason = _FROM_PB_STOP.get(msg.stop_reason)
    if reason is None:
        err = f"unknown stop_reason {msg.stop_reason}"
        raise DecodeError(err)
    tokens = frombuffer(msg.tokens, I32, "tokens")
    # Empty bytes read as "no logprobs", set or not, as both SDKs (0.22, 0.38) read
    # them: a server that writes logprobs=b"" means None, not a length mismatch.
    logprobs = frombuffer(msg.logprobs, F32, "logprobs") if msg.logprobs else None
    topk = (
        _topk_from_pb(msg.topk_sampled_logprobs) if msg.HasField("topk_sampled_logprobs") else None
    )
    if topk is not None and len(topk) != tokens.size:
        # A zero-length top-k (no tokens sampled) reads as None, as the SDKs read it.
        err = f"topk_sampled_logprobs has {len(topk)} rows for {tokens.size} tokens"
        raise DecodeError(err)
    return t.SampledSequence(
        stop_reason=reason, tokens_np=tokens, logprobs_np=logprobs, topk_logprobs=topk
    )


def _prompt_logprobs_from_pb(raw: bytes) -> list[float | None]:
    arr = frombuffer(raw, F32, "prompt_logprobs")
    values: list[float | None] = arr.tolist()
    for i in np.flatnonzero(np.isnan(arr)).tolist():
        values[i] = None  # not computed (always the first prompt token)
    return values


def decode_sample_response(data: Buffer) -> t.SampleResponse:
    """Parse a protobuf SampleResponse (the result of sample).

    ``tokens_np`` (int32) and ``logprobs_np`` (float32) are views of the message's
    bytes; NaN prompt logprobs read as ``None``; top-k rows drop trailing sentinel
    cells and are ``None`` where the first cell is a sentinel. Empty ``logprobs``
    and ``prompt_logprobs`` bytes read as ``None`` (as the SDKs read them), so a
    zero-token sequence's ``logprobs=[]`` comes back as ``None``.
    """
    with decoding("SampleResponse"):
        msg = parse(pb.SampleResponse, data)
        # As for per-sequence logprobs: empty bytes are None, like the SDKs read them.
        prompt_logprobs = (
            _prompt_logprobs_from_pb(msg.prompt_logprobs) if msg.prompt_logprobs else None
        )
        topk = msg.topk_prompt_logprobs if msg.HasField("topk_prompt_logprobs") else None
        return t.SampleResponse(
            sequences=[_sequence_from_pb(s) for s in msg.sequences],
            prompt_logprobs=prompt_logprobs,
            topk_prompt_logprobs=None if topk is None else _topk_from_pb(topk),
            prompt_cache_hit_tokens=msg.prompt_cache_hit_tokens or None,
            target_prompt_logprobs=tensor_from_pb(msg.target_prompt_logprobs)
            if msg.HasField("target_prompt_logprobs")
            else None,
            prompt_alt_tokens=t.PromptAltTokens(
                tokens=tensor_from_pb(msg.prompt_alt_tokens.tokens),
                logprobs=tensor_from_pb(msg.prompt_alt_tokens.logprobs),
            )
            if msg.HasField("prompt_alt_tokens")
            else None,
        )


def decode_result(result_type: type[_T], data: Buffer) -> _T:
    """Decode a protobuf ``retrieve_future`` result of ``result_type`` (one of PROTOBUF_RESULT_TYPES)."""
    if result_type is t.ForwardBackwardOutput:
        return cast("_T", decode_forward_backward_output(data))
    if result_type is t.SampleResponse:
        return cast("_T", decode_sample_response(data))
    err = f"{result_type.__name__} has no protobuf form"
    raise TypeError(err)
