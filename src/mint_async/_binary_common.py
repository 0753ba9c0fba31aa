"""What the protobuf codec modules share: wire constants, dtype tables, the decode boundary.

Private to :mod:`mint_async._binary` and :mod:`mint_async._binary_results`.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any, Final, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt
from google.protobuf import message as pb_message

from . import types as t
from ._exceptions import DecodeError, InvalidInputError
from ._proto import tinker_public_pb2 as pb

__all__ = [
    "BF16",
    "F32",
    "FROM_PB_DTYPE",
    "I32",
    "I64",
    "INT32_MAX",
    "INT32_MIN",
    "MAX_DATUMS",
    "PROTOBUF_ACCEPT",
    "PROTOBUF_CONTENT_TYPE",
    "TOPK_SENTINEL_LOGPROB",
    "TO_PB_DTYPE",
    "ZSTD_CONTENT_ENCODING",
    "Buffer",
    "check_int32",
    "decoding",
    "frombuffer",
    "parse",
    "tensor_from_pb",
    "tensor_to_pb",
    "widen",
]

PROTOBUF_CONTENT_TYPE: Final = "application/x-protobuf"
"""Content-Type of protobuf bodies and results."""

PROTOBUF_ACCEPT: Final = "application/x-protobuf, application/json"
"""The Accept header tinker 0.22 sends when polling forward/forward_backward/sample results."""

ZSTD_CONTENT_ENCODING: Final = "zstd"
"""Content-Encoding of a zstd-compressed forward_backward body (0.38, ``proto_compress_fwdbwd``)."""

TOPK_SENTINEL_LOGPROB: Final = -99999.0
"""Logprob of an empty top-k cell (whose token id is 0)."""

MAX_DATUMS: Final = 1 << 20
"""Most per-datum outputs one ForwardBackwardOutput may claim (bounds ``num_datums``)."""

Buffer: TypeAlias = bytes | bytearray | memoryview
"""What the decoders accept (protobuf parses any buffer without copying it first)."""

_M = TypeVar("_M", bound=pb_message.Message)

# Explicit little-endian dtypes: the wire is LE whatever the host is.
I32: Final = np.dtype("<i4")
I64: Final = np.dtype("<i8")
F32: Final = np.dtype("<f4")
BF16: Final = np.dtype("<u2")  # the upper half of a float32

TO_PB_DTYPE: Final[dict[str, tuple[pb.DType.ValueType, np.dtype[Any]]]] = {
    "float32": (pb.DTYPE_FLOAT32, F32),
    "int64": (pb.DTYPE_INT64, I64),
}
"""Public dtype -> (proto dtype, numpy dtype of the bytes)."""

FROM_PB_DTYPE: Final[dict[int, tuple[np.dtype[Any], t.TensorDtype]]] = {
    pb.DTYPE_FLOAT32: (F32, "float32"),
    pb.DTYPE_INT64: (I64, "int64"),
    pb.DTYPE_INT32: (I32, "int64"),
    pb.DTYPE_BFLOAT16: (BF16, "float32"),
}
"""Proto dtype -> (numpy dtype of the bytes, public dtype after :func:`widen`)."""

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1


@contextmanager
def decoding(what: str) -> Generator[None]:
    """The one place where decode failures become DecodeError.

    Protobuf's parse errors and the Structs' InvalidInputError are translated; the
    decoders check sizes, offsets and enums themselves before numpy could raise
    (the property tests feed them garbage to hold them to that).
    """
    try:
        yield
    except DecodeError:
        raise
    except pb_message.DecodeError as exc:
        msg = f"malformed protobuf {what}: {exc}"
        raise DecodeError(msg) from exc
    except InvalidInputError as exc:  # a Struct rejected a decoded value
        msg = f"invalid {what}: {exc}"
        raise DecodeError(msg) from exc


def parse(message_type: type[_M], data: Buffer) -> _M:
    """Parse ``data`` as ``message_type``, within :func:`decoding`."""
    # upb parses any buffer in place; the stubs only say bytes.
    return message_type.FromString(cast("bytes", data))


def frombuffer(buf: bytes, dtype: np.dtype[Any], what: str) -> npt.NDArray[Any]:
    """A read-only array over ``buf`` (no copy); DecodeError unless the length fits."""
    if len(buf) % dtype.itemsize:
        msg = f"{what}: {len(buf)} bytes is not a whole number of {dtype.itemsize}-byte items"
        raise DecodeError(msg)
    return np.frombuffer(buf, dtype=dtype)


def widen(arr: npt.NDArray[Any], pb_dtype: int) -> npt.NDArray[Any]:
    """int32 → int64 and bfloat16 → float32 (exact, as the SDKs do); others unchanged."""
    if pb_dtype == pb.DTYPE_INT32:
        return arr.astype(np.int64)
    if pb_dtype == pb.DTYPE_BFLOAT16:
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def check_int32(value: int, what: str) -> int:
    """``value``, or InvalidInputError when an int32 field cannot hold it."""
    if not INT32_MIN <= value <= INT32_MAX:
        msg = f"{what} must fit in int32 for the protobuf wire, got {value}"
        raise InvalidInputError(msg)
    return value


def tensor_to_pb(td: t.TensorData, out: pb.Tensor) -> None:
    """Fill ``out`` with ``td`` (dense, or sparse CSR as it is)."""
    code, dtype = TO_PB_DTYPE[td.dtype]
    out.dtype = code
    if td.shape is not None:
        out.shape.extend(td.shape)
    values = td.data.astype(dtype, copy=False).tobytes()
    if td.sparse_crow_indices is None:
        out.dense = values
        return
    csr = out.sparse_csr
    csr.values = values
    csr.crow_indices = np.asarray(td.sparse_crow_indices, dtype=I64).tobytes()
    csr.col_indices = np.asarray(td.sparse_col_indices, dtype=I64).tobytes()


def tensor_from_pb(msg: pb.Tensor) -> t.TensorData:
    """A TensorData of a protobuf Tensor (sparse CSR stays sparse; int32/bf16 widened)."""
    known = FROM_PB_DTYPE.get(msg.dtype)
    if known is None:
        msg_ = f"unsupported tensor dtype {msg.dtype}"
        raise DecodeError(msg_)
    raw_dtype, dtype = known
    shape = list(msg.shape) or None
    if msg.WhichOneof("encoding") == "sparse_csr":
        csr = msg.sparse_csr
        return t.TensorData(
            data=widen(frombuffer(csr.values, raw_dtype, "sparse values"), msg.dtype),
            dtype=dtype,
            shape=shape,
            sparse_crow_indices=frombuffer(csr.crow_indices, I64, "crow_indices").tolist(),
            sparse_col_indices=frombuffer(csr.col_indices, I64, "col_indices").tolist(),
        )
    data = widen(frombuffer(msg.dense, raw_dtype, "tensor data"), msg.dtype)
    return t.TensorData(data=data, dtype=dtype, shape=shape)
