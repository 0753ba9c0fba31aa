"""JSON encoding and decoding of the wire types, with a zero-copy path for numpy data.

Encoding: one module-level msgspec ``Encoder`` whose ``enc_hook`` turns every
numpy array into ``msgspec.Raw(orjson.dumps(array, OPT_SERIALIZE_NUMPY))`` — the
array's bytes go straight to JSON text in C, spliced into msgspec's output
without ``tolist()`` (measured within a few percent of orjson on the bare
arrays; see benchmarks/bench_codec.py).

Decoding: one typed ``Decoder`` per response type, built once and cached. Array
fields decode to numpy (``SampledSequence.tokens_np`` as int32, ``logprobs_np``
as float32; ``TensorData.data`` in its declared dtype): msgspec parses each JSON
array into a list and a ``dec_hook`` converts it (JSON numbers cannot skip that
step; the binary wire's arrays are views of the response bytes).

Every msgspec / orjson failure is translated to :class:`~mint_async.DecodeError`
here and nowhere else.

msgspec encoders with hooks are not thread-safe: the module encoder is used on
the event loop's thread; :func:`encode_threadsafe` keeps one encoder per thread
for encodes moved to a worker thread.
"""

from __future__ import annotations

import threading
from typing import Any, Final, TypeVar

import msgspec
import numpy as np
import orjson

from . import types as t
from ._exceptions import DecodeError

__all__ = [
    "decode",
    "decode_future_outcome",
    "decoder_for",
    "encode",
    "encode_threadsafe",
]

_T = TypeVar("_T")

_ORJSON_OPTS: Final = orjson.OPT_SERIALIZE_NUMPY

# Array aliases that decode straight into a fixed numpy dtype.
_FIXED_DTYPES: Final[dict[object, np.dtype[Any]]] = {
    t.Int32Array: np.dtype(np.int32),
    t.Float32Array: np.dtype(np.float32),
}


