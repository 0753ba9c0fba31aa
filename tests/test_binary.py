"""The binary wire codec (mint_async._binary) against the official SDKs' own bytes.

``tests/data/proto/`` holds what tinker 0.22 and 0.38 encode (forward_backward
requests) and result messages they decode, with the SDK's own reading of each
(recorded by ``record_golden.py`` there). Property tests for round trips and for
malformed input live in ``test_binary_properties.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from google.protobuf import descriptor_pb2

from mint_async import DecodeError, InvalidInputError
from mint_async import _binary as b
from mint_async import types as t
from mint_async._proto import tinker_public_pb2 as pb

DATA = Path(__file__).parent / "data" / "proto"
VERSIONS = ("0.22", "0.38")


def _manifest(version: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"manifest_{version}.json").read_text())
    return loaded


def _golden(kind: str) -> list[Any]:
    """pytest params (version, name, value) of every recorded case of ``kind``."""
    return [
        pytest.param(v, name, case["value"], id=f"{name}-{v}")
        for v in VERSIONS
        for name, case in _manifest(v)["cases"].items()
        if case["kind"] == kind
    ]


def _body(version: str, name: str) -> bytes:
    return (DATA / f"{name}_{version}.bin").read_bytes()


def _floats(values: list[Any]) -> list[float]:
    return [math.nan if v == "NaN" else v for v in values]


def _tensor(value: dict[str, Any]) -> t.TensorData:
    return t.TensorData(
        data=np.array(_floats(value["data"]), dtype=value["dtype"]),
        dtype=value["dtype"],
        shape=value["shape"],
        sparse_crow_indices=value.get("sparse_crow_indices"),
        sparse_col_indices=value.get("sparse_col_indices"),
    )


def _chunk(value: dict[str, Any]) -> t.ModelInputChunk:
    if value["type"] == "encoded_text":
        return t.EncodedTextChunk(tokens=value["tokens"])
    return t.ImageChunk(
        data=bytes.fromhex(value["data_hex"]),
        format=value["format"],
        expected_tokens=value["expected_tokens"],
    )


# What record_golden.py attaches beyond the manifest's values (0.38 fields it records
# in the bodies only): the provenance spans of fwdbwd_spans, and sample_038_extras'
# per-sequence top-k and target prompt logprobs.
_GOLDEN_SPANS: dict[str, tuple[list[t.ProvenanceSpan], list[t.ProvenanceSpan]]] = {
    "fwdbwd_spans": (
        [
            t.PromptProvenanceSpan(sequence_id="s:0:0", length=2),
            t.SampledProvenanceSpan(sequence_id="s:0:0", length=1),
        ],
        [t.SampledProvenanceSpan(sequence_id="s:0:0", length=3)],
    )
}


def _request(value: dict[str, Any], name: str = "") -> t.ForwardBackwardRequest | t.ForwardRequest:
    spans = _GOLDEN_SPANS.get(name, (None, None))
    inp = t.ForwardBackwardInput(
        data=[
            t.Datum(
                model_input=t.ModelInput(chunks=[_chunk(c) for c in d["chunks"]]),
                loss_fn_inputs={k: _tensor(v) for k, v in d["loss_fn_inputs"].items()},
                model_input_spans=spans[0],
                loss_fn_input_spans=spans[1],
            )
            for d in value["data"]
        ],
        loss_fn=value["loss_fn"],
        loss_fn_config=value["loss_fn_config"],
    )
    if value["forward_only"]:
        return t.ForwardRequest(
            forward_input=inp, model_id=value["model_id"], seq_id=value["seq_id"]
        )
    return t.ForwardBackwardRequest(
        forward_backward_input=inp, model_id=value["model_id"], seq_id=value["seq_id"]
    )


def _output(value: dict[str, Any]) -> t.ForwardBackwardOutput:
    return t.ForwardBackwardOutput(
        loss_fn_output_type=value["loss_fn_output_type"],
        loss_fn_outputs=[{k: _tensor(v) for k, v in d.items()} for d in value["loss_fn_outputs"]],
        metrics=value["metrics"],
    )


def _sample(value: dict[str, Any], name: str = "") -> t.SampleResponse:
    topk = value["topk_prompt_logprobs"]
    extras = name == "sample_038_extras"
    return t.SampleResponse(
        sequences=[
            t.SampledSequence(
                stop_reason=s["stop_reason"],
                tokens_np=s["tokens"],
                logprobs_np=s["logprobs"],
                topk_logprobs=[[(1, -0.5)], None, None] if extras else None,
            )
            for s in value["sequences"]
        ],
        target_prompt_logprobs=t.TensorData(data=[0.0] * 4, dtype="float32", shape=[4])
        if extras
        else None,
        prompt_logprobs=value["prompt_logprobs"],
        topk_prompt_logprobs=None
        if topk is None
        else [None if row is None else [(tok, lp) for tok, lp in row] for row in topk],
        prompt_cache_hit_tokens=value["prompt_cache_hit_tokens"] or None,
    )


# ---------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------


def _fields(descriptor: Any) -> dict[str, list[dict[str, Any]]]:
    """Our descriptor in record_golden.py's dump format."""
    fd = descriptor_pb2.FileDescriptorProto()
    descriptor.CopyToProto(fd)
    out: dict[str, list[dict[str, Any]]] = {}

    def walk(prefix: str, msgs: Any) -> None:
        for m in msgs:
            out[prefix + m.name] = [
                {
                    "name": f.name,
                    "number": f.number,
                    "type": f.type,
                    "label": f.label,
                    "type_name": f.type_name.rsplit(".", 1)[-1],
                    "proto3_optional": f.proto3_optional,
                    "oneof": m.oneof_decl[f.oneof_index].name
                    if f.HasField("oneof_index")
                    else None,
                }
                for f in m.field
            ]
            walk(f"{prefix}{m.name}.", m.nested_type)

    walk("", fd.message_type)
    return out


