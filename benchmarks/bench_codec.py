"""Codec benchmark: mint_async vs the official tinker 0.22 SDK vs the raw limit, in one run.

Cases (protocol.md §4.3, §8.6):

* encode a ``cross_entropy`` forward_backward request, 16 x 8192 and 64 x 2048 tokens;
* decode a SampleResponse of 64 sequences x 4096 tokens with logprobs, to ready
  numpy arrays (tokens and logprobs of every sequence);
* the binary wire (protocol.md §9): the same 16 x 8192 request (encode, and the
  server's decode), a 16 x 8192 ForwardBackwardOutput (server encode, client
  decode) and the 64 x 4096 SampleResponse (client decode), each as JSON, protobuf
  and protobuf+zstd, with bytes on the wire; ``tinker_0.22_proto`` rows run the
  SDK's own protobuf encoder/decoder where it has one.

Rows per case: ``mint_async``; ``tinker_0.22`` (the SDK's own path: pydantic
``model_dump(mode="json")`` + httpx's JSON body encoding, and for decoding
``json.loads`` + the SDK's response conversion); the ``raw_limit`` (encode:
``orjson.dumps`` of the bare numpy arrays; decode: the fastest JSON → numpy path
we found, reported per candidate). One JSON line per row on stdout, a ratio
table on stderr. Run: ``python benchmarks/bench_codec.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from _common import emit, machine, summarize, table, time_interleaved
from mint_async import _binary, _codec
from mint_async import types as t

Arrays = list[npt.NDArray[Any]]


def make_batch(batch: int, seq: int, seed: int = 0) -> tuple[Arrays, Arrays, Arrays]:
    """Tokens, targets (int64) and weights (float32) of a cross_entropy batch."""
    rng = np.random.default_rng(seed)
    tokens = [rng.integers(0, 151_000, seq, dtype=np.int64) for _ in range(batch)]
    targets = [np.concatenate([tk[1:], rng.integers(0, 151_000, 1)]) for tk in tokens]
    weights = [(rng.random(seq) > 0.3).astype(np.float32) for _ in range(batch)]
    return tokens, targets, weights


def ours_encode(tokens: Arrays, targets: Arrays, weights: Arrays) -> Callable[[], bytes]:
    data = [
        t.Datum(
            model_input=t.ModelInput.from_ints(tk),
            loss_fn_inputs={"target_tokens": tg, "weights": w},
        )
        for tk, tg, w in zip(tokens, targets, weights, strict=True)
    ]
    req = t.ForwardBackwardRequest(
        forward_backward_input=t.ForwardBackwardInput(data=data, loss_fn="cross_entropy"),
        model_id="s:train:0",
        seq_id=1,
    )
    return lambda: _codec.encode(req)


def _tinker_request(tt: Any, tokens: Arrays, targets: Arrays, weights: Arrays) -> Any:
    """The same cross_entropy request, built with the official SDK's types."""
    data = [
        tt.Datum(
            model_input=tt.ModelInput.from_ints(tk.tolist()),
            loss_fn_inputs={
                "target_tokens": tt.TensorData.from_numpy(tg),
                "weights": tt.TensorData.from_numpy(w),
            },
        )
        for tk, tg, w in zip(tokens, targets, weights, strict=True)
    ]
    return tt.ForwardBackwardRequest(
        forward_backward_input=tt.ForwardBackwardInput(data=data, loss_fn="cross_entropy"),
        model_id="s:train:0",
        seq_id=1,
    )


def tinker_encode(tokens: Arrays, targets: Arrays, weights: Arrays) -> Callable[[], bytes] | None:
    try:
        import httpx

        tt: Any = importlib.import_module("tinker.types")
        compat: Any = importlib.import_module("tinker._compat")
        conv: Any = importlib.import_module("tinker.lib._pydantic_conv")
    except ImportError:
        return None
    req = _tinker_request(tt, tokens, targets, weights)

    def run() -> bytes:
        body = compat.model_dump(
            conv.to_pydantic_request(req), exclude_unset=False, exclude_none=True, mode="json"
        )
        return httpx.Request("POST", "http://x/api/v1/forward_backward", json=body).content

    return run


def raw_encode(tokens: Arrays, targets: Arrays, weights: Arrays) -> Callable[[], bytes]:
    arrays = [*tokens, *targets, *weights]
    opt = orjson.OPT_SERIALIZE_NUMPY
    return lambda: orjson.dumps(arrays, option=opt)