def _enc_hook(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        arr: np.ndarray[Any, Any] = obj  # pyright: ignore[reportUnknownVariableType]
        if type(arr) is not np.ndarray:
            arr = arr.view(np.ndarray)  # orjson serializes exact ndarrays only
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        if arr.dtype.kind == "f" and arr.dtype.itemsize not in (4, 8):
            arr = arr.astype(np.float32)
        return msgspec.Raw(orjson.dumps(arr, option=_ORJSON_OPTS))
    if isinstance(obj, np.generic):
        return obj.item()  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    msg = f"cannot encode objects of type {type(obj).__name__}"
    raise TypeError(msg)


# numpy 1.x converts an out-of-range Python int to a narrower dtype with a
# DeprecationWarning and wraps it; numpy 2 raises OverflowError. On 1.x the ids go
# through int64 and a range check instead, so a bad id never decodes as another one.
_NUMPY_WRAPS_INTS: Final = int(np.__version__.split(".", 1)[0]) < 2


def _checked_ints(obj: object, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    wide = np.asarray(obj, dtype=np.int64)  # beyond int64: OverflowError
    info = np.iinfo(dtype)
    if wide.size and (int(wide.min()) < info.min or int(wide.max()) > info.max):
        msg = f"values outside the range of {dtype}"
        raise OverflowError(msg)
    return wide.astype(dtype)


def _dec_hook(tp: object, obj: object) -> object:
    fixed = _FIXED_DTYPES.get(tp)
    if fixed is not None:
        try:
            if fixed.kind == "f":
                # Numbers beyond float32's range would become inf with a RuntimeWarning.
                with np.errstate(over="raise"):
                    arr = np.asarray(obj, dtype=fixed)
            elif _NUMPY_WRAPS_INTS:
                arr = _checked_ints(obj, fixed)
            else:
                arr = np.asarray(obj, dtype=fixed)  # out-of-range ints raise OverflowError
        except (TypeError, ValueError, OverflowError, FloatingPointError) as exc:
            msg = f"expected an array of {fixed} numbers, got {type(obj).__name__}: {exc}"
            raise ValueError(msg) from exc
        if arr.ndim != 1:
            # A bare number or nested lists would otherwise decode as a 0-d / 2-D array.
            msg = f"expected a flat array of numbers, got {arr.ndim} dimensions"
            raise ValueError(msg)
        return arr
    msg = f"unsupported type {tp!r}"
    raise NotImplementedError(msg)


_encoder: Final = msgspec.json.Encoder(enc_hook=_enc_hook)
_thread_local = threading.local()


def encode(obj: object) -> bytes:
    """Encode a wire Struct (or plain data) to JSON bytes. Event-loop thread only."""
    return _encoder.encode(obj)


def encode_threadsafe(obj: object) -> bytes:
    """Like :func:`encode`, with a per-thread encoder; for encodes run in worker threads."""
    enc: msgspec.json.Encoder | None = getattr(_thread_local, "encoder", None)
    if enc is None:
        enc = _thread_local.encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
    return enc.encode(obj)


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decoder_for(tp: type[_T]) -> msgspec.json.Decoder[_T]:
    """The one cached typed decoder of ``tp`` (built on first use, then reused)."""
    dec = _decoders.get(tp)
    if dec is None:
        dec = _decoders[tp] = msgspec.json.Decoder(tp, dec_hook=_dec_hook)
    return dec


def decode(tp: type[_T], data: bytes | bytearray | memoryview | str) -> _T:
    """Decode JSON into ``tp``; raises DecodeError (never msgspec's errors)."""
    try:
        return decoder_for(tp).decode(data)
    except msgspec.ValidationError as exc:
        msg = f"invalid {tp.__name__}: {exc}"
        raise DecodeError(msg) from exc
    except msgspec.DecodeError as exc:
        msg = f"malformed JSON for {tp.__name__}: {exc}"
        raise DecodeError(msg) from exc
    except RecursionError as exc:
        # msgspec parses nested values recursively (even ones it skips): hostile
        # nesting must not escape as anything but our typed error.
        msg = f"JSON for {tp.__name__} is nested too deeply"
        raise DecodeError(msg) from exc


# ---------------------------------------------------------------------------
# retrieve_future answers (protocol §5.4)
# ---------------------------------------------------------------------------


class _Probe(msgspec.Struct):
    """Just the keys that tell the four poll answers apart (everything else is skipped)."""

    type: object = None
    status: object = None
    error: object = msgspec.UNSET


_probe_decoder: Final = msgspec.json.Decoder(_Probe)

_SMALL_BODY: Final = 64 * 1024
"""Bodies up to this size are probed first; control answers are always small."""


_probe_needed: dict[type[Any], bool] = {}


def _needs_probe(tp: type[Any]) -> bool:
    """Whether a control answer could decode as ``tp`` (all its fields optional).

    For such types every answer is probed; for the rest, large bodies are decoded
    as the result straight away, and probed only if that fails — so a large
    result is parsed once.
    """
    known = _probe_needed.get(tp)
    if known is not None:
        return known
    samples = (
        b'{"type":"try_again","request_id":"r","queue_state":"active"}',
        b'{"status":"complete_metadata","response_payload_size":1}',
        b'{"error":"e","category":"user"}',
    )
    for body in samples:
        try:
            decoder_for(tp).decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
        _probe_needed[tp] = True
        return True
    _probe_needed[tp] = False
    return False


def decode_future_outcome(
    result_type: type[_T], body: bytes
) -> t.TryAgainResponse | t.CompleteMetadataResponse | t.RequestFailedResponse | _T:
    """Classify and decode one JSON ``retrieve_future`` answer, in the protocol's order.

    try_again, then complete_metadata, then ``{"error": ...}``, else the result.
    """
    if len(body) > _SMALL_BODY and not _needs_probe(result_type):
        try:
            result: _T = decoder_for(result_type).decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            pass  # maybe a (large) control answer: classify it below
        else:
            return result
    try:
        probe = _probe_decoder.decode(body)
    except msgspec.ValidationError as exc:
        msg = f"a retrieve_future answer must be a JSON object: {exc}"
        raise DecodeError(msg) from exc
    except msgspec.DecodeError as exc:
        msg = f"malformed JSON in a retrieve_future answer: {exc}"
        raise DecodeError(msg) from exc
    except RecursionError as exc:
        msg = "a retrieve_future answer is nested too deeply"
        raise DecodeError(msg) from exc
    if probe.type == "try_again":
        return decode(t.TryAgainResponse, body)
    if probe.status == "complete_metadata":
        return decode(t.CompleteMetadataResponse, body)
    if probe.error is not msgspec.UNSET:
        return _decode_failure(body)
    return decode(result_type, body)


def _decode_failure(body: bytes) -> t.RequestFailedResponse:
    """A failure answer; a non-string error or category is kept as text, not rejected."""
    try:
        return decode(t.RequestFailedResponse, body)
    except DecodeError:
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            msg = f"malformed JSON in a failure answer: {exc}"
            raise DecodeError(msg) from exc
        return t.RequestFailedResponse(
            error=str(raw.get("error")), category=str(raw.get("category") or "unknown")
        )
