"""Every MinT / Tinker wire type, as msgspec Structs.

Field names, tags, defaults and which fields go on the wire follow
``protocol.md`` §4 and §8 (tinker 0.22, the version MinT pins), so that our
encoding of a value equals what the official SDK sends:

* optional fields whose value is ``None`` are **omitted**;
* fields with a non-None default (``temperature=1.0``, ``"overwrite": false``)
  are **always sent** — they are declared with :func:`_sent`, a default factory,
  because msgspec's ``omit_defaults`` leaves factory defaults alone;
* ``type`` discriminators are msgspec tags, always sent, checked when present;
* unknown fields in anything we decode are ignored (schema evolution).

Invalid values raise :class:`~mint_async.InvalidInputError` at construction
(``__post_init__``), so bad input never reaches the network.

User conveniences from the MinT docs live here too: ``ModelInput.from_ints``,
``TensorData.from_numpy``, ``AdamParams(betas=...)``,
``SamplingParams(stop_token_ids=...)``, ``ForwardBackwardOutput.loss`` and the
doc names of ``Checkpoint``/``TrainingRun`` fields.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeAlias, TypeVar, cast, get_args

import msgspec
import numpy as np
import numpy.typing as npt

from ._arrays import (
    ArrayInput,
    TensorDtype,
    as_array,
    dtype_for_key,
    import_torch,
    numpy_dtype,
    tensor_dtype_of,
    torch_to_numpy,
)
from ._exceptions import InvalidInputError, RequestErrorCategory

if TYPE_CHECKING:
    import torch

__all__ = [
    # model input
    "EncodedTextChunk",
    "ImageAssetPointerChunk",
    "ImageChunk",
    "ModelInput",
    "ModelInputChunk",
    # tensors and data
    "Datum",
    "LossFnType",
    "TensorData",
    "TensorDtype",
    "ForwardBackwardInput",
    "ForwardBackwardOutput",
    "ForwardBackwardResult",
    # parameters
    "AdamParams",
    "LoraConfig",
    "SamplingParams",
    "StopReason",
    "WandbConfig",
    # sampling results
    "SampleResponse",
    "SampleResult",
    "SampledSequence",
    # service / session
    "AuthTokenRequest",
    "AuthTokenResponse",
    "ClientConfigRequest",
    "ClientConfigResponse",
    "CreateSessionRequest",
    "CreateSessionResponse",
    "GetServerCapabilitiesResponse",
    "HealthResponse",
    "InitTrainerServerResponse",
    "ServerCapabilities",
    "SessionHeartbeatRequest",
    "SessionHeartbeatResponse",
    "SupportedModel",
    # models and training
    "CreateModelRequest",
    "CreateModelResponse",
    "ForwardBackwardRequest",
    "ForwardRequest",
    "GetInfoRequest",
    "GetInfoResponse",
    "ModelData",
    "OptimStepRequest",
    "OptimStepResponse",
    "UnloadModelRequest",
    "UnloadModelResponse",
    # weights
    "LoadWeightsRequest",
    "LoadWeightsResponse",
    "SaveWeightsForSamplerRequest",
    "SaveWeightsForSamplerResponse",
    "SaveWeightsForSamplerResponseInternal",
    "SaveWeightsRequest",
    "SaveWeightsResponse",
    "WeightsInfoRequest",
    "WeightsInfoResponse",
    # sampling
    "CreateSamplingSessionRequest",
    "CreateSamplingSessionResponse",
    "GetSamplerResponse",
    "SampleRequest",
    # futures
    "CompleteMetadataResponse",
    "FutureRetrieveRequest",
    "QueueState",
    "RequestErrorCategory",
    "RequestFailedResponse",
    "TryAgainResponse",
    "UntypedAPIFuture",
    # checkpoints and REST
    "AuditEventType",
    "AuditLogEntry",
    "AuditLogResponse",
    "Checkpoint",
    "CheckpointArchiveUrlResponse",
    "CheckpointFile",
    "CheckpointFilesResponse",
    "CheckpointType",
    "CheckpointsListResponse",
    "Cursor",
    "GetSessionResponse",
    "ListSessionsResponse",
    "ParsedCheckpointTinkerPath",
    "SessionProjectRequest",
    "SetCheckpointTTLRequest",
    "TrainingRun",
    "TrainingRunsResponse",
    # MinT extensions
    "ForwardBackwardReverseKLRequest",
    "ForwardBackwardReverseKLResponse",
    "InterpolateCheckpointsRequest",
    "InterpolateCheckpointsResponse",
    "MintTensorData",
    "ReverseKLDatum",
    "ReverseKLItemOutput",
    # telemetry
    "GenericEvent",
    "SessionEndEvent",
    "SessionStartEvent",
    "Severity",
    "TelemetryEvent",
    "TelemetryResponse",
    "TelemetrySendRequest",
    "UnhandledExceptionEvent",
]

_T = TypeVar("_T")

LossFnType: TypeAlias = Literal["cross_entropy", "importance_sampling", "ppo", "cispo", "dro"]
"""The loss functions of the tinker 0.22 protocol (the version MinT pins)."""

LOSS_FNS: Final[tuple[LossFnType, ...]] = get_args(LossFnType)

StopReason: TypeAlias = Literal["length", "stop"]
QueueState: TypeAlias = Literal["active", "paused_capacity", "paused_rate_limit", "unknown"]
CheckpointType: TypeAlias = Literal["training", "sampler", "external"]
AuditEventType: TypeAlias = Literal["all", "checkpoints", "projects", "teams", "organizations"]
Severity: TypeAlias = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

MAX_LORA_RANK: Final = 64
"""MinT's documented maximum LoRA rank."""

if TYPE_CHECKING:
    # Readers see what may be stored: the list a user passed, or a numpy array
    # (kept as is so it is encoded without tolist()).
    TokenSequence: TypeAlias = Sequence[int] | npt.NDArray[np.integer[Any]]
    Stop: TypeAlias = str | Sequence[str] | Sequence[int]
else:
    # What msgspec decodes into: a plain list.
    TokenSequence = list[int]
    Stop = str | list[str | int]

Int32Array: TypeAlias = npt.NDArray[np.int32]
Float32Array: TypeAlias = npt.NDArray[np.float32]

if TYPE_CHECKING:
    AnyArray: TypeAlias = npt.NDArray[Any]
