"""Weights: save, load, save for sampler (protocol §4.4)."""

from __future__ import annotations

from typing import Any

from ._base import WireStruct, sent


class SaveWeightsRequest(WireStruct, tag="save_weights", tag_field="type", kw_only=True):
    """Body of ``save_weights`` (a training checkpoint with optimizer state)."""

    model_id: str
    path: str
    seq_id: int
    overwrite: bool = sent(False)
    ttl_seconds: int | None = None
    user_metadata: dict[str, str] | None = None
    """[0.38] Metadata stored with the checkpoint (omitted when None)."""


class SaveWeightsResponse(WireStruct, tag="save_weights", tag_field="type", kw_only=True):
    """The ``tinker://`` path of the saved checkpoint."""

    path: str


class SaveWeightsForSamplerRequest(
    WireStruct, tag="save_weights_for_sampler", tag_field="type", kw_only=True
):
    """Body of ``save_weights_for_sampler``: named (``path``) or ephemeral (``sampling_session_seq_id``)."""

    model_id: str
    seq_id: int
    path: str | None = None
    sampling_session_seq_id: int | None = None
    ttl_seconds: int | None = None
    user_metadata: dict[str, str] | None = None
    """[0.38] Metadata stored with the checkpoint (omitted when None)."""


class SaveWeightsForSamplerResponseInternal(
    WireStruct, tag="save_weights_for_sampler", tag_field="type", kw_only=True
):
    """Wire result of ``save_weights_for_sampler``: ``path`` (named) or ``sampling_session_id``."""

    path: str | None = None
    sampling_session_id: str | None = None


class SaveWeightsForSamplerResponse(WireStruct, kw_only=True):
    """The ``tinker://…/sampler_weights/<name>`` path of a named sampler checkpoint."""

    path: str


class LoadWeightsRequest(WireStruct, tag="load_weights", tag_field="type", kw_only=True):
    """Body of ``load_weights``; ``optimizer`` is always sent."""

    model_id: str
    path: str
    seq_id: int
    optimizer: bool = sent(False)
    weights_access_token: str | None = None


class LoadWeightsResponse(WireStruct, tag="load_weights", tag_field="type", kw_only=True):
    """Result of ``load_weights``."""

    path: str | None = None
    model_id: str | None = None


class WeightsInfoRequest(WireStruct, kw_only=True):
    """Body of ``weights_info``."""

    tinker_path: str


class WeightsInfoResponse(WireStruct, kw_only=True):
    """What a checkpoint was trained from (enough to recreate its training client)."""

    base_model: str
    is_lora: bool
    lora_rank: int | None = None
    train_unembed: bool | None = None
    train_mlp: bool | None = None
    train_attn: bool | None = None
    optimizer_config: dict[str, Any] | None = None
    """[tinker 0.38] The optimizer family of the checkpoint's run (absent: AdamW)."""


class CopyWeightsRequest(WireStruct, kw_only=True):
    """[tinker 0.38] Body of ``copy_weights``: a new checkpoint holding a copy of ``source_path``.

    The copy lands in ``destination_project_id``, or in session ``session_id`` as
    its training run ``model_seq_id``. ``ttl_seconds``: 3600 (1 hour) to
    315360000 (10 years), or None for no expiry (the source's is not inherited).
    """

    source_path: str
    destination_project_id: str | None = None
    session_id: str | None = None
    model_seq_id: int | None = None
    ttl_seconds: int | None = None
    weights_access_token: str | None = None


class CopyWeightsResponse(WireStruct, kw_only=True):
    """[tinker 0.38] Result of ``copy_weights``: the ``tinker://`` path of the copy."""

    tinker_path: str
