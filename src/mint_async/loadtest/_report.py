"""The result of a load test: a JSON document (``--save-result``) and its console rendering.

Keys follow ``vllm bench serve``: flat headline numbers (``completed``,
``request_throughput``, ``p99_time_to_result_ms``, ...), latencies in
milliseconds with ``mean_`` / ``pNN_`` / ``max_`` prefixes. Below them:
``kinds`` (per server request kind), ``workloads`` (per workload's
operations), error and retry breakdowns, queue states, the timeline, the
local server's own counters, and the latency histograms (buckets).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, cast

from .._exceptions import InvalidInputError
from ._histogram import LatencyHistogram, rank

__all__ = ["PERCENTILES", "LoadTestReport", "latency_block", "polls_block"]

PERCENTILES: Final = (0.25, 0.50, 0.75, 0.90, 0.95, 0.99)
SCHEMA: Final = "mint-async-loadtest/1"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1e3, 4)


def latency_block(name: str, h: LatencyHistogram) -> dict[str, float | None]:
    """``mean_<name>_ms``, ``p25_<name>_ms`` ... ``p99_<name>_ms``, ``max_<name>_ms``."""
    out: dict[str, float | None] = {f"mean_{name}_ms": _ms(h.mean)}
    for q in PERCENTILES:
        out[f"p{round(q * 100)}_{name}_ms"] = _ms(h.percentile(q))
    out[f"max_{name}_ms"] = _ms(h.max if h.count else None)
    return out


def polls_block(polls: Counter[int]) -> dict[str, float | None]:
    """Total, and mean, p50, p99 and max per request, of retrieve_future calls (exact)."""
    n = sum(polls.values())
    if n == 0:
        return {
            "total_polls": 0,
            **dict.fromkeys(("mean_polls", "p50_polls", "p99_polls", "max_polls")),
        }
    ordered = sorted(polls.items())

    def pct(q: float) -> float:
        k, seen = rank(q, n), 0
        for value, count in ordered:
            seen += count
            if seen >= k:
                return float(value)
        return float(ordered[-1][0])  # pragma: no cover

    total = sum(v * c for v, c in ordered)
    return {
        "total_polls": total,
        "mean_polls": round(total / n, 4),
        "p50_polls": pct(0.5),
        "p99_polls": pct(0.99),
        "max_polls": float(ordered[-1][0]),
    }


class LoadTestReport:
    """A finished run's results: ``report["request_throughput"]``, ``report.render()``, ``report.save(path)``.

    ``histograms`` hold the latencies (raw values while they fit, so
    :meth:`percentile` is exact); a report loaded from JSON has bucket precision.
    """

    def __init__(
        self, data: Mapping[str, Any], histograms: Mapping[str, LatencyHistogram] | None = None
    ) -> None:
        self.data: dict[str, Any] = dict(data)
        if histograms is None:
            saved: Mapping[str, Any] = self.data.get("histograms") or {}
            histograms = {k: LatencyHistogram.from_dict(v) for k, v in saved.items()}
        self.histograms: dict[str, LatencyHistogram] = dict(histograms)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __repr__(self) -> str:
        return (
            f"LoadTestReport(completed={self.completed}, failed={self.failed}, "
            f"request_throughput={self.data.get('request_throughput')})"
        )

    @property
    def completed(self) -> int:
        """Requests that returned a result (measured phase)."""
        return int(self.data["completed"])

    @property
    def failed(self) -> int:
        """Requests that ended with an error (measured phase)."""
        return int(self.data["failed"])

    def percentile(self, metric: str, q: float) -> float | None:
        """Seconds: the ``q``-quantile of histogram ``metric`` (e.g. ``time_to_result``, ``time_to_result:sample``)."""
        h = self.histograms.get(metric)
        if h is None:
            msg = f"no histogram {metric!r}; have {sorted(self.histograms)}"
            raise InvalidInputError(msg)
        return h.percentile(q)

    # -- files -----------------------------------------------------------------------

    def to_json(self) -> str:
        """The JSON document (histograms as buckets; raw values are not saved)."""
        data = dict(self.data)
        data["histograms"] = {k: h.to_dict() for k, h in self.histograms.items()}
        return json.dumps(data, indent=2, sort_keys=False)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> LoadTestReport:
        """Read a report written by :meth:`save` (``--save-result``)."""
        try:
            data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"cannot read a load test result from {str(path)!r}: {exc}"
            raise InvalidInputError(msg) from None
        document = cast("dict[str, Any]", data) if isinstance(data, dict) else {}
        if document.get("schema") != SCHEMA:
            msg = f"{str(path)!r} is not a mint-async load test result (schema {SCHEMA})"
            raise InvalidInputError(msg)
        return cls(document)

    # -- console -----------------------------------------------------------------------

    def render(self) -> str:
        """The console result block (``vllm bench serve`` style)."""
        d = self.data
        lines: list[str] = []
        add = lines.append
        width = 54

        def row(label: str, value: object) -> None:
            add(f"{label + ':':<42}{_fmt(value)}")

        def section(title: str) -> None:
            add(f" {title} ".center(width, "-"))

        add(" mint-async load test result ".center(width, "="))
        row("Target", d["target"])
        row("Backend", d["backend"])
        load = d["config"]
        if load["load_model"] == "closed":
            row("Load model", f"closed loop, concurrency {load['concurrency']}")
        else:
            row("Load model", f"open loop, {load['rate']} req/s ({load['arrival']})")
        row("Workloads", ", ".join(w["name"] for w in load["workloads"]))
        if load.get("workers", 1) > 1 or load.get("ray_address"):
            where = f"Ray ({load['ray_address']})" if load.get("ray_address") else "processes"
            row("Load generators", f"{load['workers']} {where}")
        row("Stopped by", d["stopped_by"])
        row("Requests completed", d["completed"])
        row("Requests failed", d["failed"])
        if d["cancelled"]:
            row("Requests cancelled (drain timeout)", d["cancelled"])
        row("Error rate", None if d["error_rate"] is None else f"{d['error_rate']:.2%}")
        row("Duration (s)", d["duration"])
        row("Request throughput (req/s)", d["request_throughput"])
        for key, label in (
            ("input_token_throughput", "Input token throughput (tok/s)"),
            ("output_token_throughput", "Output token throughput (tok/s)"),
            ("training_token_throughput", "Training token throughput (tok/s)"),
        ):
            if d[key]:
                row(label, d[key])
        for name, title in (
            ("submit_latency", "Submit latency"),
            ("time_to_result", "Time to result"),
        ):
            section(title)
            row("Mean (ms)", d[f"mean_{name}_ms"])
            for q in PERCENTILES:
                row(f"P{round(q * 100)} (ms)", d[f"p{round(q * 100)}_{name}_ms"])
            row("Max (ms)", d[f"max_{name}_ms"])
        section("Polls per request")
        row(
            "Mean / P50 / P99 / Max",
            _slash(d, ("mean_polls", "p50_polls", "p99_polls", "max_polls")),
        )
        section("Per request kind")
        for kind, k in d["kinds"].items():
            row(
                kind,
                f"{k['completed']} ok, {k['failed']} failed, p50 {_fmt(k['p50_time_to_result_ms'])}"
                f" ms, p99 {_fmt(k['p99_time_to_result_ms'])} ms",
            )
        if any(w["type"] == "rl-step" for w in load["workloads"]) or len(d["workloads"]) > 1:
            section("Operations")
            for name, w in d["workloads"].items():
                row(
                    name,
                    f"{w['completed']} ok, {w['failed']} failed, {_fmt(w['throughput'])}/s,"
                    f" p50 {_fmt(w['p50_operation_ms'])} ms",
                )
        section("Errors")
        row("By HTTP status", _counts(d["errors_by_status"]))
        row("By RequestFailed category", _counts(d["errors_by_category"]))
        row("By type", _counts(d["errors_by_type"]))
        row("Submission retries by status", _counts(d["retries_by_status"]))
        section("Queue states")
        row("Changes into state", _counts(d["queue_state_changes"]))
        row("Client-seconds in state", _counts(d["queue_state_seconds"]))
        section("Client")
        row("CPU (s)", d["client_cpu_seconds"])
        row("CPU (% of one core)", d["client_cpu_percent"])
        row("CPU per request (ms)", d["client_cpu_ms_per_request"])
        row(
            "Event-loop lag mean/p99/max (ms)",
            _slash(d, ("mean_event_loop_lag_ms", "p99_event_loop_lag_ms", "max_event_loop_lag_ms")),
        )
        row("Peak requests in flight", d["peak_in_flight"])
        if load["load_model"] == "open":
            row(
                "Schedule lag p50/p99/max (ms)",
                _slash(d, ("p50_schedule_lag_ms", "p99_schedule_lag_ms", "max_schedule_lag_ms")),
            )
            # Older saved results (compare) have no such key.
            if d.get("missed_arrivals"):
                row("Missed arrivals (generator fell behind)", d["missed_arrivals"])
        server = d.get("server")
        if server:
            section("Local server")
            row("Accepted", _counts(server["accepted"]))
            row("Executed", _counts(server["executed"]))
            row("Duplicates answered", server["duplicates"])
            row("Faults fired", _counts(server["faults"]))
            row("Peak outstanding", server["peak_outstanding"])
        if d["warmup"]["completed"] or d["warmup"]["failed"]:
            row(
                "Warmup requests (not counted above)",
                d["warmup"]["completed"] + d["warmup"]["failed"],
            )
        row("Percentiles", d["percentile_precision"])
        add("=" * width)
        return "\n".join(lines)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _slash(d: Mapping[str, Any], keys: Iterable[str]) -> str:
    return " / ".join(_fmt(d[k]) for k in keys)


def _counts(counts: Mapping[str, object]) -> str:
    if not counts:
        return "-"
    return ", ".join(f"{k} {_fmt(v)}" for k, v in counts.items())
