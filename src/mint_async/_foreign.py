"""Accept the official SDK's own type objects (tinker's pydantic models) wherever a wire type is taken.

Code written against ``tinker`` builds ``tinker.types.Datum``/``ModelInput``/
``TensorData``/``AdamParams``/``SamplingParams`` objects. mint_async converts
them by their fields, without importing tinker: an object that is not already
the mint_async type but is a pydantic model (``model_dump``) or a dataclass
(tinker 0.38's ``Datum``, ``TensorData`` and provenance spans) is turned into
its wire JSON and decoded as the mint_async type (so every field is validated
as if it had come over the wire). Anything else is an :class:`InvalidInputError`.

Example::

    tc.forward_backward([tinker.types.Datum(...)], "cross_entropy")   # converted
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
import numpy as np

from . import types as t
from ._codec import decode
from ._exceptions import InvalidInputError, MintError

T = TypeVar("T")

__all__ = [
    "as_adam_params",
    "as_data",
    "as_model_input",
    "as_optimizer_config",
    "as_sampling_params",
    "convert",
]


_SPAN_TAGS = {"PromptProvenanceSpan": "prompt_tokens", "SampledProvenanceSpan": "sampled_tokens"}


def _plain(obj: Any) -> Any:
    """``obj``'s wire JSON value: pydantic models dumped, dataclasses (tinker 0.38's
    Datum, TensorData, provenance spans) taken field by field, arrays as lists."""
    dump: Any = getattr(obj, "model_dump", None)
    if callable(dump) and not isinstance(obj, type):
        return _plain(dump(mode="json", exclude_none=True))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        fields: dict[str, Any] = {
            f.name: getattr(obj, f.name)
            for f in dataclasses.fields(obj)
            if not f.name.startswith("_") and getattr(obj, f.name) is not None
        }
        if "dtype" in fields and "data" not in fields and hasattr(obj, "data"):
            fields["data"] = getattr(obj, "data")  # noqa: B009 - a property over tinker 0.38's array
        if name in _SPAN_TAGS:
            fields["type"] = _SPAN_TAGS[name]
        return {k: _plain(v) for k, v in fields.items()}
    if isinstance(obj, dict):
        items: dict[Any, Any] = obj  # pyright: ignore[reportUnknownVariableType]
        return {k: _plain(v) for k, v in items.items()}
    if isinstance(obj, (list, tuple)):
        seq: Sequence[Any] = obj  # pyright: ignore[reportUnknownVariableType]
        return [_plain(v) for v in seq]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(obj, np.ndarray):
        return obj.tolist()  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType]
    return obj  # pyright: ignore[reportUnknownVariableType]


def convert(obj: object, tp: type[T], what: str) -> T:
    """``obj`` as a ``tp``: itself if it is one, else converted from tinker's object by its fields."""
    if isinstance(obj, tp):
        return obj
    if not callable(getattr(obj, "model_dump", None)) and not (
        dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    ):
        msg = f"{what} must be a types.{tp.__name__}, got {type(obj).__name__}"
        raise InvalidInputError(msg)
    try:
        return decode(tp, msgspec.json.encode(_plain(obj)))
    except (MintError, msgspec.MsgspecError, TypeError, ValueError) as exc:
        msg = f"{what}: cannot convert {type(obj).__name__} to types.{tp.__name__}: {exc}"
        raise InvalidInputError(msg) from exc


def as_data(data: object) -> list[t.Datum]:
    """A batch of Datums (tinker's Datum objects converted)."""
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        msg = "data must be a list of types.Datum"
        raise InvalidInputError(msg)
    items: Sequence[object] = data  # pyright: ignore[reportUnknownVariableType]
    return [convert(d, t.Datum, f"data[{i}]") for i, d in enumerate(items)]


def as_model_input(prompt: object) -> t.ModelInput:
    """A ModelInput (tinker's converted)."""
    return convert(prompt, t.ModelInput, "prompt")


def as_sampling_params(params: object) -> t.SamplingParams:
    """SamplingParams (tinker's converted)."""
    return convert(params, t.SamplingParams, "sampling_params")


def as_adam_params(params: object) -> t.AdamParams:
    """AdamParams (tinker's ``AdamParams`` converted; other optimizers are refused)."""
    if not isinstance(params, t.AdamParams) and type(params).__name__ != "AdamParams":
        msg = f"optimizer params must be AdamParams (mint_async trains with AdamW), got {type(params).__name__}"
        raise InvalidInputError(msg)
    return convert(params, t.AdamParams, "adam_params")


def as_optimizer_config(optimizer: object) -> dict[str, Any] | None:
    """tinker 0.38's ``optimizer`` (a config object or a dict) as the wire's ``optimizer_config``.

    Only AdamW (``{"type": "adamw"}``) is trained; anything else is refused here.
    """
    if optimizer is None:
        return None
    fields: Any = optimizer
    dump: Any = getattr(optimizer, "model_dump", None)
    if callable(dump):
        fields = dump(mode="json", exclude_none=True)
    if not isinstance(fields, dict) or fields.get("type") != "adamw":  # pyright: ignore[reportUnknownMemberType]
        msg = f"optimizer must be AdamW ({{'type': 'adamw'}}, tinker's AdamOptimizerConfig), got {optimizer!r}"
        raise InvalidInputError(msg)
    return {"type": "adamw"}