def test_schema_matches_sdk_038_descriptors() -> None:
    """Every message, field number, type, label, presence and oneof equals tinker 0.38's."""
    sdk = json.loads((DATA / "descriptor_0.38.json").read_text())
    assert _fields(pb.DESCRIPTOR) == sdk["messages"]
    enums = {
        e.name: {v.name: v.number for v in e.values}
        for e in pb.DESCRIPTOR.enum_types_by_name.values()
    }
    assert enums == sdk["enums"]


def test_schema_is_a_superset_of_sdk_022_by_number() -> None:
    """Every 0.22 field exists in ours under the same number, type and label (0.38 renamed two)."""
    sdk: dict[str, list[dict[str, Any]]]
    sdk = json.loads((DATA / "descriptor_0.22.json").read_text())["messages"]
    ours = _fields(pb.DESCRIPTOR)
    renamed = {"TopkPromptLogprobs": "TopkLogprobs"}
    for message, fields in sdk.items():
        by_number = {f["number"]: f for f in ours[renamed.get(message, message)]}
        for f in fields:
            mine = by_number[f["number"]]
            assert (mine["type"], mine["label"]) == (f["type"], f["label"]), (message, f)
            assert mine["type_name"] == renamed.get(f["type_name"], f["type_name"])


# ---------------------------------------------------------------------------
# forward_backward requests: client encoder, server decoder
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "name", "value"), _golden("request"))
def test_request_decodes_golden(version: str, name: str, value: dict[str, Any]) -> None:
    """Our server-side decoder reads the SDK's request body as the request it encodes."""
    assert b.decode_forward_backward_request(_body(version, name)) == _request(value, name)


@pytest.mark.parametrize(("version", "name", "value"), _golden("request"))
def test_request_encodes_like_sdk(version: str, name: str, value: dict[str, Any]) -> None:
    """Our encoder writes the SDK's message: as 0.38 exactly; as 0.22 but for the v2 config map."""
    ours = b.encode_forward_backward_request(_request(value, name))
    golden = _body(version, name)
    ours_msg = pb.ForwardBackwardRequest.FromString(ours)
    golden_msg = pb.ForwardBackwardRequest.FromString(golden)
    if version == "0.22":
        ours_msg.ClearField("loss_fn_config_v2")  # 0.22 writes only the v1 map
    assert ours_msg == golden_msg
    # Map entries are written in hash order, so bytes are compared in protobuf's
    # deterministic (key-sorted) form; maps aside, the encoding is identical.
    assert ours_msg.SerializeToString(deterministic=True) == golden_msg.SerializeToString(
        deterministic=True
    )
    assert b.decode_forward_backward_request(ours) == _request(value, name)


