"""Shared aliases, validators and the base Structs of every wire type."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypeVar, get_args

import msgspec
import numpy as np
import numpy.typing as npt

from .._exceptions import InvalidInputError

_T = TypeVar("_T")

LossFnType: TypeAlias = Literal[
    "cross_entropy", "importance_sampling", "ppo", "cispo", "dro", "gspo", "stable_reinforce"
]
"""The built-in loss functions: tinker 0.22's (the version MinT pins), and 0.38's ``gspo``
and ``stable_reinforce`` (which the local server serves on its 0.38 wire)."""

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


def sent(value: _T) -> _T:
    """A default that always goes on the wire (msgspec omits only plain defaults)."""
    result: _T = msgspec.field(default_factory=lambda: value)
    return result


def sent_empty_dict() -> dict[str, str]:
    """An empty dict default that is still sent as ``{}``."""
    # Not `dict`: msgspec would recognise that factory and omit an empty value.
    result: dict[str, str] = msgspec.field(default_factory=lambda: {})  # noqa: PIE807
    return result


def sent_empty_list() -> list[str]:
    """An empty list default that is still sent as ``[]``."""
    # Not `list`: msgspec would recognise that factory and omit an empty value.
    result: list[str] = msgspec.field(default_factory=lambda: [])  # noqa: PIE807
    return result


def invalid(msg: str) -> InvalidInputError:
    return InvalidInputError(msg)


def check_finite(name: str, value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        msg = f"{name} must be a finite number, got {value!r}"
        raise invalid(msg)


def check_int(name: str, value: object, *, minimum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"{name} must be an integer, got {value!r}"
        raise invalid(msg)
    if minimum is not None and value < minimum:
        msg = f"{name} must be >= {minimum}, got {value}"
        raise invalid(msg)


class WireStruct(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every wire Struct: keyword-only, ``None`` fields omitted."""


class NullsWireStruct(msgspec.Struct, kw_only=True):
    """Base of the MinT extension requests, which the MinT SDK sends with explicit nulls."""
