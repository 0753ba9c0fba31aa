"""One generator's load: set the workloads up, run the engine, diff the server's counters.

Shared by a single-process run (:mod:`._run`) and each worker of a distributed one
(:mod:`._distributed`).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from .._config import Limits
from .._service import ServiceClient
from ._config import LoadTestConfig
from ._engine import Engine, RunResult
from ._progress import ProgressLine
from ._recorder import QueueStateTracker
from ._runners import make_runner
from ._target import Target, server_delta

__all__ = ["client_limits", "drive"]


def _seeded(seed: int) -> random.Random:
    """A seeded generator: load shapes are reproducible (nothing cryptographic here)."""
    return random.Random(seed)  # noqa: S311


def client_limits(config: LoadTestConfig) -> Limits:
    """Connection caps that never throttle the load model below what was asked."""
    want = config.effective_concurrency if config.load_model == "closed" else config.max_in_flight
    base = Limits()
    return Limits(
        session=base.session,
        train=max(base.train, want),
        sample=max(base.sample, want),
        retrieve=max(base.retrieve, 4 * want),
        keepalive=max(base.keepalive, want),
    )


async def drive(
    config: LoadTestConfig,
    svc: ServiceClient,
    target: Target,
    *,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> tuple[RunResult, dict[str, Any] | None]:
    """Set the workloads up (unmeasured), run the engine, diff the server's counters.

    ``ready``: awaited between the setup and the load (a distributed run's start barrier).
    """
    rng = _seeded(config.seed)
    engine_rng = _seeded(rng.randrange(2**32))
    tracker = QueueStateTracker()
    runners = [make_runner(w, _seeded(rng.randrange(2**32)), tracker) for w in config.workloads]
    slots = config.effective_concurrency if config.load_model == "closed" else 4
    for runner in runners:
        await runner.setup(svc, slots)
    if ready is not None:
        await ready()
    before = await target.statistics()
    await target.reset_peaks()
    progress = ProgressLine(sys.stderr) if config.progress else None
    engine = Engine(
        config,
        runners,
        engine_rng,
        tracker,
        on_tick=progress.update if progress is not None else None,
    )
    try:
        result = await engine.run()
    finally:
        if progress is not None:
            progress.close()
    after = await target.statistics()
    server = server_delta(before, after) if before is not None and after is not None else None
    return result, server
