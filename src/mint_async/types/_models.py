"""Models and training requests (protocol §4.2, §4.3)."""

from __future__ import annotations

from typing import Any

from ._base import WireStruct
from ._params import AdamParams, LoraConfig
from ._tensors import ForwardBackwardInput


class CreateModelRequest(WireStruct, tag="create_model", tag_field="type", kw_only=True):
    """Body of ``create_model``: a new LoRA training run in a session."""

    session_id: str
    model_seq_id: int
    base_model: str
    lora_config: LoraConfig
    user_metadata: dict[str, str] | None = None
    optimizer_config: dict[str, Any] | None = None
    """[tinker 0.38] The optimizer family, fixed for the run: ``{"type": "adamw"}`` (0.38's default)."""


class CreateModelResponse(WireStruct, tag="create_model", tag_field="type", kw_only=True):
    """The id of the new training run (``<session_id>:train:<model_seq_id>``)."""

    model_id: str


class GetInfoRequest(WireStruct, tag="get_info", tag_field="type", kw_only=True):
    """Body of ``get_info``."""

    model_id: str


class ModelData(WireStruct, kw_only=True):
    """Architecture and tokenizer of a model."""

    arch: str | None = None
    model_name: str | None = None
    tokenizer_id: str | None = None


class GetInfoResponse(WireStruct, tag="get_info", tag_field="type", kw_only=True):
    """What ``get_info`` returns about a training run."""

    model_id: str
    model_data: ModelData
    is_lora: bool | None = None
    lora_rank: int | None = None
    model_name: str | None = None
    optimizer_config: dict[str, Any] | None = None
    """[tinker 0.38] The run's optimizer family (absent: AdamW)."""


class UnloadModelRequest(WireStruct, tag="unload_model", tag_field="type", kw_only=True):
    """Body of ``unload_model``."""

    model_id: str


class UnloadModelResponse(WireStruct, tag="unload_model", tag_field="type", kw_only=True):
    """Result of ``unload_model``."""

    model_id: str


class ForwardBackwardRequest(WireStruct, kw_only=True):
    """Body of ``forward_backward`` (no ``type`` tag)."""

    forward_backward_input: ForwardBackwardInput
    model_id: str
    seq_id: int


class ForwardRequest(WireStruct, kw_only=True):
    """Body of ``forward`` (no ``type`` tag)."""

    forward_input: ForwardBackwardInput
    model_id: str
    seq_id: int


class OptimStepRequest(WireStruct, tag="optim_step", tag_field="type", kw_only=True):
    """Body of ``optim_step``."""

    adam_params: AdamParams
    model_id: str
    seq_id: int


class OptimStepResponse(WireStruct, kw_only=True):
    """Result of ``optim_step`` (metrics passed through unreduced)."""

    metrics: dict[str, float] | None = None
