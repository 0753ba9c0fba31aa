"""Property tests of the binary wire codec: every message round-trips; garbage only ever raises DecodeError."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mint_async import DecodeError
from mint_async import _binary as b
from mint_async import types as t
from mint_async._proto import tinker_public_pb2 as pb

INT32 = st.integers(-(2**31), 2**31 - 1)
TOKEN = st.integers(0, 2**31 - 1)
FLOAT32 = st.floats(width=32)
DTYPE_NAMES: list[t.TensorDtype] = ["int64", "float32"]
NAME = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)

# ---------------------------------------------------------------------------
# Strategies for valid values (avoiding the documented lossy corners of the wire:
# empty shapes, empty configs, zero cache hits, empty top-k rows)
# ---------------------------------------------------------------------------


@st.composite
def text_chunks(draw: st.DrawFn) -> t.EncodedTextChunk:
    tokens = draw(st.lists(INT32, max_size=6))
    as_array = draw(st.booleans())
    return t.EncodedTextChunk(tokens=np.array(tokens, dtype=np.int64) if as_array else tokens)


image_chunks = st.builds(
    t.ImageChunk,
    data=st.binary(max_size=16),
    format=st.sampled_from(["png", "jpeg"]),
    expected_tokens=st.integers(0, 4),
)


@st.composite
def tensors(draw: st.DrawFn, rows: int) -> t.TensorData:
    """A dense or sparse tensor of ``rows`` rows (the datum's length)."""
    dtype: t.TensorDtype = draw(st.sampled_from(["int64", "float32"]))
    values = st.integers(-(2**63), 2**63 - 1) if dtype == "int64" else FLOAT32
    cols = draw(st.integers(1, 3))
    two_d = draw(st.booleans())
    n = rows * cols if two_d else rows
    arr = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=dtype)
    if not two_d:
        return t.TensorData(data=arr, dtype=dtype, shape=draw(st.sampled_from([None, [rows]])))
    arr = arr.reshape(rows, cols)
    if draw(st.booleans()):
        arr[arr > 0] = 0  # sparse enough that CSR is chosen, sometimes
        return t.TensorData.from_numpy_sparse(arr)
    return t.TensorData.from_numpy(arr)


@st.composite
def datums(draw: st.DrawFn) -> t.Datum:
    chunks: list[t.ModelInputChunk] = draw(
        st.lists(st.one_of(text_chunks(), image_chunks), max_size=3)
    )
    rows = sum(c.length for c in chunks)
    keys = draw(st.lists(NAME, max_size=3, unique=True))
    # Provenance (0.38): runs tiling the input (no target_tokens key, so the loss-row
    # runs are free); at least one run, as proto3 reads no runs as "no provenance".
    provenance = draw(st.booleans())
    return t.Datum(
        model_input=t.ModelInput(chunks=chunks),
        loss_fn_inputs={k: draw(tensors(rows)) for k in keys},
        model_input_spans=draw(tiling(rows)) if provenance else None,
        loss_fn_input_spans=draw(tiling(draw(st.integers(0, 2**40)))) if provenance else None,
    )


@st.composite
def tiling(draw: st.DrawFn, total: int) -> list[t.ProvenanceSpan]:
    """One to three provenance runs whose lengths add up to ``total``."""
    cuts = sorted(draw(st.lists(st.integers(0, total), max_size=2)))
    lengths = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    spans: list[t.ProvenanceSpan] = []
    for n in lengths:
        seq, offset = draw(NAME.filter(bool)), draw(st.integers(0, 2**62))
        if draw(st.booleans()):
            spans.append(t.SampledProvenanceSpan(sequence_id=seq, offset=offset, length=n))
        else:
            spans.append(t.PromptProvenanceSpan(sequence_id=seq, offset=offset, length=n))
    return spans


@st.composite
def requests(draw: st.DrawFn) -> t.ForwardBackwardRequest | t.ForwardRequest:
    inp = t.ForwardBackwardInput(
        data=draw(st.lists(datums(), max_size=3)),
        loss_fn=draw(st.sampled_from(list(t.LOSS_FNS))),
        loss_fn_config=draw(
            st.none()
            | st.dictionaries(NAME, st.floats(allow_nan=False, allow_infinity=False), min_size=1)
        ),
    )
    model_id, seq_id = draw(NAME), draw(st.integers(0, 2**31 - 1))
    if draw(st.booleans()):
        return t.ForwardRequest(forward_input=inp, model_id=model_id, seq_id=seq_id)
    return t.ForwardBackwardRequest(forward_backward_input=inp, model_id=model_id, seq_id=seq_id)


@st.composite
def output_tensors(
    draw: st.DrawFn, dtype: t.TensorDtype, trailing: tuple[int, ...]
) -> t.TensorData:
    rows = draw(st.integers(0, 3))
    n = rows * int(np.prod(trailing))
    values = st.integers(-(2**63), 2**63 - 1) if dtype == "int64" else FLOAT32
    data = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=dtype)
    shape = None if not trailing and draw(st.booleans()) else [rows, *trailing]
    return t.TensorData(data=data, dtype=dtype, shape=shape)


