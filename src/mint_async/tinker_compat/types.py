"""``tinker.types`` for the compatibility layer: mint_async's wire types under tinker's names.

Every public name of :mod:`mint_async.types` is here, plus tinker's aliases
(``ModelID``, ``OptimParams``, ``AdamOptimizerConfig``...). Under
:func:`mint_async.tinker_compat.install`, ``tinker.types`` and any
``tinker.types.<module>`` (``from tinker.types.tensor_data import TensorData``)
resolve to this module.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from mint_async.types import *  # noqa: F403 - the whole public wire vocabulary
from mint_async.types import AdamParams, LossFnType, TensorDtype
from mint_async.types import __all__ as _wire_names

from ._tensors import Datum as Datum
from ._tensors import EncodedTextChunk as EncodedTextChunk
from ._tensors import PromptProvenanceSpan as PromptProvenanceSpan
from ._tensors import SampledProvenanceSpan as SampledProvenanceSpan
from ._tensors import TensorData as TensorData

ModelID: TypeAlias = str
"""A training run's id."""

OptimParams: TypeAlias = AdamParams
"""Optimizer parameters of ``optim_step`` (mint_async trains with AdamW)."""

CustomLossInputRank: TypeAlias = int
"""The rank of one input of a custom loss."""

SamplingClientKind: TypeAlias = str
"""``"snapshot"`` (the only kind mint_async serves)."""


class AdamOptimizerConfig(dict[str, Any]):
    """tinker's optimizer choice for a run: AdamW (``type="adamw"``), the only one served."""

    def __init__(self) -> None:
        super().__init__(type="adamw")


OptimizerConfig: TypeAlias = AdamOptimizerConfig

__all__ = [  # noqa: PLE0605 - the wire names are a list built at import
    *_wire_names,
    "AdamOptimizerConfig",
    "CustomLossInputRank",
    "LossFnType",
    "ModelID",
    "OptimParams",
    "OptimizerConfig",
    "SamplingClientKind",
    "TensorDtype",
]
