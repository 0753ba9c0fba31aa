"""The torch backend's checkpoint files: a LoRA adapter and, for training checkpoints, AdamW state.

A checkpoint directory holds

* ``adapter.safetensors`` — ``<module>.lora_A`` / ``<module>.lora_B`` float32 tensors;
* ``adapter_config.json`` — format tag, base model name and fingerprint (a hash
  of the base weights, so an adapter is never applied to another base), rank,
  scaling, adapted modules, LoraConfig flags;
* ``optimizer.safetensors`` (training checkpoints only) — ``<param>.exp_avg`` and
  ``<param>.exp_avg_sq`` per LoRA parameter, the step count in the metadata.

Anything unreadable or foreign is an :class:`~mint_async.InvalidInputError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from mint_async._exceptions import InvalidInputError

from ._torch_lora import Adapter

__all__ = [
    "ADAPTER_FILE",
    "CONFIG_FILE",
    "OPTIMIZER_FILE",
    "read_adapter",
    "read_optimizer",
    "write_adapter",
    "write_optimizer",
]

ADAPTER_FILE: Final = "adapter.safetensors"
CONFIG_FILE: Final = "adapter_config.json"
OPTIMIZER_FILE: Final = "optimizer.safetensors"
_FORMAT: Final = "mint-async-torch-lora/1"
_UNREADABLE = (OSError, ValueError, KeyError, SafetensorError)


def _save_file(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    from safetensors import torch as st  # noqa: PLC0415 - typed boundary (see _torch_model)

    st.save_file(tensors, str(path), metadata=metadata)  # pyright: ignore[reportUnknownMemberType]


def _load_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors of a safetensors file and its metadata."""
    from safetensors import torch as st  # noqa: PLC0415

    tensors: dict[str, torch.Tensor] = st.load_file(str(path))  # pyright: ignore[reportUnknownMemberType]
    opened: Any = safe_open(str(path), "pt")
    with opened as f:
        metadata: dict[str, str] = f.metadata() or {}
    return tensors, metadata


def write_adapter(
    directory: Path,
    adapter: Adapter,
    *,
    base_model: str,
    fingerprint: str,
    extra: Mapping[str, Any],
) -> None:
    """Write the adapter's tensors and config into ``directory``."""
    _save_file(adapter.tensors(), directory / ADAPTER_FILE)
    config = {
        "format": _FORMAT,
        "backend": "torch",
        "base_model": base_model,
        "base_fingerprint": fingerprint,
        "rank": adapter.rank,
        "scaling": adapter.scaling,
        "modules": sorted(adapter.factors),
        **extra,
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))


def read_adapter(
    directory: Path, *, fingerprint: str, base_model: str | None
) -> tuple[str, Adapter]:
    """``(base model name, adapter)`` of a checkpoint of this base (and of ``base_model`` if given)."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
        tensors, _ = _load_file(directory / ADAPTER_FILE)
        if config.get("format") != _FORMAT:
            msg = f"format {config.get('format')!r}"
            raise ValueError(msg)
        name, scaling = str(config["base_model"]), float(config["scaling"])
    except _UNREADABLE as exc:
        msg = f"not a torch-backend checkpoint: {exc}"
        raise InvalidInputError(msg) from exc
    if config.get("base_fingerprint") != fingerprint:
        msg = "the checkpoint was trained on another base model (different seed or vocabulary)"
        raise InvalidInputError(msg)
    if base_model is not None and name != base_model:
        msg = f"the checkpoint is of {name!r}, not {base_model!r}"
        raise InvalidInputError(msg)
    return name, Adapter.from_tensors(tensors, scaling)


def write_optimizer(
    directory: Path,
    optimizer: torch.optim.Optimizer,
    params: Sequence[tuple[str, nn.Parameter]],
    step: int,
) -> None:
    """AdamW's moments per named parameter (zeros before the first step) and the step count."""
    state = optimizer.state_dict()["state"]
    tensors: dict[str, torch.Tensor] = {}
    for index, (name, param) in enumerate(params):
        moments = state.get(index)
        for key in ("exp_avg", "exp_avg_sq"):
            value = moments[key] if moments else torch.zeros_like(param)
            tensors[f"{name}.{key}"] = value.contiguous()
    _save_file(tensors, directory / OPTIMIZER_FILE, {"step": str(step)})


def read_optimizer(
    directory: Path, params: Sequence[tuple[str, nn.Parameter]]
) -> tuple[dict[int, dict[str, torch.Tensor]], int]:
    """The ``state`` of an AdamW ``state_dict`` over ``params``, and the step count."""
    path = directory / OPTIMIZER_FILE
    if not path.exists():
        msg = "the checkpoint has no optimizer state (sampler checkpoints hold weights only)"
        raise InvalidInputError(msg)
    try:
        moments, metadata = _load_file(path)
        step = int(metadata.get("step", "0"))
    except _UNREADABLE as exc:
        msg = f"unreadable optimizer state: {exc}"
        raise InvalidInputError(msg) from exc
    state: dict[int, dict[str, torch.Tensor]] = {}
    for index, (name, param) in enumerate(params):
        try:
            avg, avg_sq = moments[f"{name}.exp_avg"], moments[f"{name}.exp_avg_sq"]
        except KeyError as exc:
            msg = f"the optimizer state lacks {exc.args[0]!r}"
            raise InvalidInputError(msg) from exc
        if avg.shape != param.shape or avg_sq.shape != param.shape:
            msg = f"the optimizer state of {name} does not fit this model"
            raise InvalidInputError(msg)
        state[index] = {"step": torch.tensor(float(step)), "exp_avg": avg, "exp_avg_sq": avg_sq}
    return state, step