else:
    # msgspec decodes these fields as plain lists; TensorData.__post_init__ then
    # converts once, in the declared dtype (msgspec would insist a dec_hook
    # returned an ndarray, forcing a float64 detour for float32 data).
    AnyArray = Any


def _sent(value: _T) -> _T:
    """A default that always goes on the wire (msgspec omits only plain defaults)."""
    result: _T = msgspec.field(default_factory=lambda: value)
    return result


def _sent_empty_dict() -> dict[str, str]:
    """An empty dict default that is still sent as ``{}``."""
    # Not `dict`: msgspec would recognise that factory and omit an empty value.
    result: dict[str, str] = msgspec.field(default_factory=lambda: {})  # noqa: PIE807
    return result


def _sent_empty_list() -> list[str]:
    """An empty list default that is still sent as ``[]``."""
    # Not `list`: msgspec would recognise that factory and omit an empty value.
    result: list[str] = msgspec.field(default_factory=lambda: [])  # noqa: PIE807
    return result


def _invalid(msg: str) -> InvalidInputError:
    return InvalidInputError(msg)


def _check_finite(name: str, value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        msg = f"{name} must be a finite number, got {value!r}"
        raise _invalid(msg)


def _check_int(name: str, value: object, *, minimum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"{name} must be an integer, got {value!r}"
        raise _invalid(msg)
    if minimum is not None and value < minimum:
        msg = f"{name} must be >= {minimum}, got {value}"
        raise _invalid(msg)


class _Wire(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every wire Struct: keyword-only, ``None`` fields omitted."""


class _NullsWire(msgspec.Struct, kw_only=True):
    """Base of the MinT extension requests, which the MinT SDK sends with explicit nulls."""


# ---------------------------------------------------------------------------
# Model input (protocol §8.1)
# ---------------------------------------------------------------------------


class EncodedTextChunk(_Wire, tag="encoded_text", tag_field="type", kw_only=True, eq=False):
    """A run of token ids. ``tokens`` may be a list or a numpy integer array."""

    tokens: TokenSequence

    def __post_init__(self) -> None:
        tokens: object = self.tokens
        if isinstance(tokens, np.ndarray):
            if tokens.dtype.kind not in "iu" or tokens.ndim != 1:  # pyright: ignore[reportUnknownMemberType]
                msg = "tokens must be a 1-D integer array"
                raise _invalid(msg)
        elif not isinstance(tokens, list):
            if isinstance(tokens, str | bytes) or not isinstance(tokens, Sequence):
                msg = f"tokens must be a sequence of ints, got {type(tokens).__name__}"
                raise _invalid(msg)
            self.tokens = list(tokens)  # pyright: ignore[reportUnknownArgumentType]

    @property
    def length(self) -> int:
        """Number of tokens."""
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncodedTextChunk):
            return NotImplemented
        a, b = self.tokens, other.tokens
        if isinstance(a, list) and isinstance(b, list):
            return a == b
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))

    __hash__: ClassVar[None] = None  # type: ignore[assignment]


class ImageChunk(_Wire, tag="image", tag_field="type", kw_only=True):
    """An inline image; ``data`` is raw bytes (base64 on the wire)."""

    data: bytes
    format: Literal["png", "jpeg"]
    expected_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.format not in ("png", "jpeg"):
            msg = f"image format must be 'png' or 'jpeg', got {self.format!r}"
            raise _invalid(msg)
        if self.expected_tokens is not None:
            _check_int("expected_tokens", self.expected_tokens, minimum=0)

    @property
    def length(self) -> int:
        """The advisory token count; required to compute a ModelInput's length."""
        if self.expected_tokens is None:
            msg = "ImageChunk.expected_tokens must be set to compute the length"
            raise _invalid(msg)
        return self.expected_tokens


class ImageAssetPointerChunk(_Wire, tag="image_asset_pointer", tag_field="type", kw_only=True):
    """An image the server fetches from ``location`` (a path or URL)."""

    format: Literal["png", "jpeg"]
    location: str
    expected_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.format not in ("png", "jpeg"):
            msg = f"image format must be 'png' or 'jpeg', got {self.format!r}"
            raise _invalid(msg)

    @property
    def length(self) -> int:
        """The advisory token count; required to compute a ModelInput's length."""
        if self.expected_tokens is None:
            msg = "ImageAssetPointerChunk.expected_tokens must be set to compute the length"
            raise _invalid(msg)
        return self.expected_tokens


ModelInputChunk: TypeAlias = EncodedTextChunk | ImageChunk | ImageAssetPointerChunk


class ModelInput(_Wire, kw_only=True):
    """A tokenized prompt: a list of chunks.

    Example::

        prompt = ModelInput.from_ints([1, 2, 3]).append_int(4)
        assert prompt.to_ints() == [1, 2, 3, 4] and prompt.length == 4
    """

    chunks: list[ModelInputChunk]

    @classmethod
    def from_ints(cls, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]) -> ModelInput:
        """One text chunk holding ``tokens`` (a list, or a numpy array kept without copying)."""
        return cls(chunks=[EncodedTextChunk(tokens=tokens)])

    @classmethod
    def empty(cls) -> ModelInput:
        """A ModelInput without chunks."""
        return cls(chunks=[])

    def to_ints(self) -> list[int]:
        """All token ids as one list; raises InvalidInputError if an image chunk is present."""
        out: list[int] = []
        for chunk in self.chunks:
            if not isinstance(chunk, EncodedTextChunk):
                msg = f"to_ints() needs text chunks only, found a {chunk.__class__.__name__}"
                raise _invalid(msg)
            tokens = chunk.tokens
            out.extend(tokens.tolist() if isinstance(tokens, np.ndarray) else tokens)
        return out

    @property
    def length(self) -> int:
        """Total number of tokens (images count their ``expected_tokens``)."""
        return sum(chunk.length for chunk in self.chunks)

    def context_length(self) -> int:
        """Total number of tokens (the MinT docs' name for :attr:`length`)."""
        return self.length

    def append(self, chunk: ModelInputChunk) -> ModelInput:
        """A new ModelInput with ``chunk`` added at the end."""
        return ModelInput(chunks=[*self.chunks, chunk])

    def append_chunks(self, chunks: Iterable[ModelInputChunk]) -> ModelInput:
        """A new ModelInput with ``chunks`` added at the end."""
        return ModelInput(chunks=[*self.chunks, *chunks])

    def append_tokens(self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]) -> ModelInput:
        """A new ModelInput with ``tokens`` added; merged into a trailing text chunk."""
        if self.chunks and isinstance(last := self.chunks[-1], EncodedTextChunk):
            merged = _concat_tokens(last.tokens, tokens)
            return ModelInput(chunks=[*self.chunks[:-1], EncodedTextChunk(tokens=merged)])
        return self.append(EncodedTextChunk(tokens=tokens))

    def append_int(self, token: int) -> ModelInput:
        """A new ModelInput with one more token."""
        return self.append_tokens([token])


def _concat_tokens(
    a: Sequence[int] | npt.NDArray[np.integer[Any]], b: Sequence[int] | npt.NDArray[np.integer[Any]]
) -> Sequence[int] | npt.NDArray[np.integer[Any]]:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.concatenate([np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)])
    return [*a, *b]


