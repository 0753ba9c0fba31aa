"""The Tinker binary wire: protobuf bodies and results, and zstd (protocol.md §9).

Pure functions between the wire Structs of :mod:`mint_async.types` and bytes, no I/O:

* client side: :func:`encode_forward_backward_request` (a ``ForwardRequest`` is sent
  with ``forward_only=True``, as tinker 0.38 does), :func:`decode_forward_backward_output`,
  :func:`decode_sample_response` (or :func:`decode_result` by result type);
* server side: :func:`decode_forward_backward_request`,
  :func:`encode_forward_backward_output`, :func:`encode_sample_response`;
* :func:`zstd_compress` / :func:`zstd_decompress` (bounded: decompression bombs
  raise instead of exhausting memory);
* the header values: :data:`PROTOBUF_CONTENT_TYPE`, :data:`PROTOBUF_ACCEPT`
  (what tinker 0.22 offers when polling), :data:`ZSTD_CONTENT_ENCODING`.

Numbers travel as little-endian packed arrays. Decoders read them with
``np.frombuffer`` over the bytes protobuf hands out, so arrays are not copied
again (they are read-only, like any array over ``bytes``); only int32 and
bfloat16 tensors are widened (to int64 / float32, as the SDKs do).

Every failure to decode (malformed protobuf or zstd, impossible sizes, values the
Structs reject) raises :class:`~mint_async.DecodeError`, translated in
``_binary_common.decoding`` and nowhere else. Encoders raise
:class:`~mint_async.InvalidInputError` for values the binary wire cannot carry
(``image_asset_pointer`` chunks, token ids or ``seq_id`` beyond int32).

The 0.38 additions travel both ways: provenance spans, per-sequence top-k
logprobs, ``target_prompt_logprobs`` and ``prompt_alt_tokens``. Lossy corners of the wire itself: an empty tensor
shape reads back as ``None`` (1-D), an empty ``loss_fn_config`` as ``None``,
``prompt_cache_hit_tokens=0`` as ``None``, a top-k row that is empty (or whose
first entry is the sentinel ``(0, -99999.0)``) as ``None``, and an empty top-k
list as ``None``.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import numpy as np
import zstandard

from . import types as t
from ._binary_common import (
    I32,
    INT32_MAX,
    INT32_MIN,
    MAX_DATUMS,
    PROTOBUF_ACCEPT,
    PROTOBUF_CONTENT_TYPE,
    TOPK_SENTINEL_LOGPROB,
    ZSTD_CONTENT_ENCODING,
    Buffer,
    check_int32,
    decoding,
    frombuffer,
    parse,
    tensor_from_pb,
    tensor_to_pb,
)
from ._binary_results import (
    PROTOBUF_RESULT_TYPES,
    decode_forward_backward_output,
    decode_result,
    decode_sample_response,
    encode_forward_backward_output,
    encode_sample_response,
)
from ._exceptions import DecodeError, InvalidInputError
from ._proto import tinker_public_pb2 as pb

__all__ = [
    "MAX_DATUMS",
    "PROTOBUF_ACCEPT",
    "PROTOBUF_CONTENT_TYPE",
    "PROTOBUF_RESULT_TYPES",
    "TOPK_SENTINEL_LOGPROB",
    "ZSTD_CONTENT_ENCODING",
    "Buffer",
    "decode_forward_backward_output",
    "decode_forward_backward_request",
    "decode_result",
    "decode_sample_response",
    "encode_forward_backward_output",
    "encode_forward_backward_request",
    "encode_sample_response",
    "zstd_compress",
    "zstd_decompress",
]


# ---------------------------------------------------------------------------
# forward / forward_backward requests
# ---------------------------------------------------------------------------


def _token_bytes(tokens: object) -> bytes:
    """Token ids packed as int32 LE; InvalidInputError unless they are ints that fit."""
    arr = np.asarray(tokens)
    if arr.size == 0:
        return b""
    if arr.dtype.kind not in "iu":
        msg = f"token ids must be integers, got an array of {arr.dtype}"
        raise InvalidInputError(msg)
    if arr.dtype != I32 and (arr.min() < INT32_MIN or arr.max() > INT32_MAX):
        msg = "token ids must fit in int32 for the protobuf wire"
        raise InvalidInputError(msg)
    return arr.astype(I32, copy=False).tobytes()


def _chunk_to_pb(chunk: t.ModelInputChunk, out: pb.Chunk) -> None:
    match chunk:
        case t.EncodedTextChunk():
            out.encoded_text.tokens = _token_bytes(chunk.tokens)
        case t.ImageChunk():
            out.image.data = chunk.data
            out.image.format = chunk.format
            if chunk.expected_tokens is not None:
                out.image.expected_tokens = check_int32(chunk.expected_tokens, "expected_tokens")
        case t.ImageAssetPointerChunk():
            msg = (
                "image_asset_pointer chunks cannot be sent in the protobuf wire; "
                "send the image inline (ImageChunk) or use the JSON wire"
            )
            raise InvalidInputError(msg)


def encode_forward_backward_request(req: t.ForwardBackwardRequest | t.ForwardRequest) -> bytes:
    """Serialize a forward_backward (or forward, as ``forward_only``) request body.

    Numeric ``loss_fn_config`` entries are written to both ``loss_fn_config`` and
    ``loss_fn_config_v2``, as tinker 0.38 does. Raises InvalidInputError for
    ``image_asset_pointer`` chunks and for ids or ``seq_id`` beyond int32.
    """
    if isinstance(req, t.ForwardRequest):
        inp, forward_only = req.forward_input, True
    else:
        inp, forward_only = req.forward_backward_input, False
    msg = pb.ForwardBackwardRequest(
        model_id=req.model_id,
        seq_id=check_int32(req.seq_id, "seq_id"),
        loss_fn=inp.loss_fn,
        forward_only=forward_only,
    )
    for key, value in (inp.loss_fn_config or {}).items():
        msg.loss_fn_config[key] = float(value)
        msg.loss_fn_config_v2[key].number = float(value)
    for datum in inp.data:
        datum_msg = msg.data.add()
        for chunk in datum.model_input.chunks:
            _chunk_to_pb(chunk, datum_msg.model_input.add())
        for name, td in datum.loss_fn_inputs.items():
            # Filled in place: CopyFrom would copy every array's bytes once more.
            tensor_to_pb(td, datum_msg.loss_fn_inputs[name])
        for span in datum.model_input_spans or ():
            _span_to_pb(span, datum_msg.model_input_spans.add())
        for span in datum.loss_fn_input_spans or ():
            _span_to_pb(span, datum_msg.loss_fn_input_spans.add())
    return msg.SerializeToString()


def _span_to_pb(span: t.ProvenanceSpan, out: pb.ProvenanceSpan) -> None:
    arm = out.sampled_tokens if isinstance(span, t.SampledProvenanceSpan) else out.prompt_tokens
    arm.sequence_id = span.sequence_id
    arm.offset = span.offset
    arm.length = span.length


def _span_from_pb(msg: pb.ProvenanceSpan) -> t.ProvenanceSpan:
    match msg.WhichOneof("span"):
        case "prompt_tokens":
            p = msg.prompt_tokens
            return t.PromptProvenanceSpan(
                sequence_id=p.sequence_id, offset=p.offset, length=p.length
            )
        case "sampled_tokens":
            q = msg.sampled_tokens
            return t.SampledProvenanceSpan(
                sequence_id=q.sequence_id, offset=q.offset, length=q.length
            )
        case _:
            err = "a provenance span without content"
            raise DecodeError(err)


def _provenance_from_pb(
    msg: pb.Datum,
) -> tuple[list[t.ProvenanceSpan] | None, list[t.ProvenanceSpan] | None]:
    """A datum's two span lists: both ``None`` when neither has runs (proto3 cannot tell
    "no provenance" from zero runs), else both lists (one may tile an empty field)."""
    if not msg.model_input_spans and not msg.loss_fn_input_spans:
        return None, None
    return (
        [_span_from_pb(span) for span in msg.model_input_spans],
        [_span_from_pb(span) for span in msg.loss_fn_input_spans],
    )


def _datum_from_pb(msg: pb.Datum) -> t.Datum:
    model_input_spans, loss_fn_input_spans = _provenance_from_pb(msg)
    return t.Datum(
        model_input=t.ModelInput(chunks=[_chunk_from_pb(c) for c in msg.model_input]),
        loss_fn_inputs={k: tensor_from_pb(v) for k, v in msg.loss_fn_inputs.items()},
        model_input_spans=model_input_spans,
        loss_fn_input_spans=loss_fn_input_spans,
    )


def _chunk_from_pb(msg: pb.Chunk) -> t.ModelInputChunk:
    match msg.WhichOneof("chunk"):
        case "encoded_text":
            return t.EncodedTextChunk(tokens=frombuffer(msg.encoded_text.tokens, I32, "tokens"))
        case "image":
            img = msg.image
            expected = img.expected_tokens if img.HasField("expected_tokens") else None
            fmt = cast("Any", img.format)  # ImageChunk checks it is png or jpeg
            return t.ImageChunk(data=img.data, format=fmt, expected_tokens=expected)
        case "dmel":
            err = "dmel (audio) chunks are not supported"
        case _:
            err = "a model_input chunk without content"
    raise DecodeError(err)


def _loss_fn_config(msg: pb.ForwardBackwardRequest) -> dict[str, float] | None:
    """The numeric config; v2 entries win over v1 (protocol §9.2), text values are refused."""
    config = dict(msg.loss_fn_config)
    for key, value in msg.loss_fn_config_v2.items():
        if value.WhichOneof("value") != "number":
            # Only 0.38's own loss functions take text (custom's loss_id), and
            # LossFnType has none of them.
            err = f"loss_fn_config[{key!r}] must be a number"
            raise DecodeError(err)
        config[key] = value.number
    return config or None


def decode_forward_backward_request(data: Buffer) -> t.ForwardBackwardRequest | t.ForwardRequest:
    """Parse a protobuf forward_backward body (server side).

    Returns a ``ForwardRequest`` when the body says ``forward_only`` (tinker 0.38's
    forward), else a ``ForwardBackwardRequest``. Token ids arrive as int32 numpy
    arrays. Provenance spans are kept (an empty list reads as ``None``); dmel chunks
    and text config values raise DecodeError, like every malformed or invalid body.
    """
    with decoding("ForwardBackwardRequest"):
        msg = parse(pb.ForwardBackwardRequest, data)
        datums = [_datum_from_pb(d) for d in msg.data]
        inp = t.ForwardBackwardInput(
            data=datums,
            loss_fn=cast("t.LossFnType", msg.loss_fn),  # checked by ForwardBackwardInput
            loss_fn_config=_loss_fn_config(msg),
        )
        if msg.forward_only:
            return t.ForwardRequest(forward_input=inp, model_id=msg.model_id, seq_id=msg.seq_id)
        return t.ForwardBackwardRequest(
            forward_backward_input=inp, model_id=msg.model_id, seq_id=msg.seq_id
        )


# ---------------------------------------------------------------------------
# zstd
# ---------------------------------------------------------------------------

# zstandard's contexts are not thread-safe; bodies may be (de)compressed in worker threads.
_zstd_local = threading.local()


def zstd_compress(data: Buffer) -> bytes:
    """One zstd frame (level 3, content size in the header), as tinker 0.38 sends."""
    cctx: zstandard.ZstdCompressor | None = getattr(_zstd_local, "cctx", None)
    if cctx is None:
        cctx = _zstd_local.cctx = zstandard.ZstdCompressor()
    return cctx.compress(data)


def zstd_decompress(data: Buffer, *, max_size: int) -> bytes:
    """Decompress one zstd frame of at most ``max_size`` bytes; DecodeError otherwise.

    The frame header's content size is checked before anything is allocated (the
    SDKs and :func:`zstd_compress` always write it). A frame without one is
    decompressed into a ``max_size`` buffer (allocated up front, then shrunk) and
    refused if it does not fit. Trailing data after the frame (a second frame
    included) is refused rather than silently ignored.
    """
    if max_size < 1:
        err = f"max_size must be >= 1, got {max_size}"
        raise ValueError(err)
    dctx: zstandard.ZstdDecompressor | None = getattr(_zstd_local, "dctx", None)
    if dctx is None:
        dctx = _zstd_local.dctx = zstandard.ZstdDecompressor()
    size = -1
    try:
        size = zstandard.frame_content_size(data)
        if size > max_size:
            err = f"zstd body decompresses to {size} bytes, more than the {max_size} allowed"
            raise DecodeError(err)
        return dctx.decompress(data, max_output_size=max_size, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        limit = "" if size >= 0 else f" (or larger than the {max_size} bytes allowed)"
        err = f"malformed zstd body{limit}: {exc}"
        raise DecodeError(err) from exc