def sample_body(n_seq: int, n_tok: int, *, long_floats: bool, seed: int = 1) -> bytes:
    """A SampleResponse body; float32 logprobs in shortest form, or as Python doubles."""
    rng = np.random.default_rng(seed)
    seqs: list[dict[str, Any]] = []
    for _ in range(n_seq):
        toks = rng.integers(0, 151_000, n_tok, dtype=np.int64)
        lps = (-rng.exponential(1.0, n_tok)).astype(np.float32)
        seqs.append(
            {
                "stop_reason": "length",
                "tokens": toks,
                "logprobs": lps.astype(np.float64).tolist() if long_floats else lps,
            }
        )
    return orjson.dumps({"sequences": seqs, "type": "sample"}, option=orjson.OPT_SERIALIZE_NUMPY)


def ours_decode(body: bytes) -> Callable[[], object]:
    def run() -> object:
        out = _codec.decode_future_outcome(t.SampleResponse, body)
        assert isinstance(out, t.SampleResponse)
        return [(s.tokens_np, s.logprobs_np) for s in out.sequences]

    return run


def tinker_decode(body: bytes) -> Callable[[], object] | None:
    try:
        tt: Any = importlib.import_module("tinker.types")
        conv: Any = importlib.import_module("tinker.lib._pydantic_conv")
    except ImportError:
        return None

    def run() -> object:
        resp = conv.deserialize_json_response(json.loads(body), tt.SampleResponse)
        return [
            (np.asarray(s.tokens, dtype=np.int32), np.asarray(s.logprobs, dtype=np.float32))
            for s in resp.sequences
        ]

    return run


class _Seq(msgspec.Struct):
    stop_reason: str
    tokens: list[int]
    logprobs: list[float] | None = None


class _Resp(msgspec.Struct):
    sequences: list[_Seq]


class _SeqNp(msgspec.Struct):
    stop_reason: str
    tokens: npt.NDArray[np.int32]
    logprobs: npt.NDArray[np.float32]


class _RespNp(msgspec.Struct):
    sequences: list[_SeqNp]


_HOOK_DTYPES: dict[object, Any] = {
    npt.NDArray[np.int32]: np.int32,
    npt.NDArray[np.float32]: np.float32,
}


def _np_hook(tp: object, obj: object) -> object:
    return np.asarray(obj, dtype=_HOOK_DTYPES[tp])


def limit_decoders(body: bytes) -> dict[str, Callable[[], object]]:
    """Candidate JSON → numpy paths with no library logic; the fastest is the limit."""
    typed = msgspec.json.Decoder(_Resp)

    def orjson_numpy() -> object:
        doc = orjson.loads(body)
        return [
            (np.array(s["tokens"], dtype=np.int32), np.array(s["logprobs"], dtype=np.float32))
            for s in doc["sequences"]
        ]

    def msgspec_typed_numpy() -> object:
        doc = typed.decode(body)
        return [
            (np.array(s.tokens, dtype=np.int32), np.array(s.logprobs, dtype=np.float32))
            for s in doc.sequences
        ]

    def msgspec_untyped_numpy() -> object:
        doc = msgspec.json.decode(body)
        return [
            (np.array(s["tokens"], dtype=np.int32), np.array(s["logprobs"], dtype=np.float32))
            for s in doc["sequences"]
        ]

    hooked = msgspec.json.Decoder(_RespNp, dec_hook=_np_hook)

    def msgspec_hook_numpy() -> object:
        doc = hooked.decode(body)
        return [(s.tokens, s.logprobs) for s in doc.sequences]

    return {
        "msgspec(dec_hook→numpy)": msgspec_hook_numpy,
        "orjson+np.array": orjson_numpy,
        "msgspec(typed lists)+np.array": msgspec_typed_numpy,
        "msgspec(untyped)+np.array": msgspec_untyped_numpy,
    }


# ---------------------------------------------------------------------------
# The binary wire: JSON vs protobuf vs protobuf+zstd on the same payloads
# ---------------------------------------------------------------------------

_MAX = 1 << 30  # zstd_decompress bound, far above these payloads


def wire_request(tokens: Arrays, targets: Arrays, weights: Arrays) -> t.ForwardBackwardRequest:
    """The cross_entropy request of ``ours_encode``, as a value."""
    data = [
        t.Datum(
            model_input=t.ModelInput.from_ints(tk),
            loss_fn_inputs={"target_tokens": tg, "weights": w},
        )
        for tk, tg, w in zip(tokens, targets, weights, strict=True)
    ]
    return t.ForwardBackwardRequest(
        forward_backward_input=t.ForwardBackwardInput(data=data, loss_fn="cross_entropy"),
        model_id="s:train:0",
        seq_id=1,
    )