# ---------------------------------------------------------------------------
# Tensors (protocol §8.2)
# ---------------------------------------------------------------------------


class TensorData(_Wire, eq=False, kw_only=True):
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
                raise _invalid(msg)
        elif arr.ndim > 1:
            self.shape = list(arr.shape)
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        self.data = arr
        if self.sparse_crow_indices is not None or self.sparse_col_indices is not None:
            self._check_sparse()
        elif self.shape is not None and math.prod(self.shape) != arr.size:
            msg = f"shape {self.shape} needs {math.prod(self.shape)} values, data has {arr.size}"
            raise _invalid(msg)

    def _check_sparse(self) -> None:
        crow, col, shape = self.sparse_crow_indices, self.sparse_col_indices, self.shape
        if crow is None or col is None:
            msg = "sparse_crow_indices and sparse_col_indices must be given together"
            raise _invalid(msg)
        if shape is None or len(shape) != 2:
            msg = "a sparse CSR tensor needs a 2-D shape"
            raise _invalid(msg)
        self.sparse_crow_indices = crow = [int(x) for x in crow]
        self.sparse_col_indices = col = [int(x) for x in col]
        nnz = self.data.size
        if len(crow) != shape[0] + 1 or crow[0] != 0 or crow[-1] != nnz:
            msg = f"sparse_crow_indices must have {shape[0] + 1} entries from 0 to nnz={nnz}"
            raise _invalid(msg)
        if any(b < a for a, b in itertools.pairwise(crow)):
            msg = "sparse_crow_indices must be non-decreasing"
            raise _invalid(msg)
        if len(col) != nnz or any(c < 0 or c >= shape[1] for c in col):
            msg = f"sparse_col_indices must have nnz={nnz} entries in [0, {shape[1]})"
            raise _invalid(msg)

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


def _coerce_tensor(key: str, value: object) -> TensorData:
    if isinstance(value, TensorData):
        return value
    dtype = dtype_for_key(key, value)
    arr = as_array(value, dtype)
    return TensorData(data=arr, dtype=dtype, shape=list(arr.shape))


if TYPE_CHECKING:
    LossFnInputValue: TypeAlias = TensorData | ArrayInput
else:
    LossFnInputValue = TensorData


class Datum(_Wire, kw_only=True):
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

    if TYPE_CHECKING:

        def __init__(
            self, *, model_input: ModelInput, loss_fn_inputs: Mapping[str, LossFnInputValue]
        ) -> None: ...

    def __post_init__(self) -> None:
        inputs: Mapping[str, object] = self.loss_fn_inputs
        if not isinstance(inputs, Mapping):
            msg = "loss_fn_inputs must be a mapping of names to tensors"
            raise _invalid(msg)
        coerced = {str(k): _coerce_tensor(str(k), v) for k, v in inputs.items()}
        self.loss_fn_inputs = coerced
        length = _known_length(self.model_input)
        if length is None:
            return
        for key, td in coerced.items():
            first = td.dims[0] if td.dims else 1
            if first != length:
                msg = (
                    f"loss_fn_inputs[{key!r}] has {first} rows but model_input has {length} "
                    "tokens (position i of model_input predicts target i)"
                )
                raise _invalid(msg)


def _known_length(model_input: ModelInput) -> int | None:
    total = 0
    for chunk in model_input.chunks:
        if isinstance(chunk, EncodedTextChunk):
            total += len(chunk.tokens)
        elif chunk.expected_tokens is None:
            return None
        else:
            total += chunk.expected_tokens
    return total


class ForwardBackwardInput(_Wire, kw_only=True):
    """The batch and loss function of one forward or forward_backward call."""

    data: list[Datum]
    loss_fn: LossFnType
    loss_fn_config: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.loss_fn not in LOSS_FNS:
            msg = f"unknown loss function {self.loss_fn!r}; expected one of {sorted(LOSS_FNS)}"
            raise _invalid(msg)
        if self.loss_fn_config is not None:
            for key, value in self.loss_fn_config.items():
                _check_finite(f"loss_fn_config[{key!r}]", value)


class ForwardBackwardOutput(_Wire, kw_only=True):
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


# ---------------------------------------------------------------------------
# Parameters (protocol §8.5, §8.7, §8.8)
# ---------------------------------------------------------------------------


class AdamParams(_Wire, kw_only=True):
    """AdamW hyper-parameters of one ``optim_step``; all six fields are always sent.

    ``betas=(beta1, beta2)`` (the MinT docs' spelling) is accepted too; it sets
    ``beta1``/``beta2`` and is not sent itself.

    Example::

        AdamParams(learning_rate=5e-5, betas=(0.9, 0.999), eps=1e-8)
    """

    learning_rate: float = _sent(1e-4)
    beta1: float = _sent(0.9)
    beta2: float = _sent(0.95)
    eps: float = _sent(1e-12)
    weight_decay: float = _sent(0.0)
    grad_clip_norm: float = _sent(0.0)
    betas: tuple[float, float] | None = None
    """Input-only spelling of (beta1, beta2); always None after construction."""

    def __post_init__(self) -> None:
        if self.betas is not None:
            betas = tuple(self.betas)
            if len(betas) != 2:
                msg = f"betas must be a pair (beta1, beta2), got {self.betas!r}"
                raise _invalid(msg)
            self.beta1, self.beta2 = float(betas[0]), float(betas[1])
            self.betas = None
        for name in ("learning_rate", "beta1", "beta2", "eps", "weight_decay", "grad_clip_norm"):
            value = getattr(self, name)
            _check_finite(name, value)
            if value < 0:
                msg = f"{name} must be >= 0, got {value}"
                raise _invalid(msg)
        for name in ("beta1", "beta2"):
            if getattr(self, name) >= 1:
                msg = f"{name} must be in [0, 1), got {getattr(self, name)}"
                raise _invalid(msg)