def test_forward_request_is_sent_forward_only() -> None:
    """A ForwardRequest encodes forward_only=True and decodes back as a ForwardRequest."""
    value = _manifest("0.38")["cases"]["fwdbwd_forward"]["value"]
    req = _request(value)
    assert isinstance(req, t.ForwardRequest)
    msg = pb.ForwardBackwardRequest.FromString(b.encode_forward_backward_request(req))
    assert msg.forward_only
    assert isinstance(b.decode_forward_backward_request(msg.SerializeToString()), t.ForwardRequest)


def test_loss_fn_config_is_dual_written_and_v2_wins() -> None:
    """Numbers go to both maps; a decoder prefers loss_fn_config_v2 over the legacy map."""
    req = _request(_manifest("0.38")["cases"]["fwdbwd_ppo"]["value"])
    msg = pb.ForwardBackwardRequest.FromString(b.encode_forward_backward_request(req))
    assert dict(msg.loss_fn_config) == {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}
    assert {k: v.number for k, v in msg.loss_fn_config_v2.items()} == dict(msg.loss_fn_config)
    msg.loss_fn_config_v2["clip_low_threshold"].number = 0.5
    decoded = b.decode_forward_backward_request(msg.SerializeToString())
    assert isinstance(decoded, t.ForwardBackwardRequest)
    assert decoded.forward_backward_input.loss_fn_config == {
        "clip_low_threshold": 0.5,
        "clip_high_threshold": 1.2,
    }


def _one_datum_request(chunk: t.ModelInputChunk, seq_id: int = 1) -> t.ForwardBackwardRequest:
    datum = t.Datum(model_input=t.ModelInput(chunks=[chunk]), loss_fn_inputs={})
    inp = t.ForwardBackwardInput(data=[datum], loss_fn="cross_entropy")
    return t.ForwardBackwardRequest(forward_backward_input=inp, model_id="m", seq_id=seq_id)


def test_image_asset_pointer_cannot_be_encoded() -> None:
    """image_asset_pointer chunks raise InvalidInputError (the SDKs raise ValueError too)."""
    assert "ImageAssetPointerChunk" in _manifest("0.22")["image_asset_pointer_error"]
    chunk = t.ImageAssetPointerChunk(format="png", location="gs://x/y.png", expected_tokens=1)
    with pytest.raises(InvalidInputError, match="image_asset_pointer"):
        b.encode_forward_backward_request(_one_datum_request(chunk))


@pytest.mark.parametrize(
    "tokens",
    [[2**31], [-(2**31) - 1], np.array([2**40], dtype=np.int64), np.array([2**32], np.uint64)],
)
def test_tokens_beyond_int32_are_refused(tokens: Any) -> None:
    """Token ids are packed as int32: larger ids raise instead of wrapping around."""
    with pytest.raises(InvalidInputError, match="int32"):
        b.encode_forward_backward_request(_one_datum_request(t.EncodedTextChunk(tokens=tokens)))


def test_tokens_pack_as_int32_from_lists_and_arrays() -> None:
    """List, int64 and uint16 token arrays all pack to the same int32 bytes."""
    bodies = {
        b.encode_forward_backward_request(_one_datum_request(t.EncodedTextChunk(tokens=tokens)))
        for tokens in ([1, 2, 65535], np.array([1, 2, 65535]), np.array([1, 2, 65535], np.uint16))
    }
    assert len(bodies) == 1
    msg = pb.ForwardBackwardRequest.FromString(bodies.pop())
    assert (
        msg.data[0].model_input[0].encoded_text.tokens == np.array([1, 2, 65535], "<i4").tobytes()
    )