@st.composite
def outputs(draw: st.DrawFn) -> t.ForwardBackwardOutput:
    # Field layouts (name -> dtype, trailing shape), so that datums sometimes share
    # one and sometimes differ (several ArrayRecords).
    layouts = st.dictionaries(
        NAME,
        st.tuples(
            st.sampled_from(DTYPE_NAMES),
            st.lists(st.integers(1, 3), max_size=2).map(tuple),
        ),
        max_size=3,
    )
    chosen = draw(st.lists(layouts, min_size=1, max_size=2))
    per_datum = draw(st.lists(st.sampled_from(chosen), max_size=5))
    return t.ForwardBackwardOutput(
        loss_fn_output_type=draw(
            st.text(st.characters(exclude_characters=":", exclude_categories=["Cs"]), min_size=1)
        ),
        loss_fn_outputs=[
            {name: draw(output_tensors(dt, tr)) for name, (dt, tr) in layout.items()}
            for layout in per_datum
        ],
        metrics=draw(st.dictionaries(NAME, st.floats(allow_nan=False))),
    )


TOPK_LOGPROB = st.floats(-1000.0, 0.0, width=32)  # never the sentinel -99999.0


@st.composite
def sequences(draw: st.DrawFn) -> t.SampledSequence:
    tokens = draw(st.lists(TOKEN, max_size=6))
    # No NaN: SampledSequence's equality does not treat NaN logprobs as equal.
    finite = st.floats(width=32, allow_nan=False)
    # Empty logprob bytes read as None (as the SDKs read them): no logprobs=[] to round-trip.
    logprobs = (
        draw(st.none() | st.lists(finite, min_size=len(tokens), max_size=len(tokens)))
        if tokens
        else None
    )
    # Per-token top-k (0.38): non-empty rows without sentinel cells, one per token (an
    # empty matrix reads as None, as the SDKs read it).
    row: st.SearchStrategy[list[t.TopkEntry] | None] = st.lists(
        st.tuples(TOKEN, TOPK_LOGPROB), min_size=1, max_size=3
    )
    topk: list[list[t.TopkEntry] | None] | None = None
    with_topk: bool = draw(st.booleans())
    if tokens and with_topk:
        topk = draw(st.lists(row, min_size=len(tokens), max_size=len(tokens)))
    return t.SampledSequence(
        stop_reason=draw(st.sampled_from(["length", "stop"])),
        tokens_np=tokens,
        logprobs_np=logprobs,
        topk_logprobs=topk,
    )


samples = st.builds(
    t.SampleResponse,
    sequences=st.lists(sequences(), max_size=3),
    prompt_logprobs=st.none()
    | st.lists(st.none() | st.floats(width=32, allow_nan=False), min_size=1, max_size=5),
    topk_prompt_logprobs=st.none()
    | st.lists(
        st.none() | st.lists(st.tuples(INT32, TOPK_LOGPROB), min_size=1, max_size=3),
        min_size=1,
        max_size=4,
    ),
    prompt_cache_hit_tokens=st.none() | st.integers(1, 2**31 - 1),
    target_prompt_logprobs=st.none() | st.integers(0, 4).flatmap(tensors),
    prompt_alt_tokens=st.none()
    | st.builds(
        t.PromptAltTokens,
        tokens=st.integers(0, 4).flatmap(tensors),
        logprobs=st.integers(0, 4).flatmap(tensors),
    ),
)

# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------


@given(requests())
def test_request_round_trip(req: t.ForwardBackwardRequest | t.ForwardRequest) -> None:
    """Any valid forward/forward_backward request decodes back to an equal request."""
    body = b.encode_forward_backward_request(req)
    assert b.decode_forward_backward_request(body) == req
    assert pb.ForwardBackwardRequest.FromString(body).forward_only == isinstance(
        req, t.ForwardRequest
    )


@given(outputs())
def test_output_round_trip(out: t.ForwardBackwardOutput) -> None:
    """Any ForwardBackwardOutput with dense outputs decodes back to an equal value."""
    assert b.decode_forward_backward_output(b.encode_forward_backward_output(out)) == out


@given(samples)
def test_sample_round_trip(resp: t.SampleResponse) -> None:
    """Any SampleResponse decodes back to an equal value (None prompt logprobs via NaN, top-k via sentinels)."""
    assert b.decode_sample_response(b.encode_sample_response(resp)) == resp


@given(st.binary(max_size=4096))
def test_zstd_round_trip(data: bytes) -> None:
    """zstd_decompress(zstd_compress(x)) == x whenever x fits max_size."""
    assert b.zstd_decompress(b.zstd_compress(data), max_size=max(len(data), 1)) == data


# ---------------------------------------------------------------------------
# Garbage never escapes as anything but DecodeError
# ---------------------------------------------------------------------------

