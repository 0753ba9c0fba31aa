"""The endpoint under test: a given URL, or the local reference server in a child process.

The local server runs in its **own process** (``mint-async serve`` via
:func:`mint_async.testing.serve_subprocess`), not in the generator's: in one
process the two would share a GIL and a CPU core's worth of Python, and the
run would measure their contention instead of the server. A separate process
also keeps the generator's own CPU figure (``client_cpu``) honest, and its
counters stay reachable over HTTP for the report's server section.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncGenerator, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from .._config import ClientConfig
from .._exceptions import InvalidInputError
from ._config import LoadTestConfig

__all__ = ["Target", "open_target", "open_target_sync"]


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where requests go; ``local`` targets also expose the server's counters."""

    base_url: str
    api_key: str
    local: Any | None = None
    """The :class:`~mint_async.testing.SubprocessServer`, for a local target."""

    async def statistics(self) -> dict[str, Any] | None:
        """The local server's counters (None for a remote target)."""
        return await anyio.to_thread.run_sync(self.statistics_now)

    def statistics_now(self) -> dict[str, Any] | None:
        """:meth:`statistics`, blocking (for callers outside an event loop)."""
        if self.local is None:
            return None
        stats = self.local.statistics()
        return {
            "accepted": dict(stats.accepted),
            "executed": dict(stats.executed),
            "duplicates": stats.duplicates,
            "rejected": stats.rejected,
            "faults": dict(stats.faults),
            "peak_outstanding": stats.peak_outstanding,
            "peak_held_polls": stats.peak_held_polls,
            "peak_http_in_flight": stats.peak_http_in_flight,
        }

    async def reset_peaks(self) -> None:
        """Start the local server's ``peak_*`` counters afresh."""
        await anyio.to_thread.run_sync(self.reset_peaks_now)

    def reset_peaks_now(self) -> None:
        """:meth:`reset_peaks`, blocking."""
        if self.local is not None:
            self.local.reset_peaks()


def server_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the server counted between two snapshots (peaks: as of ``after``)."""

    def diff(key: str) -> dict[str, int]:
        old: dict[str, int] = before[key]
        new: dict[str, int] = after[key]
        return {k: v - old.get(k, 0) for k, v in sorted(new.items()) if v - old.get(k, 0)}

    return {
        "accepted": diff("accepted"),
        "executed": diff("executed"),
        "duplicates": after["duplicates"] - before["duplicates"],
        "rejected": after["rejected"] - before["rejected"],
        "faults": diff("faults"),
        "peak_outstanding": after["peak_outstanding"],
        "peak_held_polls": after["peak_held_polls"],
        "peak_http_in_flight": after["peak_http_in_flight"],
    }


@contextmanager
def open_target_sync(config: LoadTestConfig) -> Generator[Target]:
    """The configured endpoint; starts (and finally stops) the local server when there is none."""
    if config.base_url is not None:
        key = config.api_key or ClientConfig.resolve(base_url=config.base_url).api_key
        yield Target(base_url=config.base_url, api_key=key)
        return
    if importlib.util.find_spec("uvicorn") is None:
        msg = (
            "no base_url given, and the local server needs the 'server' extra: "
            "pip install 'mint-async[server]' (or pass --base-url / set MINT_BASE_URL)"
        )
        raise InvalidInputError(msg)
    from ..testing import serve_subprocess  # noqa: PLC0415 - server-only dependencies

    with serve_subprocess(
        ["--log-level", "error", *config.server_args], startup_timeout=60
    ) as server:
        yield Target(base_url=server.base_url, api_key=server.api_key, local=server)


@asynccontextmanager
async def open_target(config: LoadTestConfig) -> AsyncGenerator[Target]:
    """:func:`open_target_sync` for the event loop (start and stop run in a worker thread)."""
    manager = open_target_sync(config)
    target = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        yield target
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(manager.__exit__, None, None, None)