def test_seq_id_beyond_int32_is_refused() -> None:
    """seq_id is an int32 field: a larger one raises InvalidInputError before anything is sent."""
    with pytest.raises(InvalidInputError, match="seq_id"):
        b.encode_forward_backward_request(_one_datum_request(t.EncodedTextChunk(tokens=[1]), 2**31))


def _request_msg() -> pb.ForwardBackwardRequest:
    req = _one_datum_request(t.EncodedTextChunk(tokens=[1, 2]))
    return pb.ForwardBackwardRequest.FromString(b.encode_forward_backward_request(req))


def test_request_text_config_and_dmel_are_refused_by_the_server_decoder() -> None:
    """0.38-only inputs our types cannot hold (text config values, audio chunks) raise DecodeError."""
    msg = _request_msg()
    msg.loss_fn_config_v2["loss_id"].text = "abc"
    with pytest.raises(DecodeError, match="loss_id"):
        b.decode_forward_backward_request(msg.SerializeToString())
    msg = _request_msg()
    msg.data[0].model_input.add().dmel.dmel = b"\x00"
    with pytest.raises(DecodeError, match="dmel"):
        b.decode_forward_backward_request(msg.SerializeToString())


def _unknown_loss_fn(m: pb.ForwardBackwardRequest) -> None:
    m.loss_fn = "custom"  # 0.38 server-side custom losses are not served


def _empty_chunk(m: pb.ForwardBackwardRequest) -> None:
    m.data[0].model_input.add()


def _odd_token_bytes(m: pb.ForwardBackwardRequest) -> None:
    m.data[0].model_input[0].encoded_text.tokens = b"\x01"


def _no_dtype(m: pb.ForwardBackwardRequest) -> None:
    m.data[0].loss_fn_inputs["w"].dense = b"\0" * 8


def _wrong_length(m: pb.ForwardBackwardRequest) -> None:
    m.data[0].loss_fn_inputs["w"].CopyFrom(pb.Tensor(dense=b"\0" * 12, dtype=pb.DTYPE_FLOAT32))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (_unknown_loss_fn, "unknown loss function"),
        (_empty_chunk, "without content"),
        (_odd_token_bytes, "4-byte"),
        (_no_dtype, "dtype"),
        (_wrong_length, "rows but model_input has 2"),
    ],
)
def test_invalid_requests_raise_decode_error(
    mutate: Callable[[pb.ForwardBackwardRequest], None], match: str
) -> None:
    """Well-formed protobuf with impossible contents raises DecodeError, saying why."""
    msg = _request_msg()
    mutate(msg)
    with pytest.raises(DecodeError, match=match):
        b.decode_forward_backward_request(msg.SerializeToString())


def test_request_decoder_reads_int32_and_bf16_tensors() -> None:
    """Server side, int32 tensors widen to int64 and bfloat16 to float32 (as results do)."""
    msg = _request_msg()
    msg.data[0].loss_fn_inputs["target_tokens"].CopyFrom(
        pb.Tensor(dense=np.array([5, -1], "<i4").tobytes(), dtype=pb.DTYPE_INT32)
    )
    msg.data[0].loss_fn_inputs["weights"].CopyFrom(
        pb.Tensor(dense=np.array([0x3F80, 0x4000], "<u2").tobytes(), dtype=pb.DTYPE_BFLOAT16)
    )
    req = b.decode_forward_backward_request(msg.SerializeToString())
    assert isinstance(req, t.ForwardBackwardRequest)
    inputs = req.forward_backward_input.data[0].loss_fn_inputs
    assert inputs["target_tokens"] == t.TensorData(data=[5, -1], dtype="int64")
    assert inputs["weights"] == t.TensorData(data=[1.0, 2.0], dtype="float32")


# ---------------------------------------------------------------------------
# ForwardBackwardOutput: client decoder, server encoder
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "name", "value"), _golden("fwdbwd_output"))
def test_output_decodes_golden_as_the_sdk_does(
    version: str, name: str, value: dict[str, Any]
) -> None:
    """int32/bf16 widening, [T, K] shapes, chunks, num_datums, the type name: as the SDK reads them."""
    assert b.decode_forward_backward_output(_body(version, name)) == _output(value)


