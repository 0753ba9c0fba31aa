"""``--plot out.png``: latency histogram, throughput and in-flight over time (needs matplotlib).

Drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas: no pyplot
global state, no GUI backend, safe from any thread.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .._exceptions import InvalidInputError
from ._report import LoadTestReport

__all__ = ["plot_report", "require_matplotlib"]


def require_matplotlib() -> None:
    """Raise InvalidInputError (with the install hint) when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        msg = "plotting needs matplotlib: pip install 'mint-async[plot]'"
        raise InvalidInputError(msg)


def plot_report(report: LoadTestReport, path: str | Path, *, dpi: int = 100) -> Path:
    """Render ``report`` as a PNG (three panels) and return the path written."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    d = report.data
    fig = Figure(figsize=(12, 3.6), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    hist, thr, inf = fig.subplots(1, 3)
    _latency_histogram(hist, report)
    timeline: dict[str, Any] = d["timeline"]
    width: float = timeline["bin_seconds"]
    completed = [n / width for n in timeline["completed"]]
    failed = [n / width for n in timeline["failed"]]
    starts = [i * width for i in range(len(completed))]
    thr.bar(starts, completed, width=width, align="edge", color="#4c72b0", label="completed")
    thr.bar(
        starts, failed, width=width, align="edge", bottom=completed, color="#c44e52", label="failed"
    )
    thr.set_title("Throughput")
    thr.set_xlabel("seconds")
    thr.set_ylabel("requests / s")
    thr.legend(loc="lower right", fontsize="small")
    points: list[list[float]] = timeline["in_flight"]
    inf.step([p[0] for p in points], [p[1] for p in points], where="post", color="#55a868")
    inf.set_title("Requests in flight")
    inf.set_xlabel("seconds")
    inf.set_ylim(bottom=0)
    warmup_end = timeline["warmup_end"]
    for ax in (thr, inf):
        if warmup_end:
            ax.axvspan(0, warmup_end, color="#dddddd", zorder=0, label="warmup")
        ax.grid(alpha=0.3)
    config = d["config"]
    load = (
        f"concurrency {config['concurrency']}"
        if config["load_model"] == "closed"
        else f"{config['rate']} req/s {config['arrival']}"
    )
    fig.suptitle(  # pyright: ignore[reportUnknownMemberType] - matplotlib's **kwargs
        f"mint-async loadtest: {', '.join(w['name'] for w in config['workloads'])}, {load} — "
        f"{d['completed']:,} ok, {d['failed']:,} failed, {d['request_throughput'] or 0:,.1f} req/s",
        fontsize="medium",
    )
    out = Path(path)
    fig.savefig(out, format="png")  # pyright: ignore[reportUnknownMemberType]
    return out


def _latency_histogram(ax: Any, report: LoadTestReport) -> None:
    """Time to result, log-spaced bins (milliseconds), with p50 and p99 marked."""
    import numpy as np  # noqa: PLC0415

    h = report.histograms.get("time_to_result")
    ax.set_title("Time to result")
    ax.set_xlabel("ms")
    ax.set_ylabel("requests")
    if h is None or h.count == 0:
        ax.text(0.5, 0.5, "no completed requests", ha="center", transform=ax.transAxes)
        return
    if h.exact:
        values = np.asarray(h.samples) * 1e3
    else:  # bucket midpoints, weighted by count
        values = np.repeat(
            [(low + high) / 2 * 1e3 for low, high, _ in h.buckets()],
            [n for _, _, n in h.buckets()],
        )
    low, high = max(float(values.min()), 1e-3), max(float(values.max()), 2e-3)
    bins = np.geomspace(low, high * 1.0001, 40) if high > low * 1.01 else 20
    ax.hist(values, bins=bins, color="#4c72b0")
    if high > low * 10:
        ax.set_xscale("log")
    for q, style in ((0.5, "--"), (0.99, ":")):
        value = h.percentile(q)
        if value is not None:
            ax.axvline(value * 1e3, color="black", linestyle=style, label=f"p{round(q * 100)}")
    ax.legend(fontsize="small")