class LoraConfig(_Wire, kw_only=True):
    """LoRA adapter configuration of a new training run."""

    rank: int
    seed: int | None = None
    train_unembed: bool = _sent(True)
    train_mlp: bool = _sent(True)
    train_attn: bool = _sent(True)

    def __post_init__(self) -> None:
        _check_int("rank", self.rank, minimum=1)
        if self.rank > MAX_LORA_RANK:
            msg = f"rank must be at most {MAX_LORA_RANK} on MinT, got {self.rank}"
            raise _invalid(msg)
        if self.seed is not None:
            _check_int("seed", self.seed)
        if not (self.train_unembed or self.train_mlp or self.train_attn):
            msg = "at least one of train_unembed, train_mlp, train_attn must be True"
            raise _invalid(msg)


class SamplingParams(_Wire, kw_only=True):
    """How to sample: ``temperature``, ``top_k``, ``top_p`` are always sent.

    ``stop`` takes strings or token ids; ``stop_token_ids=[...]`` (the MinT docs'
    spelling) is merged into ``stop`` and not sent itself.

    Example::

        SamplingParams(max_tokens=16, temperature=0.0, stop_token_ids=[eos_id])
    """

    max_tokens: int | None = None
    seed: int | None = None
    stop: Stop | None = None
    temperature: float = _sent(1.0)
    top_k: int = _sent(-1)
    top_p: float = _sent(1.0)
    stop_token_ids: list[int] | None = None
    """Input-only spelling of token stops; always None after construction."""

    def __post_init__(self) -> None:
        if self.max_tokens is not None:
            _check_int("max_tokens", self.max_tokens, minimum=0)
        if self.seed is not None:
            _check_int("seed", self.seed, minimum=0)
            if self.seed >= 2**64:
                msg = "seed must fit in 64 bits"
                raise _invalid(msg)
        _check_finite("temperature", self.temperature)
        if self.temperature < 0:
            msg = f"temperature must be >= 0, got {self.temperature}"
            raise _invalid(msg)
        _check_int("top_k", self.top_k)
        if self.top_k == 0 or self.top_k < -1:
            msg = f"top_k must be -1 (disabled) or >= 1, got {self.top_k}"
            raise _invalid(msg)
        _check_finite("top_p", self.top_p)
        if not 0 < self.top_p <= 1:
            msg = f"top_p must be in (0, 1], got {self.top_p}"
            raise _invalid(msg)
        self.stop = _normalise_stop(self.stop, self.stop_token_ids)
        self.stop_token_ids = None


def _as_items(value: object, what: str) -> list[object]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        msg = f"{what} must be a list, got {value!r}"
        raise _invalid(msg)
    return list(cast("Sequence[object]", value))


