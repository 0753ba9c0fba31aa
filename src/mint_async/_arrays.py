"""numpy (and optional torch) helpers used by the wire types.

Kept apart from ``mint_async.types`` so the Structs stay readable. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from ._exceptions import InvalidInputError

if TYPE_CHECKING:
    import torch

__all__ = [
    "FLOAT32_KEYS",
    "INT64_KEYS",
    "ArrayInput",
    "TensorDtype",
    "as_array",
    "dtype_for_key",
    "import_torch",
    "numpy_dtype",
    "tensor_dtype_of",
]

TensorDtype: TypeAlias = Literal["int64", "float32"]
"""The two dtypes of the public JSON wire."""

ArrayInput: TypeAlias = "npt.NDArray[Any] | Sequence[int] | Sequence[float] | torch.Tensor"
"""What the convenience constructors accept where the wire wants an array."""

_NUMPY_DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "int64": np.dtype(np.int64),
    "float32": np.dtype(np.float32),
}

INT64_KEYS: Final = frozenset({"target_tokens"})
"""``loss_fn_inputs`` keys whose plain-list values are coerced to int64 (protocol §8.2)."""

FLOAT32_KEYS: Final = frozenset(
    {
        "weights",
        "advantages",
        "logprobs",
        "clip_low_threshold",
        "clip_high_threshold",
        "sequence_ratio_mask",
    }
)
"""``loss_fn_inputs`` keys whose plain-list values are coerced to float32 (protocol §8.2)."""


def numpy_dtype(dtype: TensorDtype) -> np.dtype[Any]:
    """The numpy dtype of a wire dtype name; raises InvalidInputError for anything else."""
    try:
        return _NUMPY_DTYPES[dtype]
    except (KeyError, TypeError):
        msg = f"dtype must be 'int64' or 'float32', got {dtype!r}"
        raise InvalidInputError(msg) from None


def tensor_dtype_of(array: npt.NDArray[Any]) -> TensorDtype:
    """The wire dtype a numpy array maps to: integers and bools → int64, floats → float32."""
    kind = array.dtype.kind
    if kind in "iub":
        return "int64"
    if kind == "f":
        return "float32"
    msg = f"cannot send a numpy array of dtype {array.dtype} (only integer and float arrays)"
    raise InvalidInputError(msg)


def dtype_for_key(key: str, value: object) -> TensorDtype:
    """The dtype a ``loss_fn_inputs`` value gets: fixed by the key, else inferred from the value."""
    if key in INT64_KEYS:
        return "int64"
    if key in FLOAT32_KEYS:
        return "float32"
    if isinstance(value, np.ndarray):
        return tensor_dtype_of(value)  # pyright: ignore[reportUnknownArgumentType]
    torch = _torch_if_tensor(value)
    if torch is not None:
        return "float32" if value.is_floating_point() else "int64"  # type: ignore[attr-defined]
    return "int64" if _all_ints(value) else "float32"


def _all_ints(value: object) -> bool:
    if not isinstance(value, Sequence):
        return False
    return all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)  # pyright: ignore[reportUnknownVariableType]


def as_array(value: object, dtype: TensorDtype) -> npt.NDArray[Any]:
    """Turn a list, numpy array or torch tensor into a numpy array of ``dtype``.

    Arrays that already have the right dtype are used as they are (no copy); torch
    tensors are detached and moved to the CPU. Nothing goes through ``tolist()``.
    """
    np_dtype = numpy_dtype(dtype)
    if isinstance(value, np.ndarray):
        arr: npt.NDArray[Any] = value  # pyright: ignore[reportUnknownVariableType]
    elif _torch_if_tensor(value) is not None:
        arr = torch_to_numpy(value)
    elif isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.generic):
        msg = f"expected a list of numbers or an array, got {type(value).__name__}"
        raise InvalidInputError(msg)
    else:
        try:
            arr = np.asarray(cast("Sequence[Any]", value))
        except (ValueError, TypeError) as exc:
            msg = f"cannot make a {dtype} array from the given values: {exc}"
            raise InvalidInputError(msg) from None
    if arr.dtype != np_dtype:
        if arr.dtype.kind not in "iubf" and arr.size:
            msg = f"cannot make a {dtype} array from values of dtype {arr.dtype}"
            raise InvalidInputError(msg)
        if (
            np_dtype.kind == "i"
            and arr.dtype.kind == "f"
            and arr.size
            and not (np.all(np.isfinite(arr)) and np.array_equal(arr, np.trunc(arr)))
        ):
            msg = "int64 data must hold integers, got non-integral floats"
            raise InvalidInputError(msg)
        if (
            np_dtype.kind == "i"
            and arr.dtype.kind == "u"
            and arr.dtype.itemsize == 8
            and arr.size
            and arr.max() > np.iinfo(np.int64).max
        ):
            # uint64 values above 2**63 - 1 would wrap around silently.
            msg = "int64 data out of range (values above 2**63 - 1)"
            raise InvalidInputError(msg)
        try:
            # Floats beyond the target's range would become inf / garbage with a warning.
            with np.errstate(over="raise", invalid="raise"):
                arr = arr.astype(np_dtype)
        except FloatingPointError:
            msg = f"values out of {dtype} range"
            raise InvalidInputError(msg) from None
    return arr


def import_torch() -> Any:
    """Import torch, or raise an ImportError that says how to install it."""
    try:
        import torch  # noqa: PLC0415
    except ImportError as exc:
        msg = "PyTorch is not installed; install it with `pip install 'mint-async[torch]'`"
        raise ImportError(msg) from exc
    return torch


def _torch_if_tensor(value: object) -> Any:
    """The torch module if ``value`` is a torch tensor (torch already imported), else None."""
    import sys  # noqa: PLC0415

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return torch
    return None


def torch_to_numpy(tensor: Any) -> npt.NDArray[Any]:
    """A CPU numpy view (or copy, for bfloat16/GPU tensors) of a torch tensor."""
    torch = import_torch()
    t = tensor.detach()
    if t.is_sparse or t.layout != torch.strided:
        t = t.to_dense()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    result: npt.NDArray[Any] = t.cpu().contiguous().numpy()
    return result
