"""``tinker.types`` for the compatibility layer: mint_async's wire types under tinker's names.

Every public name of :mod:`mint_async.types` is here, plus tinker's aliases
(``ModelID``, ``OptimParams``, ``AdamOptimizerConfig``...). Under
:func:`mint_async.tinker_compat.install`, ``tinker.types`` and any
``tinker.types.<module>`` (``from tinker.types.tensor_data import TensorData``)
resolve to this module.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import mint_async.types as _wire
from mint_async.types import AdamParams as AdamParams
from mint_async.types import Checkpoint as Checkpoint
from mint_async.types import ForwardBackwardOutput as ForwardBackwardOutput
from mint_async.types import ImageAssetPointerChunk as ImageAssetPointerChunk
from mint_async.types import ImageChunk as ImageChunk
from mint_async.types import LoraConfig as LoraConfig
from mint_async.types import LossFnType as LossFnType
from mint_async.types import ModelInput as ModelInput
from mint_async.types import ModelInputChunk as ModelInputChunk
from mint_async.types import OptimStepResponse as OptimStepResponse
from mint_async.types import SampledSequence as SampledSequence
from mint_async.types import SampleResponse as SampleResponse
from mint_async.types import SamplingParams as SamplingParams
from mint_async.types import StopReason as StopReason
from mint_async.types import TensorDtype as TensorDtype
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


def __getattr__(name: str) -> Any:
    # Every other public wire type, under its own name (``tinker.types.TrainingRun``...).
    if name in _wire_names:
        return getattr(_wire, name)
    msg = f"mint_async.tinker_compat.types has no {name!r} (tinker.types names mint_async does not serve)"
    raise AttributeError(msg)


# The names defined here; every other public wire type is reached through __getattr__.
__all__ = [
    "AdamOptimizerConfig",
    "AdamParams",
    "Checkpoint",
    "CustomLossInputRank",
    "Datum",
    "EncodedTextChunk",
    "ForwardBackwardOutput",
    "ImageAssetPointerChunk",
    "ImageChunk",
    "LoraConfig",
    "LossFnType",
    "ModelID",
    "ModelInput",
    "ModelInputChunk",
    "OptimParams",
    "OptimStepResponse",
    "OptimizerConfig",
    "PromptProvenanceSpan",
    "SampleResponse",
    "SampledProvenanceSpan",
    "SampledSequence",
    "SamplingClientKind",
    "SamplingParams",
    "StopReason",
    "TensorData",
    "TensorDtype",
]