@pytest.mark.parametrize(("version", "name", "value"), _golden("fwdbwd_output"))
def test_output_encoder_round_trips_golden_values(
    version: str, name: str, value: dict[str, Any]
) -> None:
    """Our server encoder's bytes decode (by us and by protobuf) to the golden values."""
    expected = _output(value)
    ours = b.encode_forward_backward_output(expected)
    assert b.decode_forward_backward_output(ours) == expected
    if name == "fwdbwd_output_canonical":  # the one a server sends: identical bytes
        assert ours == _body(version, name)
        assert pb.ForwardBackwardOutput.FromString(ours) == pb.ForwardBackwardOutput.FromString(
            _body(version, name)
        )


def _owner(arr: np.ndarray[Any, Any]) -> object:
    """What finally owns an array's memory (following views to their base)."""
    base: object = arr
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base


def test_output_arrays_are_views_of_the_message_bytes() -> None:
    """Decoded float32 outputs are np.frombuffer views (no copy after protobuf), read-only."""
    out = b.decode_forward_backward_output(_body("0.38", "fwdbwd_output_canonical"))
    data = out.loss_fn_outputs[0]["logprobs"].data
    assert data.dtype == np.float32 and not data.flags.writeable
    assert isinstance(_owner(data), bytes)


def test_output_ragged_datums_use_several_records() -> None:
    """Datums whose trailing shapes differ are encoded as consecutive ArrayRecords, in order."""
    outputs = [
        {"lp": t.TensorData(data=np.zeros((2, 3), np.float32), dtype="float32", shape=[2, 3])},
        {"lp": t.TensorData(data=np.ones((1, 3), np.float32), dtype="float32", shape=[1, 3])},
        {"lp": t.TensorData(data=[1.0, 2.0], dtype="float32", shape=[1, 2])},
        {},
    ]
    out = t.ForwardBackwardOutput(loss_fn_output_type="X", loss_fn_outputs=outputs, metrics={})
    body = b.encode_forward_backward_output(out)
    assert [r.num_datums for r in pb.ForwardBackwardOutput.FromString(body).loss_fn_outputs] == [
        2,
        1,
        1,
    ]
    assert b.decode_forward_backward_output(body) == out


@pytest.mark.parametrize(
    ("type_name", "expected"), [("", "ArrayRecord"), ("a:b:TorchLossReturn", "TorchLossReturn")]
)
def test_output_type_name_keeps_text_after_last_colon(type_name: str, expected: str) -> None:
    """loss_fn_output_type keeps the text after its last ':'; empty means ArrayRecord."""
    body = pb.ForwardBackwardOutput(loss_fn_output_type=type_name).SerializeToString()
    assert b.decode_forward_backward_output(body).loss_fn_output_type == expected


def _batched(data: bytes, offsets: list[int], **kw: Any) -> pb.BatchedTensor:
    return pb.BatchedTensor(
        data=data, offsets=np.array(offsets, "<i8").tobytes(), dtype=kw.pop("dtype", 1), **kw
    )


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (
            pb.ArrayRecord(num_datums=2, fields={"x": _batched(b"\0" * 8, [0, 8])}),
            "num_datums says 2",
        ),
        (pb.ArrayRecord(fields={"x": _batched(b"\0" * 8, [0, 12])}), "offsets"),
        (pb.ArrayRecord(fields={"x": _batched(b"\0" * 8, [0, 6, 8])}), "offsets"),
        (pb.ArrayRecord(fields={"x": _batched(b"\0" * 8, [4, 0])}), "offsets"),
        (pb.ArrayRecord(fields={"x": _batched(b"\0" * 8, [0, 8], dtype=9)}), "dtype"),
        (pb.ArrayRecord(fields={"x": _batched(b"\0" * 12, [0, 12], trailing_shape=[2])}), "rows"),
        (pb.ArrayRecord(num_datums=-1), "out of range"),
        (pb.ArrayRecord(num_datums=b.MAX_DATUMS + 1), "out of range"),
    ],
)
def test_invalid_outputs_raise_decode_error(record: pb.ArrayRecord, match: str) -> None:
    """Inconsistent offsets, counts, dtypes or shapes raise DecodeError, never IndexError & co."""
    body = pb.ForwardBackwardOutput(loss_fn_outputs=[record]).SerializeToString()
    with pytest.raises(DecodeError, match=match):
        b.decode_forward_backward_output(body)