DECODERS: dict[str, Callable[[bytes], object]] = {
    "request": b.decode_forward_backward_request,
    "output": b.decode_forward_backward_output,
    "sample": b.decode_sample_response,
}


def _decodes_or_refuses(decode: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


@settings(max_examples=300)
@given(st.binary(max_size=256))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    """Arbitrary bytes either decode or raise DecodeError, for every decoder and for zstd."""
    for decode in DECODERS.values():
        _decodes_or_refuses(decode, data)
    _decodes_or_refuses(lambda d: b.zstd_decompress(d, max_size=1 << 16), data)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid encoding with a few bytes overwritten, inserted or dropped."""
    kind = draw(st.sampled_from(sorted(DECODERS)))
    if kind == "request":
        body = b.encode_forward_backward_request(draw(requests()))
    elif kind == "output":
        body = b.encode_forward_backward_output(draw(outputs()))
    else:
        body = b.encode_sample_response(draw(samples))
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        if op == "insert" or pos == len(data):
            data[pos:pos] = draw(st.binary(min_size=1, max_size=3))
        elif op == "set":
            data[pos] = draw(st.integers(0, 255))
        else:
            del data[pos]
    return kind, bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_raise_only_decode_error(case: tuple[str, bytes]) -> None:
    """Corrupted valid encodings either decode or raise DecodeError."""
    kind, data = case
    _decodes_or_refuses(DECODERS[kind], data)


# Well-formed protobuf with arbitrary (mostly inconsistent) contents: reaches the
# decoders' own checks rather than the parser's.
DTYPES = st.integers(-1, 6)
SMALL = st.integers(-3, 6)
BYTES = st.binary(max_size=24)

batched = st.builds(
    pb.BatchedTensor,
    data=BYTES,
    offsets=st.lists(st.integers(-4, 24), max_size=4).map(lambda xs: np.array(xs, "<i8").tobytes())
    | BYTES,
    dtype=DTYPES,
    trailing_shape=st.lists(SMALL, max_size=2),
)
records = st.builds(
    pb.ArrayRecord,
    num_datums=SMALL,
    fields=st.dictionaries(st.sampled_from("ab"), batched, max_size=2),
)
raw_outputs = st.builds(
    pb.ForwardBackwardOutput,
    loss_fn_output_type=NAME,
    loss_fn_outputs=st.lists(records, max_size=3),
    metrics=st.dictionaries(NAME, st.floats(), max_size=2),
)
topk = st.builds(
    pb.TopkLogprobs, token_ids=BYTES, logprobs=BYTES, k=st.integers(0, 4), length=st.integers(0, 4)
)
raw_samples = st.builds(
    pb.SampleResponse,
    sequences=st.lists(
        st.builds(pb.SampledSequence, stop_reason=st.integers(0, 3), tokens=BYTES, logprobs=BYTES),
        max_size=2,
    ),
    prompt_logprobs=BYTES,
    topk_prompt_logprobs=topk,
    prompt_cache_hit_tokens=st.integers(-5, 5),
)
raw_tensors = st.one_of(
    st.builds(pb.Tensor, dense=BYTES, dtype=DTYPES, shape=st.lists(SMALL, max_size=2)),
    st.builds(
        pb.Tensor,
        sparse_csr=st.builds(pb.SparseCsr, values=BYTES, crow_indices=BYTES, col_indices=BYTES),
        dtype=DTYPES,
        shape=st.lists(SMALL, max_size=3),
    ),
)
raw_chunks = st.one_of(
    st.builds(pb.Chunk, encoded_text=st.builds(pb.EncodedTextChunk, tokens=BYTES)),
    st.builds(
        pb.Chunk, image=st.builds(pb.ImageChunk, data=BYTES, format=st.sampled_from(["png", "gif"]))
    ),
    st.just(pb.Chunk()),
)
raw_requests = st.builds(
    pb.ForwardBackwardRequest,
    model_id=NAME,
    seq_id=SMALL,
    data=st.lists(
        st.builds(
            pb.Datum,
            model_input=st.lists(raw_chunks, max_size=2),
            loss_fn_inputs=st.dictionaries(
                st.sampled_from(["target_tokens", "x"]), raw_tensors, max_size=2
            ),
        ),
        max_size=2,
    ),
    loss_fn=st.sampled_from(["cross_entropy", "ppo", "nope", ""]),
    forward_only=st.booleans(),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        raw_requests.map(lambda m: ("request", m)),
        raw_outputs.map(lambda m: ("output", m)),
        raw_samples.map(lambda m: ("sample", m)),
    )
)
def test_inconsistent_messages_raise_only_decode_error(case: tuple[str, Any]) -> None:
    """Well-formed protobuf with inconsistent sizes, dtypes, offsets or enums: decoded or DecodeError."""
    kind, msg = case
    _decodes_or_refuses(DECODERS[kind], msg.SerializeToString())
