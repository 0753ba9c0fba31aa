"""From a finished run's measurements to its report (one process's, or several merged).

Shared by a single-process run (:mod:`._run`) and a distributed one (:mod:`._distributed`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import sniffio

from .._version import __version__
from ._config import LoadTestConfig
from ._engine import RunResult
from ._histogram import LatencyHistogram
from ._recorder import KindStats, Recorder, WorkloadStats
from ._report import SCHEMA, LoadTestReport, latency_block, polls_block
from ._target import Target

__all__ = ["build_report"]


def _merge(
    recorder: Recorder, attr: Literal["submit", "time_to_result"], keep: int
) -> LatencyHistogram:
    return LatencyHistogram.merged(
        (getattr(k, attr) for k in recorder.kinds.values()), keep_samples=keep
    )


def build_report(
    config: LoadTestConfig,
    result: RunResult,
    target: Target,
    server: dict[str, Any] | None,
    started_at: str,
    *,
    backend: str | None = None,
) -> LoadTestReport:
    """The report of a finished run (``backend``: the generators' event loop; default: ours)."""
    m, keep = result.measured, config.keep_samples
    submit, ttr = _merge(m, "submit", keep), _merge(m, "time_to_result", keep)
    kinds = m.kinds
    completed = sum(k.completed for k in kinds.values())
    failed = sum(k.failed for k in kinds.values())
    duration = result.duration

    def per_s(n: float) -> float | None:
        return round(n / duration, 3) if duration > 0 else None

    polls: Counter[int] = Counter()
    for k in kinds.values():
        polls.update(k.polls)
    inputs = sum(k.input_tokens for k in kinds.values())
    outputs = sum(k.output_tokens for k in kinds.values())
    training = sum(k.training_tokens for k in kinds.values())
    histograms: dict[str, LatencyHistogram] = {
        "submit_latency": submit,
        "time_to_result": ttr,
        "event_loop_lag": result.event_loop_lag,
    }
    if config.load_model == "open":
        histograms["schedule_lag"] = m.schedule_lag
    for name, k in kinds.items():
        histograms[f"submit_latency:{name}"] = k.submit
        histograms[f"time_to_result:{name}"] = k.time_to_result
    for name, w in m.workloads.items():
        histograms[f"operation:{name}"] = w.duration
    exact = all(h.exact for h in histograms.values())
    completed_counts = [h.count for h in (submit, ttr)]
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "date": started_at,
        "mint_async_version": __version__,
        "backend": backend or sniffio.current_async_library(),
        "target": target.base_url + (" (local server)" if target.local is not None else ""),
        "stopped_by": result.stopped_by,
        "duration": round(duration, 4),
        "completed": completed,
        "failed": failed,
        "cancelled": sum(k.cancelled for k in kinds.values()),
        "error_rate": round(failed / (completed + failed), 6) if completed + failed else None,
        "request_throughput": per_s(completed),
        "total_input_tokens": inputs,
        "total_output_tokens": outputs,
        "total_training_tokens": training,
        "input_token_throughput": per_s(inputs),
        "output_token_throughput": per_s(outputs),
        "training_token_throughput": per_s(training),
        **latency_block("submit_latency", submit),
        **latency_block("time_to_result", ttr),
        **polls_block(polls),
        "client_cpu_seconds": round(result.cpu_seconds, 4),
        "client_cpu_percent": round(100 * result.cpu_seconds / duration, 2)
        if duration > 0
        else None,
        "client_cpu_ms_per_request": round(1e3 * result.cpu_seconds / completed, 4)
        if completed
        else None,
        **latency_block("event_loop_lag", result.event_loop_lag),
        "peak_in_flight": result.peak_in_flight,
        **(latency_block("schedule_lag", m.schedule_lag) if config.load_model == "open" else {}),
        **({"missed_arrivals": result.missed_arrivals} if config.load_model == "open" else {}),
        "accepted_by_kind": {name: k.accepted for name, k in kinds.items()},
        "errors_by_status": dict(m.errors_by_status.most_common()),
        "errors_by_category": dict(m.errors_by_category.most_common()),
        "errors_by_type": dict(m.errors_by_type.most_common()),
        "retries_by_status": dict(m.retries_by_status.most_common()),
        "queue_state_changes": dict(result.queue_states.changes.most_common()),
        "queue_state_seconds": result.queue_states.seconds(),
        "kinds": {name: _kind(k, per_s) for name, k in kinds.items()},
        "workloads": {name: _workload(config, name, w, per_s) for name, w in m.workloads.items()},
        "warmup": _warmup(result.warmup, result.timeline.origin),
        "server": server,
        "timeline": _timeline(result),
        "percentile_precision": "exact"
        if exact
        else f"histogram, within 0.05% (more than {keep:,} values)",
        "samples": max(completed_counts),
        "config": config.describe(),
    }
    return LoadTestReport(data, histograms)


def _kind(k: KindStats, per_s: Callable[[float], float | None]) -> dict[str, Any]:
    return {
        "accepted": k.accepted,
        "completed": k.completed,
        "failed": k.failed,
        "cancelled": k.cancelled,
        "throughput": per_s(k.completed),
        "input_tokens": k.input_tokens,
        "output_tokens": k.output_tokens,
        "training_tokens": k.training_tokens,
        **latency_block("submit_latency", k.submit),
        **latency_block("time_to_result", k.time_to_result),
        **polls_block(k.polls),
    }


def _workload(
    config: LoadTestConfig, name: str, w: WorkloadStats, per_s: Callable[[float], float | None]
) -> dict[str, Any]:
    kind = next(x.type for x in config.workloads if x.name == name)
    return {
        "type": kind,
        "completed": w.completed,
        "failed": w.failed,
        "cancelled": w.cancelled,
        "throughput": per_s(w.completed),
        **latency_block("operation", w.duration),
    }


def _warmup(r: Recorder, origin: float) -> dict[str, Any]:
    last = r.last_completion
    return {
        "last_finished_at": None if last is None else round(last - origin, 4),
        "completed": sum(k.completed for k in r.kinds.values()),
        "failed": sum(k.failed for k in r.kinds.values()),
        "cancelled": sum(k.cancelled for k in r.kinds.values()),
        "accepted_by_kind": {name: k.accepted for name, k in r.kinds.items()},
        "errors_by_status": dict(r.errors_by_status),
        "errors_by_category": dict(r.errors_by_category),
        "errors_by_type": dict(r.errors_by_type),
        "retries_by_status": dict(r.retries_by_status),
        "total_polls": sum(n * c for k in r.kinds.values() for n, c in k.polls.items()),
    }


def _timeline(result: RunResult) -> dict[str, Any]:
    bin_seconds, completed, failed = result.timeline.binned()
    return {
        # Rounded like the warmup's own timestamps, so their order survives the rounding.
        "warmup_end": None
        if result.timeline.warmup_end is None
        else round(result.timeline.warmup_end, 4),
        "bin_seconds": bin_seconds,
        "completed": completed,
        "failed": failed,
        "in_flight": [[round(t, 3), n] for t, n in result.timeline.in_flight],
    }
