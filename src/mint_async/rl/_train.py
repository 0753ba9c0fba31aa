"""``train()``: start (or resume) a run and drive the engine to the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from .. import MetricsSink, ServiceClient
from .. import types as t
from ._config import RLConfig
from ._engine import RLLoop, StepCallback
from ._env import RLDataset
from ._ops import Checkpoint, StepMetrics
from ._workers import RolloutExecutor

__all__ = ["train"]


async def train(
    service: ServiceClient,
    dataset: RLDataset,
    config: RLConfig,
    *,
    base_model: str | None = None,
    lora_rank: int | None = None,
    seed: int | None = None,
    executor: RolloutExecutor | None = None,
    on_step: StepCallback | None = None,
    wandb: t.WandbConfig | None = None,
) -> list[StepMetrics]:
    """Run RL on ``dataset``; resumes from ``config.run_dir/checkpoint.json`` when there is one.

    A resumed run restores weights and optimizer state, the step counter, the data
    position (groups sampled but not yet trained are sampled again, none is
    skipped or trained twice) and the sampler version, then continues to
    ``config.steps``. Returns the metrics of the steps run by this call.

    With ``wandb=WandbConfig(project, name)`` (the ``wandb`` extra) every step's
    :meth:`StepMetrics.scalars` are logged to one W&B run as ``rl/<metric>`` at W&B
    step = RL step (a resumed run continues the numbering), with the config as the
    run's config; a missing package is a ``WandbUnavailableError`` before anything is sent.

    Example::

        async with ServiceClient() as svc:
            history = await rl.train(svc, dataset, rl.RLConfig(steps=20, groups_per_step=8))
    """
    checkpoint = Checkpoint.load(config.run_dir) if config.run_dir is not None else None
    sink: MetricsSink | None = None
    close: Callable[[], None] | None = None
    if wandb is not None:
        from .._wandb import open_wandb_sink  # noqa: PLC0415 - wandb is optional

        run_config = {**_config_record(config), "base_model": base_model, "lora_rank": lora_rank}
        first = checkpoint.step if checkpoint is not None else 0
        sink, close = await open_wandb_sink(wandb, run_config, first_step=first)
    try:
        if checkpoint is not None:
            tc = await service.create_training_client_from_state_with_optimizer(
                checkpoint.state_path
            )
        else:
            tc = await service.create_lora_training_client(base_model, lora_rank, seed)
        loop = RLLoop(
            tc,
            dataset,
            config,
            executor=executor,
            checkpoint=checkpoint,
            on_step=on_step,
            metrics_sink=sink,
        )
        return await loop.run()
    finally:
        if close is not None:
            close()


def _config_record(config: RLConfig) -> dict[str, Any]:
    """The config as plain values (structs and paths as their text) for a W&B run config."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value: Any = getattr(config, f.name)
        out[f.name] = (
            value if value is None or isinstance(value, bool | int | float | str) else str(value)
        )
    return out
