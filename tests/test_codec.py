"""The codec: property-based round trips, and hostile input never escapes as anything but DecodeError."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mint_async import DecodeError, _codec
from mint_async import types as t

_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

token_ids = st.integers(min_value=0, max_value=2**31 - 1)
f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
names = st.text(min_size=1, max_size=12)


@st.composite
def model_inputs(draw: st.DrawFn) -> t.ModelInput:
    chunks: list[t.ModelInputChunk] = []
    for kind in draw(st.lists(st.sampled_from(["text", "np", "image", "pointer"]), max_size=4)):
        if kind == "text":
            chunks.append(t.EncodedTextChunk(tokens=draw(st.lists(token_ids, max_size=20))))
        elif kind == "np":
            chunks.append(
                t.EncodedTextChunk(
                    tokens=np.array(draw(st.lists(token_ids, max_size=20)), dtype=np.int64)
                )
            )
        elif kind == "image":
            chunks.append(
                t.ImageChunk(
                    data=draw(st.binary(max_size=32)),
                    format=draw(st.sampled_from(["png", "jpeg"])),
                    expected_tokens=draw(st.none() | st.integers(0, 100)),
                )
            )
        else:
            chunks.append(
                t.ImageAssetPointerChunk(
                    format="jpeg", location=draw(names), expected_tokens=draw(st.integers(0, 9))
                )
            )
    return t.ModelInput(chunks=chunks)


@st.composite
def tensors(draw: st.DrawFn, rows: int | None = None) -> t.TensorData:
    n = rows if rows is not None else draw(st.integers(0, 16))
    if draw(st.booleans()):
        data: list[Any] = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
        dtype: t.TensorDtype = "int64"
    else:
        data = draw(st.lists(f32, min_size=n, max_size=n))
        dtype = "float32"
    shape = draw(st.sampled_from([None, [n]])) if rows is None else [n]
    return t.TensorData(data=data, dtype=dtype, shape=shape)


@st.composite
def datums(draw: st.DrawFn) -> t.Datum:
    tokens = draw(st.lists(token_ids, min_size=1, max_size=16))
    keys = draw(st.lists(names, max_size=3, unique=True))
    return t.Datum(
        model_input=t.ModelInput.from_ints(tokens),
        loss_fn_inputs={k: draw(tensors(rows=len(tokens))) for k in keys},
    )


sampling_params = st.builds(
    t.SamplingParams,
    max_tokens=st.none() | st.integers(0, 4096),
    seed=st.none() | st.integers(0, 2**63),
    stop=st.none() | names | st.lists(names, max_size=3) | st.lists(token_ids, max_size=3),
    temperature=st.floats(0, 5),
    top_k=st.just(-1) | st.integers(1, 100),
    top_p=st.floats(0.01, 1),
)

adam_params = st.builds(
    t.AdamParams,
    learning_rate=st.floats(0, 1),
    beta1=st.floats(0, 0.999),
    beta2=st.floats(0, 0.999),
    eps=st.floats(0, 1e-3),
    weight_decay=st.floats(0, 1),
    grad_clip_norm=st.floats(0, 10),
)


@st.composite
def sample_responses(draw: st.DrawFn) -> t.SampleResponse:
    seqs: list[t.SampledSequence] = []
    for _ in range(draw(st.integers(0, 4))):
        toks = draw(st.lists(token_ids, max_size=12))
        lps = draw(st.none() | st.lists(f32, min_size=len(toks), max_size=len(toks)))
        seqs.append(
            t.SampledSequence(
                stop_reason=draw(st.sampled_from(["stop", "length"])),
                tokens_np=toks,
                logprobs_np=lps,
            )
        )
    plp = draw(st.none() | st.lists(st.none() | st.floats(-50, 0), max_size=6))
    topk = draw(
        st.none()
        | st.lists(
            st.none() | st.lists(st.tuples(token_ids, st.floats(-50, 0)), max_size=3), max_size=4
        )
    )
    return t.SampleResponse(sequences=seqs, prompt_logprobs=plp, topk_prompt_logprobs=topk)


@st.composite
def fb_outputs(draw: st.DrawFn) -> t.ForwardBackwardOutput:
    outs = [{"logprobs": draw(tensors())} for _ in range(draw(st.integers(0, 3)))]
    metrics = draw(
        st.dictionaries(names.map(lambda s: f"{s}:sum"), st.floats(-1e6, 1e6), max_size=3)
    )
    return t.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord", loss_fn_outputs=outs, metrics=metrics
    )


@st.composite
def fb_requests(draw: st.DrawFn) -> t.ForwardBackwardRequest:
    return t.ForwardBackwardRequest(
        forward_backward_input=t.ForwardBackwardInput(
            data=draw(st.lists(datums(), max_size=3)),
            loss_fn=draw(st.sampled_from(sorted(t.LOSS_FNS))),
            loss_fn_config=draw(st.none() | st.dictionaries(names, st.floats(-10, 10), max_size=2)),
        ),
        model_id=draw(names),
        seq_id=draw(st.integers(1, 2**31 - 1)),
    )


@st.composite
def sample_requests(draw: st.DrawFn) -> t.SampleRequest:
    return t.SampleRequest(
        num_samples=draw(st.integers(1, 8)),
        prompt=draw(model_inputs()),
        sampling_params=draw(sampling_params),
        sampling_session_id=draw(names),
        seq_id=draw(st.integers(0, 2**40)),
        prompt_logprobs=draw(st.booleans()),
        topk_prompt_logprobs=draw(st.integers(0, 20)),
    )


ROUND_TRIP: list[tuple[type[Any], st.SearchStrategy[Any]]] = [
    (t.ModelInput, model_inputs()),
    (t.TensorData, tensors()),
    (t.Datum, datums()),
    (t.SamplingParams, sampling_params),
    (t.AdamParams, adam_params),
    (t.SampleResponse, sample_responses()),
    (t.ForwardBackwardOutput, fb_outputs()),
    (t.ForwardBackwardRequest, fb_requests()),
    (t.SampleRequest, sample_requests()),
    (
        t.LoraConfig,
        st.builds(t.LoraConfig, rank=st.integers(1, 64), seed=st.none() | st.integers(0, 99)),
    ),
    (
        t.TryAgainResponse,
        st.builds(
            t.TryAgainResponse,
            request_id=names,
            queue_state=st.sampled_from(["active", "paused_capacity", "paused_rate_limit"]),
            queue_state_reason=st.none() | names,
        ),
    ),
]


@pytest.mark.parametrize(("tp", "strategy"), ROUND_TRIP, ids=[tp.__name__ for tp, _ in ROUND_TRIP])
def test_round_trip(tp: type[Any], strategy: st.SearchStrategy[Any]) -> None:
    """Any valid value encodes and decodes back to an equal value."""

    @_settings
    @given(strategy)
    def check(value: Any) -> None:
        assert _codec.decode(tp, _codec.encode(value)) == value

    check()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

DECODED_TYPES = [tp for tp, _ in ROUND_TRIP] + [
    t.CheckpointsListResponse,
    t.TrainingRunsResponse,
    t.UntypedAPIFuture,
    t.GetInfoResponse,
    t.OptimStepResponse,
    t.ForwardBackwardReverseKLResponse,
    t.TelemetrySendRequest,
]


@pytest.mark.parametrize("tp", DECODED_TYPES, ids=[tp.__name__ for tp in DECODED_TYPES])
def test_garbage_raises_only_decode_error(tp: type[Any]) -> None:
    """Random bytes and wrong-typed JSON either decode or raise DecodeError, nothing else."""

    @_settings
    @given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
    def check(body: bytes) -> None:
        with contextlib.suppress(DecodeError):
            _codec.decode(tp, body)

    check()


@_settings
@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_future_outcome_garbage(body: bytes) -> None:
    """Poll answers that are garbage raise DecodeError only."""
    with contextlib.suppress(DecodeError):
        _codec.decode_future_outcome(t.SampleResponse, body)


@pytest.mark.parametrize(
    "field_values",
    [
        {"data": "abc"},
        {"data": [1, 2], "shape": [5]},
        {"data": [1.5], "dtype": "int64"},
        {"data": [[1, 2], [3]], "dtype": "int64"},
        {"data": [1], "dtype": "float64"},
    ],
)
def test_invalid_tensor_json_is_decode_error(field_values: dict[str, Any]) -> None:
    """Values that fail __post_init__ validation surface as DecodeError when decoding."""
    body = orjson.dumps({"dtype": "int64", **field_values})
    with pytest.raises(DecodeError):
        _codec.decode(t.TensorData, body)


class TestFutureOutcome:
    def test_order_of_discrimination(self) -> None:
        """try_again, complete_metadata and error answers are told apart from results."""
        assert isinstance(
            _codec.decode_future_outcome(
                t.OptimStepResponse, b'{"type":"try_again","request_id":"r"}'
            ),
            t.TryAgainResponse,
        )
        meta = _codec.decode_future_outcome(
            t.OptimStepResponse, b'{"status":"complete_metadata","response_payload_size":9}'
        )
        assert isinstance(meta, t.CompleteMetadataResponse) and meta.response_payload_size == 9
        err = _codec.decode_future_outcome(
            t.OptimStepResponse, b'{"error":"bad","category":"nonsense"}'
        )
        assert isinstance(err, t.RequestFailedResponse) and err.error_category == "unknown"
        ok = _codec.decode_future_outcome(t.OptimStepResponse, b'{"metrics":{"x:mean":1}}')
        assert ok == t.OptimStepResponse(metrics={"x:mean": 1.0})

    def test_non_string_error_is_still_a_failure(self) -> None:
        """An `error` that is not a string still classifies as a failed request."""
        err = _codec.decode_future_outcome(t.SampleResponse, b'{"error":{"msg":"x"}}')
        assert isinstance(err, t.RequestFailedResponse) and "msg" in err.error

    def test_large_result_decodes_once(self) -> None:
        """A large result is decoded as the result type directly, and a large error is still found."""
        big = t.SampleResponse(
            sequences=[t.SampledSequence(stop_reason="length", tokens_np=np.arange(40_000))]
        )
        body = _codec.encode(big)
        assert len(body) > 64 * 1024
        assert _codec.decode_future_outcome(t.SampleResponse, body) == big
        big_error = orjson.dumps({"error": "x" * 100_000, "category": "server"})
        assert isinstance(
            _codec.decode_future_outcome(t.SampleResponse, big_error), t.RequestFailedResponse
        )
        big_error_opt = orjson.dumps({"error": "y" * 100_000})
        assert isinstance(
            _codec.decode_future_outcome(t.OptimStepResponse, big_error_opt),
            t.RequestFailedResponse,
        )


def test_encode_numpy_without_tolist(monkeypatch: pytest.MonkeyPatch) -> None:
    """Numpy data goes to JSON as arrays (orjson's C serializer), never via tolist()."""
    seen: list[object] = []
    real_dumps = orjson.dumps

    class SpyOrjson:
        OPT_SERIALIZE_NUMPY = orjson.OPT_SERIALIZE_NUMPY

        @staticmethod
        def dumps(obj: object, option: int = 0) -> bytes:
            seen.append(type(obj))
            return real_dumps(obj, option=option)

    monkeypatch.setattr(_codec, "orjson", SpyOrjson)
    tokens = np.arange(10**6, 10**6 + 1000, dtype=np.int64)
    weights = np.ones(1000, dtype=np.float32)
    d = t.Datum(
        model_input=t.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": tokens, "weights": weights},
    )
    body = _codec.encode(d)
    assert seen == [np.ndarray, np.ndarray, np.ndarray]
    parsed = orjson.loads(body)
    assert parsed["loss_fn_inputs"]["target_tokens"]["data"][:2] == [10**6, 10**6 + 1]
    assert parsed["model_input"]["chunks"][0]["tokens"][-1] == 10**6 + 999
    # the stored arrays are the caller's (no copy was made for matching dtypes)
    assert d.loss_fn_inputs["weights"].data is weights
    # Subclasses of ndarray are encoded too.
    assert orjson.loads(_codec.encode(np.arange(3).view(np.ma.MaskedArray))) == [0, 1, 2]


def test_non_contiguous_and_2d_arrays_encode_flat() -> None:
    """Strided or 2-D arrays are encoded flat, in row-major order."""
    arr = np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2]
    assert orjson.loads(_codec.encode(arr)) == arr.reshape(-1).tolist()
    assert orjson.loads(_codec.encode(np.float16(1.5))) == 1.5


def test_unencodable_object_raises() -> None:
    """Objects the codec does not know raise TypeError, never silently."""
    with pytest.raises(TypeError, match="cannot encode"):
        _codec.encode(object())


def test_encode_threadsafe_in_threads() -> None:
    """Encodes in worker threads use per-thread encoders and produce the same bytes."""
    req = t.SamplingParams(max_tokens=5)
    expected = _codec.encode(req)
    results: list[bytes] = []

    def work() -> None:
        results.extend(_codec.encode_threadsafe(req) for _ in range(50))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [expected] * 200
