"""The codec: property-based round trips, and hostile input never escapes as anything but DecodeError."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from mint_async import DecodeError, _codec
from mint_async import types as t

from .wire_strategies import WIRE_STRUCTS, garbage_bodies, strategy_for

_settings = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Modest: each test below runs once per wire Struct (84 of them today)."""

_IDS = [tp.__name__ for tp in WIRE_STRUCTS]


@pytest.mark.parametrize("tp", WIRE_STRUCTS, ids=_IDS)
def test_round_trip(tp: type[Any]) -> None:
    """Any valid value of every wire Struct encodes and decodes back to an equal value.

    Equality of numpy-backed fields is the types' own ``__eq__`` (dtype, shape,
    sparse indices and ``np.array_equal`` of the data); re-encoding the decoded
    value gives the same bytes, so a too-lenient ``__eq__`` cannot hide a change.
    """

    @_settings
    @given(strategy_for(tp))
    def check(value: Any) -> None:
        body = _codec.encode(value)
        decoded = _codec.decode(tp, body)
        assert type(decoded) is type(value)
        assert decoded == value
        assert _codec.encode(decoded) == body

    check()


@pytest.mark.parametrize("tp", WIRE_STRUCTS, ids=_IDS)
def test_garbage_raises_only_decode_error(tp: type[Any]) -> None:
    """Random bytes, random or deeply nested JSON and broken bodies raise DecodeError, or decode soundly."""

    @_settings
    @given(garbage_bodies(tp))
    def check(body: bytes) -> None:
        try:
            value = _codec.decode(tp, body)
        except DecodeError:
            return
        # What is accepted is a sound value: it survives its own round trip.
        assert isinstance(value, tp)
        assert _codec.decode(tp, _codec.encode(value)) == value

    check()


_OUTCOMES = (t.TryAgainResponse, t.CompleteMetadataResponse, t.RequestFailedResponse)


@pytest.mark.parametrize("tp", WIRE_STRUCTS, ids=_IDS)
def test_future_outcome_garbage(tp: type[Any]) -> None:
    """Garbage poll answers, whatever the result type, classify or raise DecodeError only."""

    @_settings
    @given(garbage_bodies(tp))
    def check(body: bytes) -> None:
        with contextlib.suppress(DecodeError):
            assert isinstance(_codec.decode_future_outcome(tp, body), (*_OUTCOMES, tp))

    check()


@pytest.mark.parametrize("tp", [t.SampleResponse, t.OptimStepResponse, t.TensorData])
@pytest.mark.parametrize("opener", ["[", '{"a":', '{"sequences":[', '{"error":['])
def test_deeply_nested_json_is_decode_error(tp: type[Any], opener: str) -> None:
    """JSON nested past the recursion limit is a DecodeError, small or past the large-body size."""
    for depth in (5_000, 40_000):
        body = (opener * depth).encode()
        with pytest.raises(DecodeError):
            _codec.decode(tp, body)
        with pytest.raises(DecodeError):
            _codec.decode_future_outcome(tp, body)


def test_decoder_for_is_cached_per_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """One typed decoder per type: built on first use, then the same object for every decode."""
    monkeypatch.setattr(_codec, "_decoders", {})
    monkeypatch.setattr(_codec, "_probe_needed", {})
    built: list[object] = []
    real = msgspec.json.Decoder

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(msgspec.json, "Decoder", counting)
    first = _codec.decoder_for(t.OptimStepResponse)
    assert _codec.decoder_for(t.OptimStepResponse) is first
    for _ in range(3):
        _codec.decode(t.OptimStepResponse, b'{"metrics":{"a:sum":1}}')
        _codec.decode_future_outcome(t.OptimStepResponse, b'{"metrics":{}}')
    other = _codec.decoder_for(t.SampledSequence)
    assert id(other) != id(first) and _codec.decoder_for(t.SampledSequence) is other
    # the cached decoder carries the numpy hook
    seq = other.decode(b'{"stop_reason":"stop","tokens":[7]}')
    assert seq.tokens_np.dtype == np.int32
    assert built == [t.OptimStepResponse, t.SampledSequence]


@pytest.mark.parametrize(
    "field_values",
    [
        {"data": "abc"},
        {"data": [1, 2], "shape": [5]},
        {"data": [1.5], "dtype": "int64"},
        {"data": [[1, 2], [3]], "dtype": "int64"},
        {"data": [1], "dtype": "float64"},
        {"data": [1e300], "dtype": "float32"},
        {"data": [1e300], "dtype": "int64"},
        {"data": [2**63], "dtype": "int64"},
    ],
)
def test_invalid_tensor_json_is_decode_error(field_values: dict[str, Any]) -> None:
    """Values that fail __post_init__ validation (or overflow the dtype) surface as DecodeError."""
    body = orjson.dumps({"dtype": "int64", **field_values})
    with pytest.raises(DecodeError):
        _codec.decode(t.TensorData, body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"stop_reason":"stop","tokens":5}',
        b'{"stop_reason":"stop","tokens":[[1],[2]]}',
        b'{"stop_reason":"stop","tokens":[2147483648]}',
        b'{"stop_reason":"stop","tokens":["a"]}',
        b'{"stop_reason":"stop","tokens":[1],"logprobs":-0.5}',
        b'{"stop_reason":"stop","tokens":[1],"logprobs":[1e300]}',
        b'{"stop_reason":"stop","tokens":[1],"logprobs":[-1.0,-2.0]}',
    ],
)
def test_invalid_sampled_sequence_json_is_decode_error(body: bytes) -> None:
    """Sampled tokens/logprobs must be flat arrays in range; anything else is a DecodeError."""
    with pytest.raises(DecodeError):
        _codec.decode(t.SampledSequence, body)


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
