"""``train()``: start (or resume) a run and drive the engine to the end."""

from __future__ import annotations

from .. import ServiceClient
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
) -> list[StepMetrics]:
    """Run RL on ``dataset``; resumes from ``config.run_dir/checkpoint.json`` when there is one.

    A resumed run restores weights and optimizer state, the step counter, the data
    position (groups sampled but not yet trained are sampled again, none is
    skipped or trained twice) and the sampler version, then continues to
    ``config.steps``. Returns the metrics of the steps run by this call.

    Example::

        async with ServiceClient() as svc:
            history = await rl.train(svc, dataset, rl.RLConfig(steps=20, groups_per_step=8))
    """
    checkpoint = Checkpoint.load(config.run_dir) if config.run_dir is not None else None
    if checkpoint is not None:
        tc = await service.create_training_client_from_state_with_optimizer(checkpoint.state_path)
    else:
        tc = await service.create_lora_training_client(base_model, lora_rank, seed)
    loop = RLLoop(tc, dataset, config, executor=executor, checkpoint=checkpoint, on_step=on_step)
    return await loop.run()