def wire_output(batch: int, seq: int, seed: int = 2) -> t.ForwardBackwardOutput:
    """A cross_entropy result: float32 logprobs per datum."""
    rng = np.random.default_rng(seed)
    outputs = [
        {"logprobs": t.TensorData.from_numpy((-rng.exponential(1.0, seq)).astype(np.float32))}
        for _ in range(batch)
    ]
    return t.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord", loss_fn_outputs=outputs, metrics={"loss:sum": 1.0}
    )


Codec = tuple[Callable[[object], bytes], Callable[[bytes], object]]


def wire_codecs(result_type: type[Any]) -> dict[str, Codec]:
    """Per wire: (encode value -> body, decode body -> value) as client/server call them."""

    def json_decode(body: bytes) -> object:
        if result_type is t.ForwardBackwardRequest:
            return _codec.decode(t.ForwardBackwardRequest, body)
        return _codec.decode_future_outcome(result_type, body)

    def proto_encode(value: object) -> bytes:
        if isinstance(value, t.ForwardBackwardRequest):
            return _binary.encode_forward_backward_request(value)
        if isinstance(value, t.ForwardBackwardOutput):
            return _binary.encode_forward_backward_output(value)
        assert isinstance(value, t.SampleResponse)
        return _binary.encode_sample_response(value)

    def proto_decode(body: bytes) -> object:
        if result_type is t.ForwardBackwardRequest:
            return _binary.decode_forward_backward_request(body)
        return _binary.decode_result(result_type, body)

    return {
        "json": (_codec.encode, json_decode),
        "proto": (proto_encode, proto_decode),
        "proto+zstd": (
            lambda v: _binary.zstd_compress(proto_encode(v)),
            lambda body: proto_decode(_binary.zstd_decompress(body, max_size=_MAX)),
        ),
    }


def tinker_proto_encode(
    tokens: Arrays, targets: Arrays, weights: Arrays
) -> Callable[[], bytes] | None:
    """tinker 0.22's own protobuf request encoder (used when ``proto_write_fwdbwd`` is on)."""
    try:
        tt: Any = importlib.import_module("tinker.types")
        request_conv: Any = importlib.import_module("tinker.proto.request_conv")
    except ImportError:
        return None
    req = _tinker_request(tt, tokens, targets, weights)

    def run() -> bytes:
        body: bytes = request_conv.forward_backward_request_to_proto(req).SerializeToString()
        return body

    return run


def tinker_proto_decode(body: bytes, result_type: type[Any]) -> Callable[[], object] | None:
    """tinker 0.22's own protobuf result decoder, to ready numpy arrays."""
    try:
        response_conv: Any = importlib.import_module("tinker.proto.response_conv")
    except ImportError:
        return None
    if result_type is t.SampleResponse:
        return lambda: [
            (s.tokens_np, s.logprobs_np)
            for s in response_conv.deserialize_sample_response(body).sequences
        ]
    return lambda: response_conv.deserialize_forward_backward_output(body)


def wire_section(repeat: int) -> list[list[object]]:
    """Time every (payload, direction, wire); one JSON line per row, ratio rows returned."""
    request = wire_request(*make_batch(16, 8192))
    sample = _codec.decode(t.SampleResponse, sample_body(64, 4096, long_floats=False))
    payloads: list[tuple[str, object, type[Any], bool]] = [
        ("fwdbwd_request_16x8192", request, t.ForwardBackwardRequest, True),
        ("fwdbwd_output_16x8192", wire_output(16, 8192), t.ForwardBackwardOutput, True),
        ("sample_64x4096", sample, t.SampleResponse, False),
    ]
    ratio_rows: list[list[object]] = []
    for name, value, result_type, with_encode in payloads:
        codecs = wire_codecs(result_type)
        bodies = {wire: enc(value) for wire, (enc, _) in codecs.items()}
        decoders: dict[str, Callable[[], object] | None] = {
            w: partial(dec, bodies[w]) for w, (_, dec) in codecs.items()
        }
        if result_type is not t.ForwardBackwardRequest:
            decoders["tinker_0.22_proto"] = tinker_proto_decode(bodies["proto"], result_type)
        directions: list[tuple[str, dict[str, Callable[[], object] | None]]] = [
            ("decode", decoders)
        ]
        if with_encode:
            encoders: dict[str, Callable[[], object] | None] = {
                w: partial(enc, value) for w, (enc, _) in codecs.items()
            }
            if result_type is t.ForwardBackwardRequest:
                encoders["tinker_0.22_proto"] = tinker_proto_encode(*make_batch(16, 8192))
            directions.insert(0, ("encode", encoders))
        for direction, candidates in directions:
            case = f"wire_{direction}_{name}"
            fns = {k: v for k, v in candidates.items() if v is not None}
            rows = {k: summarize(v) for k, v in time_interleaved(fns, repeat=repeat).items()}
            for impl, stats in rows.items():
                size = len(bodies.get(impl, bodies["proto"]))
                emit({"case": case, "impl": impl, "bytes": size, **stats})
            json_ms = rows["json"]["median_ms"]
            ratio_rows.append(
                [
                    case,
                    *(f"{rows[w]['median_ms']:.2f}" for w in codecs),
                    *(f"{len(bodies[w]):,}" for w in codecs),
                    f"{json_ms / rows['proto']['median_ms']:.1f}x",
                ]
            )
    return ratio_rows


