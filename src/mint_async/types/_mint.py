"""MinT extensions (protocol §4.10), sent with explicit nulls as the MinT SDK does."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from .._arrays import (
    ArrayInput,
    TensorDtype,
    as_array,
)
from ._base import AnyArray, NullsWireStruct, WireStruct, check_finite, invalid, sent
from ._model_input import ModelInput
from ._tensors import TensorData, coerce_tensor


class MintTensorData(NullsWireStruct, eq=False, kw_only=True):
    """MinT's own TensorData mirror: ``data``, ``shape`` (null when unset), ``dtype``.

    The MinT extension endpoints send and return this shape; ``data`` may be a
    bare number on the wire (a scalar loss), which decodes to a one-element array.
    """

    data: AnyArray
    shape: list[int] | None = None
    dtype: TensorDtype = "float32"

    if TYPE_CHECKING:

        def __init__(
            self,
            *,
            data: ArrayInput | float,
            shape: Sequence[int] | None = None,
            dtype: TensorDtype = "float32",
        ) -> None: ...

    def __post_init__(self) -> None:
        value: object = self.data
        if isinstance(value, int | float) and not isinstance(value, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
            value = [value]
        arr = as_array(value, self.dtype).reshape(-1)
        if self.shape is not None:
            self.shape = list(self.shape)
            if math.prod(self.shape) != arr.size:
                msg = (
                    f"shape {self.shape} needs {math.prod(self.shape)} values, data has {arr.size}"
                )
                raise invalid(msg)
        self.data = arr

    @classmethod
    def from_tensor_data(cls, td: TensorData | MintTensorData | object, key: str) -> MintTensorData:
        """Coerce a TensorData, array or list (dtype fixed by ``key`` as for Datum)."""
        if isinstance(td, MintTensorData):
            return td
        if not isinstance(td, TensorData):
            td = coerce_tensor(key, td)
        if td.is_sparse:
            return cls(data=td.to_numpy().reshape(-1), shape=list(td.dims), dtype=td.dtype)
        return cls(data=td.data, shape=td.shape, dtype=td.dtype)

    def to_numpy(self) -> npt.NDArray[Any]:
        """The tensor as a numpy array of its shape."""
        return self.data.reshape(self.shape) if self.shape is not None else self.data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MintTensorData):
            return NotImplemented
        return (
            self.dtype == other.dtype
            and self.shape == other.shape
            and bool(np.array_equal(self.data, other.data, equal_nan=True))
        )

    __hash__: ClassVar[None] = None  # type: ignore[assignment]


if TYPE_CHECKING:
    MintTensorInput: TypeAlias = MintTensorData | TensorData | ArrayInput
else:
    MintTensorInput = MintTensorData


class ReverseKLDatum(NullsWireStruct, kw_only=True):
    """One example for MinT's reverse-KL distillation (student vs reference prompt)."""

    student_input: ModelInput
    reference_input: ModelInput
    target_tokens: MintTensorData
    weights: MintTensorData

    if TYPE_CHECKING:

        def __init__(
            self,
            *,
            student_input: ModelInput,
            reference_input: ModelInput,
            target_tokens: MintTensorInput,
            weights: MintTensorInput,
        ) -> None: ...

    def __post_init__(self) -> None:
        self.target_tokens = MintTensorData.from_tensor_data(self.target_tokens, "target_tokens")
        self.weights = MintTensorData.from_tensor_data(self.weights, "weights")


class ForwardBackwardReverseKLRequest(
    NullsWireStruct, tag="mint_forward_backward_reverse_kl", tag_field="type", kw_only=True
):
    """Body of ``mint/forward_backward_reverse_kl`` (``seq_id`` is sent, possibly null)."""

    model_id: str
    reference_model_path: str
    data: list[ReverseKLDatum]
    temperature: float = 1.0
    seq_id: int | None = None

    def __post_init__(self) -> None:
        check_finite("temperature", self.temperature)
        if self.temperature <= 0:
            msg = f"temperature must be > 0, got {self.temperature}"
            raise invalid(msg)


class ReverseKLItemOutput(NullsWireStruct, kw_only=True):
    """Per-datum output of a reverse-KL step."""

    loss: MintTensorData


class ForwardBackwardReverseKLResponse(
    WireStruct, tag="mint_forward_backward_reverse_kl", tag_field="type", kw_only=True
):
    """Result of a reverse-KL forward/backward."""

    outputs: list[ReverseKLItemOutput]
    metrics: dict[str, float]


class InterpolateCheckpointsRequest(
    NullsWireStruct, tag="mint_interpolate_checkpoints", tag_field="type", kw_only=True
):
    """Body of ``mint/checkpoints/interpolate``: a weighted mix of sampler checkpoints."""

    source_paths: list[str]
    coefficients: list[float]
    output_path: str | None = None
    output_checkpoint_type: Literal["sampler"] = "sampler"

    def __post_init__(self) -> None:
        if not self.source_paths:
            msg = "source_paths must not be empty"
            raise invalid(msg)
        if len(self.coefficients) != len(self.source_paths):
            msg = "coefficients must have one entry per source path"
            raise invalid(msg)
        for c in self.coefficients:
            check_finite("coefficient", c)


class InterpolateCheckpointsResponse(
    WireStruct, tag="mint_interpolate_checkpoints", tag_field="type", kw_only=True
):
    """Result of a checkpoint interpolation."""

    path: str
    source_paths: list[str]
    coefficients: list[float]
    checkpoint_type: Literal["sampler"] = sent("sampler")
    has_rank_shards: bool = sent(False)