def _is_token_id(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _normalise_stop(stop: object, stop_token_ids: object) -> Stop | None:
    """``stop`` as a string, a list of strings or a list of token ids (with stop_token_ids merged)."""
    if stop_token_ids is not None:
        ids = _as_items(stop_token_ids, "stop_token_ids")
        if stop is None:
            stop = ids
        elif isinstance(stop, str) or any(isinstance(s, str) for s in _as_items(stop, "stop")):
            msg = "stop strings and stop_token_ids cannot be combined on the wire; pass one kind"
            raise _invalid(msg)
        else:
            stop = [*_as_items(stop, "stop"), *ids]
    if stop is None or isinstance(stop, str):
        return stop
    items = _as_items(stop, "stop (strings or token ids)")
    if all(isinstance(s, str) for s in items):
        return cast("list[str]", items)
    if all(_is_token_id(s) for s in items):
        return [int(cast("int", s)) for s in items]
    msg = f"stop must be all strings or all token ids, got {items!r}"
    raise _invalid(msg)


class WandbConfig(_Wire, kw_only=True):
    """Weights & Biases settings for ``create_lora_training_client(wandb=...)`` (MinT docs)."""

    project: str
    name: str | None = None


# ---------------------------------------------------------------------------
# Sampling results (protocol §8.6)
# ---------------------------------------------------------------------------


class SampledSequence(_Wire, dict=True, eq=False, kw_only=True):
    """One sampled sequence.

    ``tokens_np`` / ``logprobs_np`` are numpy arrays decoded straight from the
    wire; ``tokens`` / ``logprobs`` are Python lists made on first access (the
    official SDK's spelling).
    """

    stop_reason: StopReason
    tokens_np: Int32Array = msgspec.field(name="tokens")
    logprobs_np: Float32Array | None = msgspec.field(default=None, name="logprobs")

    if TYPE_CHECKING:

        def __init__(
            self,
            *,
            stop_reason: StopReason,
            tokens_np: ArrayInput,
            logprobs_np: ArrayInput | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        if self.stop_reason not in ("length", "stop"):
            msg = f"stop_reason must be 'length' or 'stop', got {self.stop_reason!r}"
            raise _invalid(msg)
        tokens = self.tokens_np
        if not (isinstance(tokens, np.ndarray) and tokens.dtype == np.int32):  # pyright: ignore[reportUnnecessaryComparison]
            wide = as_array(tokens, "int64")
            if wide.size and (wide.min() < 0 or wide.max() >= 2**31):
                msg = "token ids must be in [0, 2**31)"
                raise _invalid(msg)
            self.tokens_np = wide.astype(np.int32)
        if self.logprobs_np is not None:
            self.logprobs_np = as_array(self.logprobs_np, "float32")
            if self.logprobs_np.shape != self.tokens_np.shape:
                msg = "logprobs must have one entry per token"
                raise _invalid(msg)

    @cached_property
    def tokens(self) -> list[int]:
        """The generated token ids as a list."""
        values: list[int] = self.tokens_np.tolist()
        return values

    @cached_property
    def logprobs(self) -> list[float] | None:
        """The log-probability of each generated token, if requested."""
        if self.logprobs_np is None:
            return None
        values: list[float] = self.logprobs_np.tolist()
        return values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampledSequence):
            return NotImplemented
        same_logprobs = (self.logprobs_np is None) == (other.logprobs_np is None) and (
            self.logprobs_np is None
            or other.logprobs_np is None
            or np.array_equal(self.logprobs_np, other.logprobs_np, equal_nan=True)
        )
        return (
            self.stop_reason == other.stop_reason
            and np.array_equal(self.tokens_np, other.tokens_np)
            and bool(same_logprobs)
        )

    __hash__: ClassVar[None] = None  # type: ignore[assignment]


TopkEntry: TypeAlias = tuple[int, float]


class SampleResponse(_Wire, tag="sample", tag_field="type", kw_only=True):
    """The result of ``sample``: one sequence per sample, plus prompt logprobs when asked."""

    sequences: list[SampledSequence]
    prompt_logprobs: list[float | None] | None = None
    topk_prompt_logprobs: list[list[TopkEntry] | None] | None = None
    prompt_cache_hit_tokens: int | None = None
    """[0.38] How many prompt tokens hit the server's prompt cache."""

    @property
    def prompt_logprobs_np(self) -> Float32Array | None:
        """``prompt_logprobs`` as a float32 array, NaN where the server computed none."""
        if self.prompt_logprobs is None:
            return None
        return np.array(
            [math.nan if v is None else v for v in self.prompt_logprobs], dtype=np.float32
        )


class SampleResult(SampleResponse, tag="sample", tag_field="type", kw_only=True):
    """A SampleResponse plus the ``policy_version`` of the sampler replica (MinT docs)."""

    policy_version: int | None = None


# ---------------------------------------------------------------------------
# Service and session (protocol §4.1)
# ---------------------------------------------------------------------------


class ClientConfigRequest(_Wire, kw_only=True):
    """Body of ``client/config``."""

    sdk_version: str


class ClientConfigResponse(_Wire, kw_only=True):
    """Server-driven client settings; every field optional with the SDK's default."""

    pjwt_auth_enabled: bool = False
    credential_default_source: str = "api_key"
    sample_dispatch_bytes_semaphore_size: int = 10_485_760
    inflight_response_bytes_semaphore_size: int = 52_428_800
    parallel_fwdbwd_chunks: bool = True
    proto_write_fwdbwd: bool = False
    grpc_target: str | None = None
    enable_grpc_retrieve_future: bool = False
    billing_exception_max_pause_duration_sec: int = 3600
    sample_no_retries: bool = False
    use_pyqwest_transport: bool = True
    proto_compress_fwdbwd: bool = False
    fwdbwd_max_chunk_len: int = 1024
    fwdbwd_max_chunk_bytes_count: int = 5_000_000
    fwdbwd_dispatch_bytes_semaphore_size: int = 50_000_000
    sample_enable_stuck_detection: bool = True
    sample_max_concurrent_requests: int = 2000
    sample_use_retrieve_futures: bool = False


class AuthTokenRequest(_Wire, kw_only=True):
    """Body of ``auth/token`` (empty; the credential travels in ``X-API-Key``)."""


class AuthTokenResponse(_Wire, kw_only=True):
    """A short-lived JWT to send in ``X-API-Key`` instead of the key."""

    jwt: str


class CreateSessionRequest(_Wire, tag="create_session", tag_field="type", kw_only=True):
    """Body of ``create_session``; ``tags`` and ``user_metadata`` are always sent."""

    tags: list[str] = _sent_empty_list()
    user_metadata: dict[str, str] = _sent_empty_dict()
    sdk_version: str
    project_id: str | None = None


class CreateSessionResponse(_Wire, tag="create_session", tag_field="type", kw_only=True):
    """A new session id, and messages the server wants shown."""

    session_id: str
    info_message: str | None = None
    warning_message: str | None = None
    error_message: str | None = None


class SessionHeartbeatRequest(_Wire, tag="session_heartbeat", tag_field="type", kw_only=True):
    """Body of ``session_heartbeat``."""

    session_id: str


class SessionHeartbeatResponse(_Wire, tag="session_heartbeat", tag_field="type", kw_only=True):
    """The (usually empty) answer to a heartbeat."""


class SupportedModel(_Wire, kw_only=True):
    """A base model the server can train or sample."""

    model_name: str | None = None
    max_context_length: int | None = None
    trainable: bool | None = None
    sampleable: bool | None = None
    gpu_classes: list[str] | None = None
    """MinT docs: the GPU classes this model can be provisioned on (optional on the wire)."""


class GetServerCapabilitiesResponse(_Wire, kw_only=True):
    """What ``get_server_capabilities`` returns."""

    supported_models: list[SupportedModel] = msgspec.field(default_factory=list[SupportedModel])


ServerCapabilities: TypeAlias = GetServerCapabilitiesResponse
"""The MinT docs' name for :class:`GetServerCapabilitiesResponse`."""


class HealthResponse(_Wire, kw_only=True):
    """``GET healthz``."""

    status: str = _sent("ok")


class InitTrainerServerResponse(_Wire, kw_only=True):
    """MinT docs' trainer-initialisation answer; every field optional (its wire shape is unpublished)."""

    model_id: str | None = None
    base_model: str | None = None
    lora_rank: int | None = None
    status: str | None = None


# ---------------------------------------------------------------------------
# Models and training (protocol §4.2, §4.3)
# ---------------------------------------------------------------------------


class CreateModelRequest(_Wire, tag="create_model", tag_field="type", kw_only=True):
    """Body of ``create_model``: a new LoRA training run in a session."""

    session_id: str
    model_seq_id: int
    base_model: str
    lora_config: LoraConfig
    user_metadata: dict[str, str] | None = None
    optimizer_config: dict[str, Any] | None = None
    """[tinker 0.38] The optimizer family, fixed for the run: ``{"type": "adamw"}`` (0.38's default)."""


class CreateModelResponse(_Wire, tag="create_model", tag_field="type", kw_only=True):
    """The id of the new training run (``<session_id>:train:<model_seq_id>``)."""

    model_id: str


class GetInfoRequest(_Wire, tag="get_info", tag_field="type", kw_only=True):
    """Body of ``get_info``."""

    model_id: str


class ModelData(_Wire, kw_only=True):
    """Architecture and tokenizer of a model."""

    arch: str | None = None
    model_name: str | None = None
    tokenizer_id: str | None = None


class GetInfoResponse(_Wire, tag="get_info", tag_field="type", kw_only=True):
    """What ``get_info`` returns about a training run."""

    model_id: str
    model_data: ModelData
    is_lora: bool | None = None
    lora_rank: int | None = None
    model_name: str | None = None
    optimizer_config: dict[str, Any] | None = None
    """[tinker 0.38] The run's optimizer family (absent: AdamW)."""


class UnloadModelRequest(_Wire, tag="unload_model", tag_field="type", kw_only=True):
    """Body of ``unload_model``."""

    model_id: str


class UnloadModelResponse(_Wire, tag="unload_model", tag_field="type", kw_only=True):
    """Result of ``unload_model``."""

    model_id: str


class ForwardBackwardRequest(_Wire, kw_only=True):
    """Body of ``forward_backward`` (no ``type`` tag)."""

    forward_backward_input: ForwardBackwardInput
    model_id: str
    seq_id: int


class ForwardRequest(_Wire, kw_only=True):
    """Body of ``forward`` (no ``type`` tag)."""

    forward_input: ForwardBackwardInput
    model_id: str
    seq_id: int


class OptimStepRequest(_Wire, tag="optim_step", tag_field="type", kw_only=True):
    """Body of ``optim_step``."""

    adam_params: AdamParams
    model_id: str
    seq_id: int


class OptimStepResponse(_Wire, kw_only=True):
    """Result of ``optim_step`` (metrics passed through unreduced)."""

    metrics: dict[str, float] | None = None


# ---------------------------------------------------------------------------
# Weights (protocol §4.4)
# ---------------------------------------------------------------------------


class SaveWeightsRequest(_Wire, tag="save_weights", tag_field="type", kw_only=True):
    """Body of ``save_weights`` (a training checkpoint with optimizer state)."""

    model_id: str
    path: str
    seq_id: int
    overwrite: bool = _sent(False)
    ttl_seconds: int | None = None


class SaveWeightsResponse(_Wire, tag="save_weights", tag_field="type", kw_only=True):
    """The ``tinker://`` path of the saved checkpoint."""

    path: str


class SaveWeightsForSamplerRequest(
    _Wire, tag="save_weights_for_sampler", tag_field="type", kw_only=True
):
    """Body of ``save_weights_for_sampler``: named (``path``) or ephemeral (``sampling_session_seq_id``)."""

    model_id: str
    seq_id: int
    path: str | None = None
    sampling_session_seq_id: int | None = None
    ttl_seconds: int | None = None


class SaveWeightsForSamplerResponseInternal(
    _Wire, tag="save_weights_for_sampler", tag_field="type", kw_only=True
):
    """Wire result of ``save_weights_for_sampler``: ``path`` (named) or ``sampling_session_id``."""

    path: str | None = None
    sampling_session_id: str | None = None


class SaveWeightsForSamplerResponse(_Wire, kw_only=True):
    """The ``tinker://…/sampler_weights/<name>`` path of a named sampler checkpoint."""

    path: str


class LoadWeightsRequest(_Wire, tag="load_weights", tag_field="type", kw_only=True):
    """Body of ``load_weights``; ``optimizer`` is always sent."""

    model_id: str
    path: str
    seq_id: int
    optimizer: bool = _sent(False)
    weights_access_token: str | None = None


class LoadWeightsResponse(_Wire, tag="load_weights", tag_field="type", kw_only=True):
    """Result of ``load_weights``."""

    path: str | None = None
    model_id: str | None = None


class WeightsInfoRequest(_Wire, kw_only=True):
    """Body of ``weights_info``."""

    tinker_path: str


class WeightsInfoResponse(_Wire, kw_only=True):
    """What a checkpoint was trained from (enough to recreate its training client)."""

    base_model: str
    is_lora: bool
    lora_rank: int | None = None
    train_unembed: bool | None = None
    train_mlp: bool | None = None
    train_attn: bool | None = None
    optimizer_config: dict[str, Any] | None = None
    """[tinker 0.38] The optimizer family of the checkpoint's run (absent: AdamW)."""


# ---------------------------------------------------------------------------
# Sampling (protocol §4.1, §4.5)
# ---------------------------------------------------------------------------


class CreateSamplingSessionRequest(
    _Wire, tag="create_sampling_session", tag_field="type", kw_only=True
):
    """Body of ``create_sampling_session``: sample a base model or a ``tinker://`` checkpoint."""

    session_id: str
    sampling_session_seq_id: int
    base_model: str | None = None
    model_path: str | None = None

    def __post_init__(self) -> None:
        if self.base_model is None and self.model_path is None:
            msg = "a sampling session needs base_model or model_path"
            raise _invalid(msg)


class CreateSamplingSessionResponse(
    _Wire, tag="create_sampling_session", tag_field="type", kw_only=True
):
    """The new sampling session id (``<session_id>:sample:<n>``)."""

    sampling_session_id: str


class GetSamplerResponse(_Wire, kw_only=True):
    """``GET samplers/{id}``: what a sampler samples."""

    sampler_id: str
    base_model: str
    model_path: str | None = None
    tokenizer_id: str | None = None
    """mint_async extension (ignored by other clients): the tokenizer to load for this sampler."""


class SampleRequest(_Wire, tag="sample", tag_field="type", kw_only=True):
    """Body of ``asample``. Its request id is ``<sampling_session_id>:<seq_id>``."""

    num_samples: int = _sent(1)
    prompt: ModelInput
    sampling_params: SamplingParams
    sampling_session_id: str | None = None
    seq_id: int | None = None
    base_model: str | None = None
    model_path: str | None = None
    prompt_logprobs: bool = _sent(False)
    topk_prompt_logprobs: int = _sent(0)
    # tinker 0.38 additions, accepted from newer clients; omitted at their defaults.
    topk_sample_logprobs: int = 0
    prompt_alt_tokens_k: int = 0
    record_stability_info: bool = False
    target_prompt_logprobs: TensorData | None = None
    prompt_logprobs_last_n: int | None = None

    def __post_init__(self) -> None:
        _check_int("num_samples", self.num_samples, minimum=1)
        _check_int("topk_prompt_logprobs", self.topk_prompt_logprobs, minimum=0)
        if self.sampling_session_id is not None and self.seq_id is None:
            msg = "seq_id is required with sampling_session_id"
            raise _invalid(msg)


# ---------------------------------------------------------------------------
# Futures (protocol §5)
# ---------------------------------------------------------------------------


class UntypedAPIFuture(_Wire, kw_only=True):
    """The promise a submission returns; its result is fetched with ``retrieve_future``."""

    request_id: str
    model_id: str | None = None
    sample_sequence_ids: list[str] | None = None


class FutureRetrieveRequest(_Wire, kw_only=True):
    """Body of one ``retrieve_future`` poll."""

    request_id: str
    allow_metadata_only: bool = _sent(False)


class TryAgainResponse(_Wire, tag="try_again", tag_field="type", kw_only=True):
    """Poll answer: not done yet; re-poll (the server long-polls)."""

    request_id: str
    queue_state: str = "unknown"
    queue_state_reason: str | None = None

    @property
    def state(self) -> QueueState:
        """``queue_state`` normalised to the four known values."""
        qs = self.queue_state
        if qs in ("active", "paused_capacity", "paused_rate_limit"):
            return qs  # type: ignore[return-value]
        return "unknown"


class CompleteMetadataResponse(_Wire, tag="complete_metadata", tag_field="status", kw_only=True):
    """Poll answer: done, but too large to inline; poll again with ``allow_metadata_only=false``."""

    response_payload_size: int


class RequestFailedResponse(_Wire, kw_only=True):
    """Poll answer: the request ran and failed."""

    error: str
    category: str = "unknown"

    @property
    def error_category(self) -> RequestErrorCategory:
        """``category`` normalised (anything unknown becomes ``"unknown"``)."""
        cat = self.category
        if cat in ("server", "user"):
            return cat  # type: ignore[return-value]
        return "unknown"


# ---------------------------------------------------------------------------
# Checkpoints and REST (protocol §4.7, §8.9, §8.10)
# ---------------------------------------------------------------------------

_KIND_TO_TYPE: Final[dict[str, CheckpointType]] = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}