# ---------------------------------------------------------------------------
# SampleResponse: client decoder, server encoder
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "name", "value"), _golden("sample"))
def test_sample_decodes_golden_as_the_sdk_does(
    version: str, name: str, value: dict[str, Any]
) -> None:
    """NaN prompt logprobs read as None, top-k sentinel rows as None, trailing sentinels trimmed."""
    assert b.decode_sample_response(_body(version, name)) == _sample(value, name)


@pytest.mark.parametrize(("version", "name", "value"), _golden("sample"))
def test_sample_encoder_writes_golden_bytes(version: str, name: str, value: dict[str, Any]) -> None:
    """Our server encoder writes the SDK-built bytes exactly, 0.38 extras included."""
    ours = b.encode_sample_response(_sample(value, name))
    assert b.decode_sample_response(ours) == _sample(value, name)
    assert ours == _body(version, name)


def test_sample_arrays_are_int32_and_float32_views() -> None:
    """tokens_np / logprobs_np come straight from np.frombuffer: int32 / float32, not copied."""
    resp = b.decode_sample_response(memoryview(_body("0.22", "sample_prompt")))
    seq = resp.sequences[0]
    assert seq.tokens_np.dtype == np.int32 and isinstance(_owner(seq.tokens_np), bytes)
    assert seq.logprobs_np is not None
    assert seq.logprobs_np.dtype == np.float32 and isinstance(_owner(seq.logprobs_np), bytes)
    assert resp.prompt_logprobs_np is not None and math.isnan(resp.prompt_logprobs_np[0])


def test_sample_all_empty_topk_rows_stay_rows() -> None:
    """Top-k lists whose rows are all None survive the wire as rows of None (k is at least 1)."""
    resp = t.SampleResponse(
        sequences=[], topk_prompt_logprobs=[None, None], prompt_cache_hit_tokens=4
    )
    assert b.decode_sample_response(b.encode_sample_response(resp)) == resp


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (
            pb.SampleResponse(
                sequences=[pb.SampledSequence(stop_reason=pb.StopReason.ValueType(5))]
            ),
            "stop_reason",
        ),
        (
            pb.SampleResponse(sequences=[pb.SampledSequence(tokens=b"\0" * 4, logprobs=b"\0" * 8)]),
            "logprobs",
        ),
        (pb.SampleResponse(prompt_logprobs=b"\0" * 3), "prompt_logprobs"),
        (
            pb.SampleResponse(
                topk_prompt_logprobs=pb.TopkLogprobs(k=2, length=2, token_ids=b"\0" * 16)
            ),
            "2 x 2",
        ),
    ],
)
def test_invalid_samples_raise_decode_error(msg: pb.SampleResponse, match: str) -> None:
    """Unknown stop reasons, mismatched lengths and short top-k matrices raise DecodeError."""
    with pytest.raises(DecodeError, match=match):
        b.decode_sample_response(msg.SerializeToString())


def test_sample_empty_logprob_bytes_read_as_none() -> None:
    """logprobs=b"" and prompt_logprobs=b"" (set but empty) decode to None, as both SDKs read them."""
    msg = pb.SampleResponse(
        sequences=[
            pb.SampledSequence(tokens=np.array([5, 6], np.int32).tobytes(), logprobs=b""),
            pb.SampledSequence(logprobs=b""),
        ],
        prompt_logprobs=b"",
    )
    assert msg.sequences[0].HasField("logprobs") and msg.HasField("prompt_logprobs")
    resp = b.decode_sample_response(msg.SerializeToString())
    assert resp.prompt_logprobs is None and resp.prompt_logprobs_np is None
    assert [s.tokens for s in resp.sequences] == [[5, 6], []]
    assert [s.logprobs_np for s in resp.sequences] == [None, None]


