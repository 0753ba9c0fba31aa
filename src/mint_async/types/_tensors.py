"""Tensors, data and forward/backward results (protocol §8.2)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import numpy as np
import numpy.typing as npt

from .._arrays import (
    ArrayInput,
    TensorDtype,
    as_array,
    dtype_for_key,
    import_torch,
    numpy_dtype,
    tensor_dtype_of,
    torch_to_numpy,
)

if TYPE_CHECKING:
    import torch
from ._base import LOSS_FNS, AnyArray, LossFnType, WireStruct, check_finite, invalid
from ._model_input import EncodedTextChunk, ModelInput
from ._provenance import ProvenanceSpan, check_tiling

if TYPE_CHECKING:
    import torch


class TensorData(WireStruct, eq=False, kw_only=True):
    """A flat array with a dtype and an optional shape (row-major), dense or sparse CSR.

    ``data`` is always a 1-D numpy array of the declared dtype; lists are
    converted once at construction, arrays of the right dtype are kept without a
    copy, and encoding never goes through ``tolist()``.

    Example::

        td = TensorData.from_numpy(np.zeros((2, 3), dtype=np.float32))
        assert td.shape == [2, 3] and td.to_numpy().shape == (2, 3)
    """

    data: AnyArray
    dtype: TensorDtype
    shape: list[int] | None = None
    sparse_crow_indices: list[int] | None = None
    sparse_col_indices: list[int] | None = None

    if TYPE_CHECKING:

        def __init__(
            self,
            *,
            data: ArrayInput,
            dtype: TensorDtype,
            shape: Sequence[int] | None = None,
            sparse_crow_indices: Sequence[int] | None = None,
            sparse_col_indices: Sequence[int] | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        arr = as_array(self.data, self.dtype)
        if self.shape is not None:
            shape = self.shape
            if not isinstance(shape, list):
                shape = self.shape = list(shape)  # pyright: ignore[reportUnknownArgumentType]
            if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
                msg = f"shape must be a list of non-negative ints, got {shape!r}"
                raise invalid(msg)
        elif arr.ndim > 1:
            self.shape = list(arr.shape)
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        self.data = arr
        if self.sparse_crow_indices is not None or self.sparse_col_indices is not None:
            self._check_sparse()
        elif self.shape is not None and math.prod(self.shape) != arr.size:
            msg = f"shape {self.shape} needs {math.prod(self.shape)} values, data has {arr.size}"
            raise invalid(msg)

    def _check_sparse(self) -> None:
        crow, col, shape = self.sparse_crow_indices, self.sparse_col_indices, self.shape
        if crow is None or col is None:
            msg = "sparse_crow_indices and sparse_col_indices must be given together"
            raise invalid(msg)
        if shape is None or len(shape) != 2:
            msg = "a sparse CSR tensor needs a 2-D shape"
            raise invalid(msg)
        self.sparse_crow_indices = crow = [int(x) for x in crow]
        self.sparse_col_indices = col = [int(x) for x in col]
        nnz = self.data.size
        if len(crow) != shape[0] + 1 or crow[0] != 0 or crow[-1] != nnz:
            msg = f"sparse_crow_indices must have {shape[0] + 1} entries from 0 to nnz={nnz}"
            raise invalid(msg)
        if any(b < a for a, b in itertools.pairwise(crow)):
            msg = "sparse_crow_indices must be non-decreasing"
            raise invalid(msg)
        if len(col) != nnz or any(c < 0 or c >= shape[1] for c in col):
            msg = f"sparse_col_indices must have nnz={nnz} entries in [0, {shape[1]})"
            raise invalid(msg)

    @property
    def is_sparse(self) -> bool:
        """Whether this tensor is sparse CSR."""
        return self.sparse_crow_indices is not None

    @property
    def dims(self) -> tuple[int, ...]:
        """The tensor's dimensions (``shape``, or ``(len(data),)`` when shape is omitted)."""
        return tuple(self.shape) if self.shape is not None else (int(self.data.size),)

    @classmethod
    def from_numpy(cls, array: npt.NDArray[Any]) -> TensorData:
        """A TensorData of ``array`` (int → int64, float → float32); no copy when the dtype fits."""
        arr = np.asarray(array)
        dtype = tensor_dtype_of(arr)
        return cls(data=arr, dtype=dtype, shape=list(arr.shape))

    @classmethod
    def from_torch(cls, tensor: torch.Tensor) -> TensorData:
        """A TensorData of a torch tensor (bfloat16/float16 are widened to float32)."""
        return cls.from_numpy(torch_to_numpy(tensor))

    @classmethod
    def from_torch_sparse(cls, tensor: torch.Tensor) -> TensorData:
        """A sparse CSR TensorData of a 2-D torch tensor when CSR is smaller, else dense."""
        arr = torch_to_numpy(tensor)
        return cls.from_numpy_sparse(arr)

    @classmethod
    def from_numpy_sparse(cls, array: npt.NDArray[Any]) -> TensorData:
        """A sparse CSR TensorData of a 2-D array when CSR is smaller, else dense."""
        arr = np.asarray(array)
        if arr.ndim != 2:
            return cls.from_numpy(arr)
        rows, cols = np.nonzero(arr)
        nnz = int(rows.size)
        if (arr.shape[0] + 1) + 2 * nnz >= arr.size:
            return cls.from_numpy(arr)
        crow = np.zeros(arr.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=arr.shape[0]), out=crow[1:])
        return cls(
            data=arr[rows, cols],
            dtype=tensor_dtype_of(arr),
            shape=list(arr.shape),
            sparse_crow_indices=crow.tolist(),
            sparse_col_indices=cols.tolist(),
        )

    def to_numpy(self) -> npt.NDArray[Any]:
        """The tensor as a numpy array of its shape (a view of ``data`` when dense)."""
        if self.sparse_crow_indices is None:
            return self.data.reshape(self.dims)
        assert self.shape is not None and self.sparse_col_indices is not None
        dense = np.zeros(self.shape, dtype=numpy_dtype(self.dtype))
        crow = np.asarray(self.sparse_crow_indices, dtype=np.int64)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(crow))
        dense[rows, np.asarray(self.sparse_col_indices, dtype=np.int64)] = self.data
        return dense

    def to_torch(self) -> torch.Tensor:
        """The tensor as a torch tensor (shares memory with ``data`` when dense)."""
        torch_mod = import_torch()
        return torch_mod.from_numpy(np.ascontiguousarray(self.to_numpy()))  # type: ignore[no-any-return]

    def tolist(self) -> list[int] | list[float]:
        """The flat data as a Python list (slow for big tensors; for display and tests)."""
        values: list[int] | list[float] = self.data.tolist()
        return values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorData):
            return NotImplemented
        return (
            self.dtype == other.dtype
            and self.dims == other.dims
            and self.sparse_crow_indices == other.sparse_crow_indices
            and self.sparse_col_indices == other.sparse_col_indices
            and bool(np.array_equal(self.data, other.data, equal_nan=self.dtype == "float32"))
        )

    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TensorData(dtype={self.dtype!r}, shape={list(self.dims)}, data={self.data!r})"