class ParsedCheckpointTinkerPath(_Wire, kw_only=True):
    """A parsed ``tinker://<training_run_id>/<kind>/<name>`` path.

    Example::

        p = ParsedCheckpointTinkerPath.from_tinker_path("tinker://s:train:0/weights/ckpt-1")
        assert (p.training_run_id, p.checkpoint_id) == ("s:train:0", "weights/ckpt-1")
    """

    tinker_path: str
    training_run_id: str
    checkpoint_type: CheckpointType
    checkpoint_id: str

    @classmethod
    def from_tinker_path(cls, tinker_path: str) -> ParsedCheckpointTinkerPath:
        """Parse a path; raises InvalidInputError unless it has exactly the grammar above."""
        if not isinstance(tinker_path, str) or not tinker_path.startswith("tinker://"):  # pyright: ignore[reportUnnecessaryIsInstance]
            msg = f"not a tinker path (must start with 'tinker://'): {tinker_path!r}"
            raise _invalid(msg)
        parts = tinker_path.removeprefix("tinker://").split("/")
        if len(parts) != 3 or not all(parts):
            msg = f"a tinker path is tinker://<training_run_id>/<kind>/<name>, got {tinker_path!r}"
            raise _invalid(msg)
        run_id, kind, name = parts
        ckpt_type = _KIND_TO_TYPE.get(kind)
        if ckpt_type is None:
            msg = (
                f"unknown checkpoint kind {kind!r} in {tinker_path!r} (weights or sampler_weights)"
            )
            raise _invalid(msg)
        return cls(
            tinker_path=tinker_path,
            training_run_id=run_id,
            checkpoint_type=ckpt_type,
            checkpoint_id=f"{kind}/{name}",
        )


