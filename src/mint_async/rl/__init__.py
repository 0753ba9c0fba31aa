"""mint_async.rl: an asynchronous RL engine — rollouts overlap training, staleness is bounded.

Example (the whole loop)::

    from mint_async import ServiceClient, rl, types

    async with ServiceClient() as svc:
        history = await rl.train(
            svc,
            dataset,  # an rl.RLDataset: data position -> group of environments
            rl.RLConfig(
                steps=50,
                groups_per_step=8,
                max_steps_off_policy=2,  # 0: synchronous on-policy
                loss_fn="importance_sampling",
                adam=types.AdamParams(learning_rate=1e-4),
                run_dir=Path("runs/rl"),  # metrics.jsonl + checkpoint.json
                checkpoint_every=10,
            ),
        )

See ``docs/rl.md`` for the engine's scheduling rules, environments, losses,
checkpoints and the process-pool and Ray workers.
"""

from __future__ import annotations

from ._config import RLConfig as RLConfig
from ._data import AdvantageMode as AdvantageMode
from ._data import group_advantages as group_advantages
from ._data import group_datums as group_datums
from ._data import trajectory_datums as trajectory_datums
from ._engine import RLLoop as RLLoop
from ._engine import StepCallback as StepCallback
from ._env import Action as Action
from ._env import ChatEnv as ChatEnv
from ._env import ChatGroupBuilder as ChatGroupBuilder
from ._env import Env as Env
from ._env import EnvGroupBuilder as EnvGroupBuilder
from ._env import Observation as Observation
from ._env import RLDataset as RLDataset
from ._env import StepResult as StepResult
from ._env import TokenEnv as TokenEnv
from ._env import TokenGroupBuilder as TokenGroupBuilder
from ._ops import Checkpoint as Checkpoint
from ._ops import MetricsLog as MetricsLog
from ._ops import StepMetrics as StepMetrics
from ._rollout import SampleFn as SampleFn
from ._rollout import Trajectory as Trajectory
from ._rollout import TrajectoryGroup as TrajectoryGroup
from ._rollout import Transition as Transition
from ._rollout import rollout_group as rollout_group
from ._tasks import DigitsDataset as DigitsDataset
from ._tasks import DigitShare as DigitShare
from ._train import train as train
from ._workers import InLoopRollouts as InLoopRollouts
from ._workers import ProcessPoolRollouts as ProcessPoolRollouts
from ._workers import RayRollouts as RayRollouts
from ._workers import RolloutExecutor as RolloutExecutor
from ._workers import RolloutJob as RolloutJob

__all__ = [
    "train",
    "RLConfig",
    "RLLoop",
    "StepCallback",
    "StepMetrics",
    "Checkpoint",
    "MetricsLog",
    # environments
    "Env",
    "EnvGroupBuilder",
    "RLDataset",
    "Observation",
    "Action",
    "StepResult",
    "TokenEnv",
    "TokenGroupBuilder",
    "ChatEnv",
    "ChatGroupBuilder",
    "DigitsDataset",
    "DigitShare",
    # rollouts and data
    "SampleFn",
    "Transition",
    "Trajectory",
    "TrajectoryGroup",
    "rollout_group",
    "AdvantageMode",
    "group_advantages",
    "group_datums",
    "trajectory_datums",
    # where rollouts run
    "RolloutExecutor",
    "RolloutJob",
    "InLoopRollouts",
    "ProcessPoolRollouts",
    "RayRollouts",
]
