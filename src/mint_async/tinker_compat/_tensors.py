"""tinker's value semantics on mint_async's types: ``TensorData.data`` reads like a list, chunks copy.

tinker's ``TensorData.data`` is a ``list`` of Python numbers and tinker code
relies on it (``sum(td.data)`` logged as JSON, ``int(td.data[-1])``...).
mint_async keeps ``data`` as a numpy array (no per-element objects). This
subclass keeps the array but views it as :class:`PyScalarArray`, which iterates
and indexes to Python ``int``/``float``; every numpy operation, and the wire
encoding, still see a plain 1-D array.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mint_async.types import Datum as WireDatum
from mint_async.types import EncodedTextChunk as WireEncodedTextChunk
from mint_async.types import PromptProvenanceSpan as WirePromptProvenanceSpan
from mint_async.types import SampledProvenanceSpan as WireSampledProvenanceSpan
from mint_async.types import TensorData as WireTensorData
from mint_async.types import TensorDtype

if TYPE_CHECKING:
    from mint_async._arrays import ArrayInput

__all__ = [
    "Datum",
    "EncodedTextChunk",
    "PromptProvenanceSpan",
    "PyScalarArray",
    "SampledProvenanceSpan",
    "TensorData",
]


class PyScalarArray(np.ndarray[Any, Any]):
    """A 1-D ndarray whose iteration and scalar indexing give Python numbers."""

    def __iter__(self) -> Any:
        return iter(self.tolist())

    def __getitem__(self, key: Any) -> Any:
        out = super().__getitem__(key)
        return out.item() if isinstance(out, np.generic) else out


class TensorData(WireTensorData, eq=False, kw_only=True):
    """A flat array with a dtype and an optional shape; ``data`` reads like tinker's list."""

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
        super().__post_init__()
        _set_field(self, "data", np.asarray(self.data).view(PyScalarArray))


class EncodedTextChunk(WireEncodedTextChunk, kw_only=True):
    """A run of token ids; like tinker's, it keeps a copy of a list it is given.

    (mint_async's keeps the caller's list; tinker code reuses and clears its lists.)
    """

    def __post_init__(self) -> None:
        if isinstance(self.tokens, list):
            _set_field(self, "tokens", list(self.tokens))
        super().__post_init__()


def _set_field(struct: object, name: str, value: object) -> None:
    """Replace an inherited field's value in ``__post_init__``.

    A plain ``self.x = ...`` in a subclass reads, to ``pyright --verifytypes``, as a second
    declaration of the base class's field ("ambiguous base class override"); the field and
    its declared type stay the base's.
    """
    setattr(struct, name, value)


def _dataclass_fields(struct: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """``__dataclass_fields__`` for a struct, so ``dataclasses.replace`` works on it as on tinker's."""
    names: tuple[str, ...] = struct.__struct_fields__
    mirror: Any = dataclasses.make_dataclass("_Mirror", [(n, Any) for n in names])
    return dict(mirror.__dataclass_fields__)


class Datum(WireDatum, kw_only=True):
    """One training example (``dataclasses.replace``-able, as tinker's is)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]] = _dataclass_fields(WireDatum)

    def with_provenance(
        self,
        model_input: Sequence[WirePromptProvenanceSpan | WireSampledProvenanceSpan],
        loss_fn_inputs: Sequence[WirePromptProvenanceSpan | WireSampledProvenanceSpan],
    ) -> Datum:
        """A copy carrying provenance spans (checked to tile their fields); still this class."""
        checked = super().with_provenance(model_input, loss_fn_inputs)
        return Datum(
            model_input=checked.model_input,
            loss_fn_inputs=checked.loss_fn_inputs,
            model_input_spans=checked.model_input_spans,
            loss_fn_input_spans=checked.loss_fn_input_spans,
        )


class PromptProvenanceSpan(WirePromptProvenanceSpan, kw_only=True):
    """A run of tokens that were part of a sampling request's prompt (``dataclasses.replace``-able)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]] = _dataclass_fields(
        WirePromptProvenanceSpan
    )


class SampledProvenanceSpan(WireSampledProvenanceSpan, kw_only=True):
    """A run of tokens produced by one sampled sequence (``dataclasses.replace``-able)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]] = _dataclass_fields(
        WireSampledProvenanceSpan
    )