class Checkpoint(_Wire, kw_only=True):
    """A saved checkpoint, as listed by the REST API."""

    checkpoint_id: str
    checkpoint_type: CheckpointType
    time: datetime
    tinker_path: str
    size_bytes: int | None = None
    public: bool = _sent(False)
    expires_at: datetime | None = None
    user_metadata: dict[str, str] | None = None

    @property
    def id(self) -> str:
        """MinT docs' name for ``checkpoint_id``."""
        return self.checkpoint_id

    @property
    def type(self) -> CheckpointType:
        """MinT docs' name for ``checkpoint_type``."""
        return self.checkpoint_type

    @property
    def timestamp(self) -> datetime:
        """MinT docs' name for ``time``."""
        return self.time

    @property
    def size(self) -> int | None:
        """MinT docs' name for ``size_bytes``."""
        return self.size_bytes


class TrainingRun(_Wire, kw_only=True):
    """A training run (one LoRA model) and its latest checkpoints."""

    training_run_id: str
    base_model: str
    model_owner: str
    is_lora: bool
    last_request_time: datetime
    corrupted: bool = _sent(False)
    lora_rank: int | None = None
    last_checkpoint: Checkpoint | None = None
    last_sampler_checkpoint: Checkpoint | None = None
    user_metadata: dict[str, str] | None = None
    created_at: datetime | None = None
    """MinT docs: when the run was created (optional on the wire)."""

    @property
    def id(self) -> str:
        """MinT docs' name for ``training_run_id``."""
        return self.training_run_id

    @property
    def owner(self) -> str:
        """MinT docs' name for ``model_owner``."""
        return self.model_owner

    @property
    def checkpoints(self) -> list[Checkpoint]:
        """The run's latest training and sampler checkpoints (MinT docs' ``checkpoints``)."""
        return [c for c in (self.last_checkpoint, self.last_sampler_checkpoint) if c is not None]


class Cursor(_Wire, kw_only=True):
    """Pagination state of a list answer."""

    offset: int
    limit: int
    total_count: int


class TrainingRunsResponse(_Wire, kw_only=True):
    """A page of training runs."""

    training_runs: list[TrainingRun]
    cursor: Cursor


class CheckpointsListResponse(_Wire, kw_only=True):
    """A list (or page) of checkpoints."""

    checkpoints: list[Checkpoint]
    cursor: Cursor | None = None


class CheckpointArchiveUrlResponse(_Wire, kw_only=True):
    """A signed URL to download a checkpoint archive (built from the 302 answer)."""

    url: str
    expires: datetime


