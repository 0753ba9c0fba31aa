"""``run(config)`` / ``await run_async(config)``: set up, drive the load, build the report."""

from __future__ import annotations

import datetime
from typing import Any, Literal

import anyio
import sniffio

from .._service import ServiceClient
from ._build_report import build_report
from ._config import LoadTestConfig
from ._drive import client_limits, drive
from ._report import LoadTestReport
from ._target import open_target

__all__ = ["run", "run_async"]


async def run_async(config: LoadTestConfig) -> LoadTestReport:
    """Run a load test on the caller's event loop (asyncio or trio) and return its report.

    Example::

        report = await loadtest.run_async(LoadTestConfig(concurrency=64, requests=2000))
        print(report.render())
    """
    if config.distributed:
        from ._distributed import run_distributed  # noqa: PLC0415 - multi-process only

        backend = sniffio.current_async_library()
        return await anyio.to_thread.run_sync(
            lambda: run_distributed(config, backend="trio" if backend == "trio" else "asyncio")
        )
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    async with open_target(config) as target:
        settings: dict[str, Any] = {"limits": client_limits(config), **config.client_settings}
        async with ServiceClient(
            base_url=target.base_url, api_key=target.api_key, **settings
        ) as svc:
            outcome = await drive(config, svc, target)
    result, server = outcome
    return build_report(config, result, target, server, started_at)


def run(
    config: LoadTestConfig, *, backend: Literal["asyncio", "trio"] = "asyncio"
) -> LoadTestReport:
    """Run a load test in a new event loop (``backend``: asyncio or trio); blocking.

    Example::

        from mint_async import loadtest
        report = loadtest.run(loadtest.LoadTestConfig(concurrency=32, duration=10.0))
        print(report.render())

    With ``config.workers > 1`` or a ``ray_address`` the load is split over several
    generator processes and their results merged into one report of the same format.
    """
    if config.distributed:
        from ._distributed import run_distributed  # noqa: PLC0415 - multi-process only

        return run_distributed(config, backend=backend)
    return anyio.run(run_async, config, backend=backend)