def test_decode_result_dispatches_by_type() -> None:
    """decode_result picks the decoder by result type and refuses types without a protobuf form."""
    body = _body("0.38", "sample_plain")
    assert b.decode_result(t.SampleResponse, body) == b.decode_sample_response(body)
    out = _body("0.38", "fwdbwd_output_canonical")
    assert b.decode_result(t.ForwardBackwardOutput, out) == b.decode_forward_backward_output(out)
    assert set(b.PROTOBUF_RESULT_TYPES) == {t.SampleResponse, t.ForwardBackwardOutput}
    with pytest.raises(TypeError, match="OptimStepResponse"):
        b.decode_result(t.OptimStepResponse, body)


def test_header_constants_match_the_sdks() -> None:
    """The Content-Type, the Accept tinker 0.22 sends and the zstd Content-Encoding (protocol §5.3, §9.1)."""
    assert b.PROTOBUF_CONTENT_TYPE == "application/x-protobuf"
    assert b.PROTOBUF_ACCEPT == "application/x-protobuf, application/json"
    assert b.ZSTD_CONTENT_ENCODING == "zstd"


# ---------------------------------------------------------------------------
# zstd
# ---------------------------------------------------------------------------


def test_zstd_round_trip_and_sdk_frame() -> None:
    """zstd_compress makes the frame tinker 0.38 sends (default level, content size); it round-trips."""
    body = _body("0.38", "fwdbwd_ce")
    frame = b.zstd_compress(body)
    assert frame == zstandard.ZstdCompressor().compress(body)
    assert zstandard.frame_content_size(frame) == len(body)
    assert b.zstd_decompress(frame, max_size=len(body)) == body
    assert b.zstd_decompress(memoryview(frame), max_size=len(body)) == body


def test_zstd_bomb_is_refused_before_allocation() -> None:
    """A frame declaring more than max_size bytes raises DecodeError, as does one without a size."""
    bomb = b.zstd_compress(b"\0" * 10_000_000)
    assert len(bomb) < 1_000
    with pytest.raises(DecodeError, match="10000000 bytes"):
        b.zstd_decompress(bomb, max_size=1_000_000)
    cobj = zstandard.ZstdCompressor().compressobj()
    sizeless = cobj.compress(b"\0" * 100_000) + cobj.flush()
    assert zstandard.frame_content_size(sizeless) == -1
    with pytest.raises(DecodeError, match="larger than"):
        b.zstd_decompress(sizeless, max_size=1_000)
    assert b.zstd_decompress(sizeless, max_size=100_000) == b"\0" * 100_000


@pytest.mark.parametrize(
    "data",
    [b"", b"not zstd at all", b.zstd_compress(b"abc" * 100)[:-3], b.zstd_compress(b"a") * 2],
    ids=["empty", "garbage", "truncated", "two-frames"],
)
def test_zstd_malformed_raises_decode_error(data: bytes) -> None:
    """Empty, garbage, truncated and multi-frame inputs raise DecodeError."""
    with pytest.raises(DecodeError):
        b.zstd_decompress(data, max_size=1 << 20)


def test_zstd_max_size_must_be_positive() -> None:
    """max_size=0 would mean 'unlimited' to zstandard: it is refused."""
    with pytest.raises(ValueError, match="max_size"):
        b.zstd_decompress(b.zstd_compress(b""), max_size=0)


def test_provenance_with_one_empty_span_list_round_trips() -> None:
    """Runs on one field and none on the other stay provenance (both lists), not half of it."""
    datum = t.Datum(
        model_input=t.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"weights": [1.0, 1.0]},
        model_input_spans=[t.SampledProvenanceSpan(sequence_id="s:0:0", length=2)],
        loss_fn_input_spans=[],
    )
    req = t.ForwardBackwardRequest(
        forward_backward_input=t.ForwardBackwardInput(data=[datum], loss_fn="cross_entropy"),
        model_id="m",
        seq_id=1,
    )
    back = b.decode_forward_backward_request(b.encode_forward_backward_request(req))
    assert isinstance(back, t.ForwardBackwardRequest)
    got = back.forward_backward_input.data[0]
    assert got.model_input_spans == datum.model_input_spans and got.loss_fn_input_spans == []
