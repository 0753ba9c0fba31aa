"""Streaming training metrics to Weights & Biases (optional ``wandb`` package)."""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from typing import Any

import anyio

from . import types as t
from ._exceptions import WandbUnavailableError

__all__ = ["open_wandb_sink"]


async def open_wandb_sink(
    config: t.WandbConfig, run_config: dict[str, Any], *, first_step: int = 0
) -> tuple[Callable[[str, dict[str, float]], None], Callable[[], None]]:
    """Start a W&B run; returns ``(sink, close)``: the metrics sink and the run's finisher.

    Each call of the sink logs one step, numbered from ``first_step``:
    ``{"<operation>/<metric>": value}``.
    """
    try:
        wb: Any = importlib.import_module("wandb")
    except ImportError as exc:
        msg = "wandb=WandbConfig(...) needs the wandb package: pip install 'mint-async[wandb]'"
        raise WandbUnavailableError(msg) from exc
    run: Any = await anyio.to_thread.run_sync(
        lambda: wb.init(
            project=config.project, name=config.name, config=run_config, reinit="create_new"
        )
    )
    steps = itertools.count(first_step)

    def sink(operation: str, metrics: dict[str, float]) -> None:
        run.log({f"{operation}/{k}": v for k, v in metrics.items()}, step=next(steps))

    def close() -> None:
        run.finish()

    return sink, close