class CheckpointFile(_Wire, kw_only=True):
    """One file of a checkpoint with a presigned download URL (MinT docs)."""

    url: str
    relative_file_name: str
    node_rank: int | None = None
    size_bytes: int | None = None
    last_modified: datetime | None = None


class CheckpointFilesResponse(_Wire, kw_only=True):
    """Presigned URLs of a checkpoint's files (MinT docs' archive answer)."""

    presigned_urls: list[CheckpointFile]
    cursor: Cursor | None = None
    expires: datetime | None = None


class GetSessionResponse(_Wire, kw_only=True):
    """The training runs and samplers of a session."""

    training_run_ids: list[str]
    sampler_ids: list[str]
    user_metadata: dict[str, str] | None = None
    display_name: str | None = None


class ListSessionsResponse(_Wire, kw_only=True):
    """A page of session ids."""

    sessions: list[str]


class SetCheckpointTTLRequest(msgspec.Struct, kw_only=True):
    """Body of ``PUT …/ttl``; ``ttl_seconds: null`` removes the expiry, so null is sent."""

    ttl_seconds: int | None

    def __post_init__(self) -> None:
        if self.ttl_seconds is not None:
            _check_int("ttl_seconds", self.ttl_seconds, minimum=1)


class SessionProjectRequest(_Wire, kw_only=True):
    """Body of ``PUT sessions/{id}/project``."""

    project_id: str


class AuditLogEntry(_Wire, kw_only=True):
    """One audit log entry."""

    timestamp: datetime
    event: str
    model_id: str | None = None
    tinker_path: str | None = None
    purpose: str | None = None
    event_details: dict[str, Any] | None = None
    """[0.38] Event-specific details."""


class AuditLogResponse(_Wire, kw_only=True):
    """``GET audit``."""

    entries: list[AuditLogEntry]


# ---------------------------------------------------------------------------
# MinT extensions (protocol §4.10) — sent with explicit nulls, as the MinT SDK does
# ---------------------------------------------------------------------------


class MintTensorData(_NullsWire, eq=False, kw_only=True):
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
                raise _invalid(msg)
        self.data = arr

    @classmethod
    def from_tensor_data(cls, td: TensorData | MintTensorData | object, key: str) -> MintTensorData:
        """Coerce a TensorData, array or list (dtype fixed by ``key`` as for Datum)."""
        if isinstance(td, MintTensorData):
            return td
        if not isinstance(td, TensorData):
            td = _coerce_tensor(key, td)
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


class ReverseKLDatum(_NullsWire, kw_only=True):
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
    _NullsWire, tag="mint_forward_backward_reverse_kl", tag_field="type", kw_only=True
):
    """Body of ``mint/forward_backward_reverse_kl`` (``seq_id`` is sent, possibly null)."""

    model_id: str
    reference_model_path: str
    data: list[ReverseKLDatum]
    temperature: float = 1.0
    seq_id: int | None = None

    def __post_init__(self) -> None:
        _check_finite("temperature", self.temperature)
        if self.temperature <= 0:
            msg = f"temperature must be > 0, got {self.temperature}"
            raise _invalid(msg)


class ReverseKLItemOutput(_NullsWire, kw_only=True):
    """Per-datum output of a reverse-KL step."""

    loss: MintTensorData


class ForwardBackwardReverseKLResponse(
    _Wire, tag="mint_forward_backward_reverse_kl", tag_field="type", kw_only=True
):
    """Result of a reverse-KL forward/backward."""

    outputs: list[ReverseKLItemOutput]
    metrics: dict[str, float]


class InterpolateCheckpointsRequest(
    _NullsWire, tag="mint_interpolate_checkpoints", tag_field="type", kw_only=True
):
    """Body of ``mint/checkpoints/interpolate``: a weighted mix of sampler checkpoints."""

    source_paths: list[str]
    coefficients: list[float]
    output_path: str | None = None
    output_checkpoint_type: Literal["sampler"] = "sampler"

    def __post_init__(self) -> None:
        if not self.source_paths:
            msg = "source_paths must not be empty"
            raise _invalid(msg)
        if len(self.coefficients) != len(self.source_paths):
            msg = "coefficients must have one entry per source path"
            raise _invalid(msg)
        for c in self.coefficients:
            _check_finite("coefficient", c)


class InterpolateCheckpointsResponse(
    _Wire, tag="mint_interpolate_checkpoints", tag_field="type", kw_only=True
):
    """Result of a checkpoint interpolation."""

    path: str
    source_paths: list[str]
    coefficients: list[float]
    checkpoint_type: Literal["sampler"] = _sent("sampler")
    has_rank_shards: bool = _sent(False)


# ---------------------------------------------------------------------------
# Telemetry (protocol §4.8)
# ---------------------------------------------------------------------------


class _Event(_Wire, tag_field="event", kw_only=True):
    """Fields every telemetry event has; the ``event`` tag tells the kinds apart."""

    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: datetime


class SessionStartEvent(_Event, tag="SESSION_START", kw_only=True):
    """Telemetry: a session started."""


class SessionEndEvent(_Event, tag="SESSION_END", kw_only=True):
    """Telemetry: a session ended after ``duration`` (ISO 8601)."""

    duration: str


class UnhandledExceptionEvent(_Event, tag="UNHANDLED_EXCEPTION", kw_only=True):
    """Telemetry: an exception escaped a public method."""

    error_type: str
    error_message: str
    traceback: str | None = None


class GenericEvent(_Event, tag="GENERIC_EVENT", kw_only=True):
    """Telemetry: anything else, with structured data."""

    event_name: str
    event_data: dict[str, Any] = msgspec.field(default_factory=dict[str, Any])


TelemetryEvent: TypeAlias = (
    SessionStartEvent | SessionEndEvent | UnhandledExceptionEvent | GenericEvent
)


class TelemetrySendRequest(_Wire, kw_only=True):
    """Body of ``telemetry``: a batch of events."""

    events: list[TelemetryEvent]
    platform: str
    sdk_version: str
    session_id: str
    process_uuid: str | None = None


class TelemetryResponse(_Wire, kw_only=True):
    """Answer to ``telemetry`` (must be ``{"status": "accepted"}``)."""

    status: Literal["accepted"] = _sent("accepted")
