"""Record the official tinker SDKs' own protobuf encodings as golden files (not run in CI).

Run once per SDK, each in a venv holding only that SDK::

    /work/tinkervenv/bin/python tests/data/proto/record_golden.py      # tinker 0.22.0
    /work/tinker038venv/bin/python tests/data/proto/record_golden.py   # tinker 0.38.0

Writes, next to this file, for ``V`` = ``0.22`` / ``0.38``:

* ``fwdbwd_*_V.bin``: forward_backward request bodies encoded by the SDK's
  ``forward_backward_request_to_proto(...).SerializeToString()`` (0.38: plus
  ``forward_only``, set the way its training resource sets it);
* ``fwdbwd_output_*_V.bin`` / ``sample_*_V.bin``: results the SDK only *decodes*,
  built with the SDK's generated proto classes (int32 / bfloat16 tensors, several
  ArrayRecord chunks, top-k sentinel cells, NaN prompt logprobs ...);
* ``manifest_V.json``: per file, the values: the request each body encodes, and
  for results what the SDK's own deserializer makes of the bytes;
* ``descriptor_V.json``: every message's fields (name, number, type, label,
  presence, oneof), dumped from the SDK's descriptors.

tests/test_binary.py checks our codec against all of it.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2

# Imported by name: the SDK is not installed where the test suite is type-checked,
# and its API differs between the two versions this script runs under.
tinker: Any = importlib.import_module("tinker")
tt: Any = importlib.import_module("tinker.types")
request_conv: Any = importlib.import_module("tinker.proto.request_conv")
response_conv: Any = importlib.import_module("tinker.proto.response_conv")
pb: Any = importlib.import_module("tinker.proto.tinker_public_pb2")

HERE = Path(__file__).parent
VERSION = ".".join(tinker.__version__.split(".")[:2])
IS_038 = VERSION == "0.38"
SENTINEL = -99999.0


def _json_float(x: float) -> float | str:
    return "NaN" if math.isnan(x) else x


def _tensor_json(td: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dtype": td.dtype,
        "shape": None if td.shape is None else list(td.shape),
        "data": [_json_float(x) for x in np.asarray(td.to_numpy()).reshape(-1).tolist()]
        if td.sparse_crow_indices is None
        else [_json_float(x) for x in td._numpy.reshape(-1).tolist()],
    }
    if td.sparse_crow_indices is not None:
        out["sparse_crow_indices"] = list(td.sparse_crow_indices)
        out["sparse_col_indices"] = list(td.sparse_col_indices)
    return out


def _chunk_json(chunk: Any) -> dict[str, Any]:
    if isinstance(chunk, tt.EncodedTextChunk):
        return {"type": "encoded_text", "tokens": list(chunk.tokens)}
    assert isinstance(chunk, tt.ImageChunk)
    return {
        "type": "image",
        "data_hex": chunk.data.hex(),
        "format": chunk.format,
        "expected_tokens": chunk.expected_tokens,
    }


def _request_json(req: Any, forward_only: bool) -> dict[str, Any]:
    inp = req.forward_backward_input
    return {
        "model_id": req.model_id,
        "seq_id": req.seq_id,
        "forward_only": forward_only,
        "loss_fn": inp.loss_fn,
        "loss_fn_config": None if inp.loss_fn_config is None else dict(inp.loss_fn_config),
        "data": [
            {
                "chunks": [_chunk_json(c) for c in d.model_input.chunks],
                "loss_fn_inputs": {k: _tensor_json(v) for k, v in d.loss_fn_inputs.items()},
            }
            for d in inp.data
        ],
    }


# ---------------------------------------------------------------------------
# forward_backward requests (the SDK's encoder)
# ---------------------------------------------------------------------------


def _requests() -> dict[str, tuple[Any, bool]]:
    text = tt.Datum(
        model_input=tt.ModelInput.from_ints([151644, 872, 198, 9707, 0, 2147483647]),
        loss_fn_inputs={
            "target_tokens": tt.TensorData(data=[872, 198, 9707, 0, 2147483647, 5], dtype="int64"),
            "weights": tt.TensorData(data=[0.0, 0.0, 1.0, 1.0, 0.5, 1.0], dtype="float32"),
        },
    )
    # Image chunk then text; [T, K] top-k style targets in sparse CSR (as the SDK's
    # auto-sparsification sends them), sparse float weights too.
    image = tt.Datum(
        model_input=tt.ModelInput(
            chunks=[
                tt.ImageChunk(
                    data=b"\x89PNG\r\n\x1a\n-not-really", format="png", expected_tokens=2
                ),
                tt.EncodedTextChunk(tokens=[11, 12]),
            ]
        ),
        loss_fn_inputs={
            "target_tokens": tt.TensorData(
                data=[7, 8, 9],
                dtype="int64",
                shape=[4, 3],
                sparse_crow_indices=[0, 1, 1, 3, 3],
                sparse_col_indices=[2, 0, 1],
            ),
            "weights": tt.TensorData(
                data=[1.0, 0.25],
                dtype="float32",
                shape=[4, 3],
                sparse_crow_indices=[0, 0, 1, 2, 2],
                sparse_col_indices=[1, 2],
            ),
        },
    )
    ce = tt.ForwardBackwardRequest(
        forward_backward_input=tt.ForwardBackwardInput(data=[text, image], loss_fn="cross_entropy"),
        model_id="sess-1:train:0",
        seq_id=1,
    )
    rl = tt.Datum(
        model_input=tt.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={
            "target_tokens": tt.TensorData(data=[2, 3, 4], dtype="int64"),
            "logprobs": tt.TensorData(data=[-0.5, -1.25, -3.0], dtype="float32"),
            "advantages": tt.TensorData(data=[0.75, 0.75, 0.75], dtype="float32"),
        },
    )
    ppo = tt.ForwardBackwardRequest(
        forward_backward_input=tt.ForwardBackwardInput(
            data=[rl],
            loss_fn="ppo",
            loss_fn_config={"clip_low_threshold": 0.8, "clip_high_threshold": 1.2},
        ),
        model_id="sess-1:train:0",
        seq_id=7,
    )
    cases: dict[str, tuple[Any, bool]] = {"fwdbwd_ce": (ce, False), "fwdbwd_ppo": (ppo, False)}
    if IS_038:
        cases["fwdbwd_forward"] = (ce, True)
    return cases


def _encode_request(req: Any, forward_only: bool) -> bytes:
    msg = request_conv.forward_backward_request_to_proto(req)
    if forward_only:
        msg.forward_only = True  # what 0.38's AsyncTrainingResource.forward_backward does
    body: bytes = msg.SerializeToString()
    return body


def _spans_request() -> tuple[bytes, dict[str, Any]]:
    """0.38: a datum with provenance spans (we must decode it and drop the spans)."""
    datum = tt.Datum(
        model_input=tt.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": tt.TensorData(data=[2, 3, 4], dtype="int64")},
        model_input_spans=[
            tt.PromptProvenanceSpan(sequence_id="s:0:0", offset=0, length=2),
            tt.SampledProvenanceSpan(sequence_id="s:0:0", offset=0, length=1),
        ],
        loss_fn_input_spans=[tt.SampledProvenanceSpan(sequence_id="s:0:0", offset=0, length=3)],
    )
    req = tt.ForwardBackwardRequest(
        forward_backward_input=tt.ForwardBackwardInput(data=[datum], loss_fn="importance_sampling"),
        model_id="sess-1:train:0",
        seq_id=2,
    )
    return _encode_request(req, False), _request_json(req, False)


# ---------------------------------------------------------------------------
# ForwardBackwardOutput (built with the SDK's proto classes; decoded by the SDK)
# ---------------------------------------------------------------------------


def _batched(arrays: list[np.ndarray], dtype: int, trailing: list[int]) -> Any:
    offsets = np.cumsum([0] + [a.nbytes for a in arrays]).astype("<i8")
    return pb.BatchedTensor(
        data=b"".join(a.tobytes() for a in arrays),
        offsets=offsets.tobytes(),
        dtype=dtype,
        trailing_shape=trailing,
    )


def _outputs() -> dict[str, Any]:
    # The canonical shape a server sends: one record, float32 logprobs.
    lp = [np.array([-0.5, -1.5, -2.25], "<f4"), np.array([-0.125], "<f4")]
    canonical = pb.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        loss_fn_outputs=[
            pb.ArrayRecord(num_datums=2, fields={"logprobs": _batched(lp, pb.DTYPE_FLOAT32, [])})
        ],
        metrics={"loss:sum": 3.5},
    )
    # int32 and bfloat16 fields, [T, K] trailing shape, two chunks, a qualified type name.
    bf16 = np.array([0x3F80, 0xC000, 0x3E80, 0xBF00], "<u2")  # 1.0, -2.0, 0.25, -0.5
    chunk1 = pb.ArrayRecord(
        num_datums=2,
        fields={
            "logprobs": _batched(
                [np.array([[-1.0, -2.0], [-3.0, -4.0]], "<f4"), np.array([[-5.0, -6.0]], "<f4")],
                pb.DTYPE_FLOAT32,
                [2],
            ),
            "token_ids": _batched(
                [np.array([5, 6], "<i4"), np.array([2147483647], "<i4")], pb.DTYPE_INT32, []
            ),
            "scores": _batched([bf16[:3], bf16[3:]], pb.DTYPE_BFLOAT16, []),
            "counts": _batched(
                [np.array([1, 2**40], "<i8"), np.array([3], "<i8")], pb.DTYPE_INT64, []
            ),
        },
    )
    chunk2 = pb.ArrayRecord(
        num_datums=1,
        fields={
            "logprobs": _batched([np.array([[-7.0, -8.0]], "<f4")], pb.DTYPE_FLOAT32, [2]),
            "token_ids": _batched([np.array([9], "<i4")], pb.DTYPE_INT32, []),
            "scores": _batched([bf16[:1]], pb.DTYPE_BFLOAT16, []),
            "counts": _batched([np.array([4], "<i8")], pb.DTYPE_INT64, []),
        },
    )
    mixed = pb.ForwardBackwardOutput(
        loss_fn_output_type="tinker.losses:TorchLossReturn",
        loss_fn_outputs=[chunk1, chunk2],
        metrics={"loss:sum": 2.0, "ntokens:sum": 8.0},
    )
    # num_datums with no fields (a server that dropped the outputs), and no outputs at all.
    fieldless = pb.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        loss_fn_outputs=[pb.ArrayRecord(num_datums=3)],
        metrics={"loss:sum": 0.5},
    )
    empty = pb.ForwardBackwardOutput(metrics={"loss:sum": 0.0})
    return {
        "fwdbwd_output_canonical": canonical,
        "fwdbwd_output_mixed": mixed,
        "fwdbwd_output_fieldless": fieldless,
        "fwdbwd_output_empty": empty,
    }


def _output_json(body: bytes) -> dict[str, Any]:
    out = response_conv.deserialize_forward_backward_output(body)
    return {
        "loss_fn_output_type": out.loss_fn_output_type,
        "metrics": dict(out.metrics),
        "loss_fn_outputs": [
            {k: _tensor_json(v) for k, v in d.items()} for d in out.loss_fn_outputs
        ],
    }


# ---------------------------------------------------------------------------
# SampleResponse (built with the SDK's proto classes; decoded by the SDK)
# ---------------------------------------------------------------------------


def _topk(rows: list[list[tuple[int, float]] | None], k: int) -> Any:
    ids = np.zeros((len(rows), k), "<i4")
    lps = np.full((len(rows), k), SENTINEL, "<f4")
    for i, row in enumerate(rows):
        for j, (tok, lp) in enumerate(row or []):
            ids[i, j], lps[i, j] = tok, lp
    kwargs = {"token_ids": ids.tobytes(), "logprobs": lps.tobytes(), "k": k}
    kwargs["length" if IS_038 else "prompt_length"] = len(rows)
    cls = pb.TopkLogprobs if IS_038 else pb.TopkPromptLogprobs
    return cls(**kwargs)


def _samples() -> dict[str, Any]:
    seqs = [
        pb.SampledSequence(
            stop_reason=pb.STOP_REASON_LENGTH,
            tokens=np.array([17, 2147483647, 0], "<i4").tobytes(),
            logprobs=np.array([-0.25, -1.5, -0.0078125], "<f4").tobytes(),
        ),
        pb.SampledSequence(stop_reason=pb.STOP_REASON_STOP, tokens=np.array([4], "<i4").tobytes()),
    ]
    plain = pb.SampleResponse(sequences=seqs)
    rows: list[list[tuple[int, float]] | None] = [
        None,
        [(5, -0.125), (6, -2.0), (7, -4.5)],
        [(8, -0.5)],  # two trailing sentinel cells
        [(0, -1.0), (9, -3.0)],  # token 0 with a real logprob is not a sentinel
    ]
    prompt = pb.SampleResponse(
        sequences=seqs[:1],
        prompt_logprobs=np.array([np.nan, -2.0, -0.5, np.nan], "<f4").tobytes(),
        topk_prompt_logprobs=_topk(rows, 3),
    )
    cases = {"sample_plain": plain, "sample_prompt": prompt}
    if IS_038:
        # 0.38 extras we decode past: cache hits, per-sequence top-k, prompt alt tokens.
        extra = pb.SampleResponse()
        extra.CopyFrom(prompt)
        extra.prompt_cache_hit_tokens = 3
        extra.sequences[0].topk_sampled_logprobs.CopyFrom(_topk([[(1, -0.5)], None, None], 1))
        extra.target_prompt_logprobs.CopyFrom(
            pb.Tensor(dense=np.zeros(4, "<f4").tobytes(), dtype=pb.DTYPE_FLOAT32, shape=[4])
        )
        cases["sample_038_extras"] = extra
    return cases


def _sample_json(body: bytes) -> dict[str, Any]:
    resp = response_conv.deserialize_sample_response(body)
    return {
        "sequences": [
            {
                "stop_reason": s.stop_reason,
                "tokens": list(s.tokens),
                "logprobs": None if s.logprobs is None else list(s.logprobs),
            }
            for s in resp.sequences
        ],
        "prompt_logprobs": resp.prompt_logprobs,
        "topk_prompt_logprobs": None
        if resp.topk_prompt_logprobs is None
        else [None if r is None else [list(c) for c in r] for r in resp.topk_prompt_logprobs],
        "prompt_cache_hit_tokens": getattr(resp, "prompt_cache_hit_tokens", 0),
    }


# ---------------------------------------------------------------------------


def _descriptor() -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(fd)
    messages: dict[str, Any] = {}

    def walk(prefix: str, msgs: Any) -> None:
        for m in msgs:
            name = prefix + m.name
            messages[name] = [
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
            walk(name + ".", m.nested_type)

    walk("", fd.message_type)
    enums = {e.name: {v.name: v.number for v in e.value} for e in fd.enum_type}
    return {"syntax": fd.syntax, "messages": messages, "enums": enums}


def main() -> None:
    manifest: dict[str, Any] = {"tinker_version": tinker.__version__, "cases": {}}
    cases = manifest["cases"]

    def write(name: str, body: bytes, kind: str, value: Any) -> None:
        (HERE / f"{name}_{VERSION}.bin").write_bytes(body)
        cases[name] = {"kind": kind, "value": value}

    for name, (req, forward_only) in _requests().items():
        write(name, _encode_request(req, forward_only), "request", _request_json(req, forward_only))
    if IS_038:
        body, value = _spans_request()
        write("fwdbwd_spans", body, "request", value)
    try:
        request_conv.forward_backward_request_to_proto(
            tt.ForwardBackwardRequest(
                forward_backward_input=tt.ForwardBackwardInput(
                    data=[
                        tt.Datum(
                            model_input=tt.ModelInput(
                                chunks=[
                                    tt.ImageAssetPointerChunk(
                                        format="png", location="gs://x/y.png", expected_tokens=1
                                    )
                                ]
                            ),
                            loss_fn_inputs={},
                        )
                    ],
                    loss_fn="cross_entropy",
                ),
                model_id="m",
                seq_id=1,
            )
        )
    except ValueError as exc:
        manifest["image_asset_pointer_error"] = f"{type(exc).__name__}: {exc}"
    for name, msg in _outputs().items():
        body = msg.SerializeToString()
        write(name, body, "fwdbwd_output", _output_json(body))
    for name, msg in _samples().items():
        body = msg.SerializeToString()
        write(name, body, "sample", _sample_json(body))
    (HERE / f"manifest_{VERSION}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (HERE / f"descriptor_{VERSION}.json").write_text(json.dumps(_descriptor(), indent=1) + "\n")
    print(f"recorded {len(cases)} cases for tinker {tinker.__version__} into {HERE}")


if __name__ == "__main__":
    main()
