"""Helpers shared by the benchmark scripts: timing, JSON lines, ratio tables."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any


def machine() -> dict[str, Any]:
    """A short description of the machine the numbers come from."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
    }


def time_call(fn: Callable[[], object], *, repeat: int, warmup: int = 2) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn`` (after warm-up), GC off while timing."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return samples


def time_interleaved(
    fns: dict[str, Callable[[], object]], *, repeat: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Like :func:`time_call` for several functions, alternating them round by round.

    Interleaving spreads machine noise (other processes, frequency changes) evenly
    over the contenders, so their ratios are fair even when absolute times drift.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    gc.collect()
    gc.disable()
    try:
        for i in range(repeat):
            rotated = order[i % len(order) :] + order[: i % len(order)]
            for name in rotated:
                start = time.perf_counter()
                fns[name]()
                samples[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return samples


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """min / median (the figure used for ratios) in milliseconds."""
    return {
        "min_ms": round(min(samples) * 1e3, 3),
        "median_ms": round(statistics.median(samples) * 1e3, 3),
    }


def emit(record: dict[str, Any]) -> None:
    """Print one JSON line."""
    print(json.dumps(record), flush=True)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain-text table to stderr (stdout stays machine-readable JSON lines)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [f"\n{title}", line, "-" * len(line)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    print("\n".join(out), file=sys.stderr, flush=True)


async def closed_loop(
    one: Callable[[], Awaitable[None]], requests: int, concurrency: int
) -> list[float]:
    """``requests`` calls of ``one``, ``concurrency`` tasks each running them back to back.

    Returns each call's latency. The harness every client benchmark uses, raw loops
    included: one task per request behind a limiter would add ~140 µs of CPU per
    request to a raw aiohttp loop and flatter every ratio to it.
    """
    import anyio

    latencies: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(min(concurrency, requests)):
            tg.start_soon(worker)
    return latencies
