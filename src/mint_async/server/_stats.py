"""An immutable snapshot of the server's counters, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = ["ServerStatistics", "reset_peaks", "snapshot"]


@dataclass(frozen=True, kw_only=True)
class ServerStatistics:
    """What the server has done so far (a snapshot; see ``MintServerApp.statistics``)."""

    accepted: Mapping[str, int]
    """Accepted requests per operation (``sample``, ``forward_backward``, ...), duplicates excluded."""
    executed: Mapping[str, int]
    """Backend executions per operation."""
    duplicates: int
    """Resubmissions answered with the original promise."""
    rejected: int
    """Answers with a 4xx/5xx status (injected faults included)."""
    outstanding: int
    """Accepted requests without an answer yet."""
    peak_outstanding: int
    held_polls: int
    """``retrieve_future`` polls held right now."""
    peak_held_polls: int
    http_in_flight: int
    """HTTP requests being served right now."""
    peak_http_in_flight: int
    heartbeats: int
    """Session heartbeats received."""
    telemetry_events: int
    """Telemetry events received (accepted and dropped)."""
    faults: Mapping[str, int]
    """How often each injected fault fired."""
    fwdbwd_bodies: Mapping[str, int]
    """forward/forward_backward bodies received per wire (``json``, ``protobuf``, ``protobuf+zstd``)."""
    results_sent: Mapping[str, int]
    """forward/forward_backward/sample results delivered per wire (``json``, ``protobuf``)."""
    sessions: int
    models: int
    samplers: int
    futures: int
    """Records held (finished ones until retention expires)."""


def snapshot(core: ServerCore) -> ServerStatistics:
    """Read the counters (plain reads; safe enough from another thread for monitoring)."""
    state, futures = core.state, core.futures
    stats = futures.stats
    return ServerStatistics(
        accepted=dict(stats.by_kind),
        executed=state.executed_by_kind(),
        duplicates=state.duplicates,
        rejected=state.rejected,
        outstanding=stats.outstanding,
        peak_outstanding=stats.peak_outstanding,
        held_polls=stats.held_polls,
        peak_held_polls=stats.peak_held_polls,
        http_in_flight=state.http_in_flight,
        peak_http_in_flight=state.peak_http_in_flight,
        heartbeats=state.heartbeats,
        telemetry_events=state.telemetry_events,
        faults=core.faults.counts(),
        fwdbwd_bodies=dict(state.fwdbwd_bodies),
        results_sent=dict(state.results_sent),
        sessions=sum(1 for s in list(state.sessions.values()) if s.finished is None),
        models=sum(1 for m in list(state.models.values()) if not m.unloaded),
        samplers=len(state.samplers),
        futures=len(futures),
    )


def reset_peaks(core: ServerCore) -> None:
    """Set every ``peak_*`` counter to its current value (to measure a new phase)."""
    stats, state = core.futures.stats, core.state
    stats.peak_outstanding = stats.outstanding
    stats.peak_held_polls = stats.held_polls
    state.peak_http_in_flight = state.http_in_flight