def coerce_tensor(key: str, value: object) -> TensorData:
    if isinstance(value, TensorData):
        return value
    dtype = dtype_for_key(key, value)
    arr = as_array(value, dtype)
    return TensorData(data=arr, dtype=dtype, shape=list(arr.shape))


if TYPE_CHECKING:
    LossFnInputValue: TypeAlias = TensorData | ArrayInput
else:
    LossFnInputValue = TensorData


class Datum(WireStruct, kw_only=True):
    """One training example: a ModelInput and its per-token loss-function inputs.

    ``loss_fn_inputs`` values may be TensorData, numpy arrays, torch tensors or
    plain lists; keys fix the dtype as the protocol says (``target_tokens`` →
    int64; ``weights``, ``advantages``, ``logprobs``, clip thresholds → float32).
    Each input's first dimension must equal the model input's length.

    Example::

        Datum(
            model_input=ModelInput.from_ints([1, 2, 3]),
            loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [0.0, 1.0, 1.0]},
        )
    """

    model_input: ModelInput
    loss_fn_inputs: dict[str, TensorData]
    model_input_spans: list[ProvenanceSpan] | None = None
    """[0.38] Provenance of the input tokens: runs tiling ``model_input`` (see :meth:`with_provenance`)."""
    loss_fn_input_spans: list[ProvenanceSpan] | None = None
    """[0.38] Provenance of the loss rows: runs tiling ``loss_fn_inputs["target_tokens"]``."""

    if TYPE_CHECKING:

        def __init__(
            self,
            *,
            model_input: ModelInput,
            loss_fn_inputs: Mapping[str, LossFnInputValue],
            model_input_spans: Sequence[ProvenanceSpan] | None = None,
            loss_fn_input_spans: Sequence[ProvenanceSpan] | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        inputs: Mapping[str, object] = self.loss_fn_inputs
        if not isinstance(inputs, Mapping):
            msg = "loss_fn_inputs must be a mapping of names to tensors"
            raise invalid(msg)
        coerced = {str(k): coerce_tensor(str(k), v) for k, v in inputs.items()}
        self.loss_fn_inputs = coerced
        if (self.model_input_spans is None) != (self.loss_fn_input_spans is None):
            msg = "provenance comes as a pair: set both model_input_spans and loss_fn_input_spans, or neither"
            raise invalid(msg)
        if self.model_input_spans is not None and self.loss_fn_input_spans is not None:
            self.model_input_spans = list(self.model_input_spans)
            self.loss_fn_input_spans = list(self.loss_fn_input_spans)
            # Tiling is checked where the lengths are known (no image chunks).
            known = known_length(self.model_input)
            if known is not None:
                check_tiling("model_input", self.model_input_spans, known)
            targets = coerced.get("target_tokens")
            if targets is not None and len(targets.dims) == 1:
                check_tiling("loss_fn_inputs", self.loss_fn_input_spans, targets.dims[0])
        length = known_length(self.model_input)
        if length is None:
            return
        for key, td in coerced.items():
            first = td.dims[0] if td.dims else 1
            if first != length:
                msg = (
                    f"loss_fn_inputs[{key!r}] has {first} rows but model_input has {length} "
                    "tokens (position i of model_input predicts target i)"
                )
                raise invalid(msg)

    def with_provenance(
        self,
        model_input: Sequence[ProvenanceSpan],
        loss_fn_inputs: Sequence[ProvenanceSpan],
    ) -> Datum:
        """A copy carrying provenance: ``model_input`` runs tile the input tokens,
        ``loss_fn_inputs`` runs tile ``target_tokens`` (tinker 0.38's spelling).

        Tiling is checked here, so a miscounted partition fails at the call site.

        Example::

            datum.with_provenance(
                model_input=[PromptProvenanceSpan(sequence_id=sid, length=3),
                             SampledProvenanceSpan(sequence_id=sid, length=2)],
                loss_fn_inputs=[PromptProvenanceSpan(sequence_id=sid, offset=1, length=2),
                                SampledProvenanceSpan(sequence_id=sid, length=3)],
            )
        """
        return Datum(
            model_input=self.model_input,
            loss_fn_inputs=self.loss_fn_inputs,
            model_input_spans=list(model_input),
            loss_fn_input_spans=list(loss_fn_inputs),
        )


def known_length(model_input: ModelInput) -> int | None:
    """The token length of ``model_input``, ``None`` if an image chunk does not say its own."""
    total = 0
    for chunk in model_input.chunks:
        if isinstance(chunk, EncodedTextChunk):
            total += len(chunk.tokens)
        elif chunk.expected_tokens is None:
            return None
        else:
            total += chunk.expected_tokens
    return total


class ForwardBackwardInput(WireStruct, kw_only=True):
    """The batch and loss function of one forward or forward_backward call."""

    data: list[Datum]
    loss_fn: LossFnType
    loss_fn_config: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.loss_fn not in LOSS_FNS:
            msg = f"unknown loss function {self.loss_fn!r}; expected one of {sorted(LOSS_FNS)}"
            raise invalid(msg)
        if self.loss_fn_config is not None:
            for key, value in self.loss_fn_config.items():
                check_finite(f"loss_fn_config[{key!r}]", value)


class ForwardBackwardOutput(WireStruct, kw_only=True):
    """The result of forward / forward_backward: per-datum outputs and reduced metrics.

    Metric keys are ``name:reduction`` (``loss:sum``); :attr:`loss` reads ``loss:sum``.
    """

    loss_fn_output_type: str
    loss_fn_outputs: list[dict[str, TensorData]]
    metrics: dict[str, float]

    @property
    def loss(self) -> float:
        """The summed loss (``metrics["loss:sum"]``), the MinT docs' ``result.loss``."""
        try:
            return self.metrics["loss:sum"]
        except KeyError:
            msg = f"the server reported no 'loss:sum' metric (metrics: {sorted(self.metrics)})"
            raise KeyError(msg) from None


ForwardBackwardResult: TypeAlias = ForwardBackwardOutput
"""The MinT docs' name for :class:`ForwardBackwardOutput`."""