def _ratio_row(
    case: str, rows: dict[str, dict[str, float]], limit: float, limit_name: str
) -> list[object]:
    ours = rows["mint_async"]["median_ms"]
    theirs = rows.get("tinker_0.22", {}).get("median_ms")
    return [
        case,
        f"{ours:.1f}",
        "-" if theirs is None else f"{theirs:.1f}",
        f"{limit:.1f} ({limit_name})",
        "-" if theirs is None else f"{theirs / ours:.1f}x",
        f"{ours / limit:.2f}x",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    repeat: int = args.repeat
    emit({"bench": "codec", "machine": machine()})
    ratio_rows: list[list[object]] = []

    for batch, seq in ((16, 8192), (64, 2048)):
        case = f"encode_fwdbwd_{batch}x{seq}"
        arrays = make_batch(batch, seq)
        candidates: dict[str, Callable[[], object] | None] = {
            "mint_async": ours_encode(*arrays),
            "tinker_0.22": tinker_encode(*arrays),
            "raw_limit": raw_encode(*arrays),
        }
        fns = {k: v for k, v in candidates.items() if v is not None}
        for name in candidates.keys() - fns.keys():
            emit({"case": case, "impl": name, "skipped": "tinker not installed"})
        rows = {k: summarize(v) for k, v in time_interleaved(fns, repeat=repeat).items()}
        for name, stats in rows.items():
            body_bytes = fns[name]()
            assert isinstance(body_bytes, bytes)
            emit({"case": case, "impl": name, "bytes": len(body_bytes), **stats})
        ratio_rows.append(_ratio_row(case, rows, rows["raw_limit"]["median_ms"], "orjson(arrays)"))

    for long_floats in (False, True):
        case = "decode_sample_64x4096" + ("_double_text" if long_floats else "")
        body = sample_body(64, 4096, long_floats=long_floats)
        candidates = {
            "mint_async": ours_decode(body),
            "tinker_0.22": tinker_decode(body),
        }
        fns = {k: v for k, v in candidates.items() if v is not None}
        for name in candidates.keys() - fns.keys():
            emit({"case": case, "impl": name, "skipped": "tinker not installed"})
        limits = {f"limit:{k}": v for k, v in limit_decoders(body).items()}
        samples = time_interleaved({**fns, **limits}, repeat=repeat)
        rows = {k: summarize(v) for k, v in samples.items()}
        for name, stats in rows.items():
            emit({"case": case, "impl": name, "bytes": len(body), **stats})
        best_name = min(limits, key=lambda k: rows[k]["median_ms"])
        best = rows[best_name]["median_ms"]
        emit({"case": case, "impl": "raw_limit", "fastest": best_name, "median_ms": best})
        ratio_rows.append(_ratio_row(case, rows, best, best_name.removeprefix("limit:")))

    table(
        "codec (median ms; speedup = tinker/ours; vs limit = ours/limit)",
        ["case", "mint_async", "tinker 0.22", "raw limit", "speedup", "vs limit"],
        ratio_rows,
    )
    table(
        "binary wire (median ms, bytes on the wire; speedup = json/proto)",
        ["case", "json", "proto", "proto+zstd", "json B", "proto B", "zstd B", "speedup"],
        wire_section(repeat),
    )


if __name__ == "__main__":
    main()
