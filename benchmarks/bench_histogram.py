"""Latency histogram: the hand-written ``LatencyHistogram`` vs ``hdrhistogram`` (HdrHistogram_py).

Does the maintained library give the load tester the same precision, merge
semantics and speed? Three measurements on the same values (log-normal
latencies, median ~18 ms, a long tail up to seconds):

* **record**: seconds per ``record`` call from Python, what the load generator
  pays per request and metric (``hdrh`` records integers: the float seconds are
  scaled to microseconds or nanoseconds first, as a caller would have to);
* **precision**: the largest relative error of P25..P99.9 against the exact
  nearest-rank percentiles (``ours``: exact while raw values are kept, and its
  bucket reading with ``keep_samples=0``; ``hdrh``: 3 significant figures, the
  usual setting, unit µs and ns);
* **merge**: seconds to merge 8 histograms of ``n/8`` values each, and whether the
  merged percentiles equal those of one histogram of all the values.

Output: one JSON line per measurement on stdout, a table on stderr.
Run: ``python benchmarks/bench_histogram.py [--n 200000]``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from _common import emit, machine, table
from mint_async.loadtest import LatencyHistogram
from mint_async.loadtest._histogram import rank

QS = (0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
HOUR = 3600.0


def _hdr(unit: float) -> Any:
    """1 unit .. 1 hour, 3 significant figures (``hdrh`` has no type information)."""
    module: Any = importlib.import_module("hdrh.histogram")
    return module.HdrHistogram(1, int(HOUR / unit), 3)


def _record_ours(values: Sequence[float], keep: int) -> LatencyHistogram:
    h = LatencyHistogram(keep_samples=keep)
    for v in values:
        h.record(v)
    return h


def _record_hdr(values: Sequence[float], unit: float) -> Any:
    h = _hdr(unit)
    scale = 1 / unit
    for v in values:
        h.record_value(max(1, round(v * scale)))
    return h


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _errors(exact: list[float], read: Callable[[float], float]) -> float:
    n = len(exact)
    worst = 0.0
    for q in QS:
        want = exact[rank(q, n) - 1]
        worst = max(worst, abs(read(q) - want) / want)
    return worst


def _measure(
    name: str,
    build: Callable[[Sequence[float]], Any],
    read: Callable[[Any, float], float],
    values: list[float],
    exact: list[float],
) -> dict[str, Any]:
    record_s = min(_timed(lambda: build(values)) for _ in range(3)) / len(values)
    whole = build(values)
    error = _errors(exact, lambda q: read(whole, q))
    parts = [build(values[i::8]) for i in range(8)]
    merged: Any
    if isinstance(whole, LatencyHistogram):
        merge_s = _timed(lambda: LatencyHistogram.merged(parts, keep_samples=whole.keep_samples))
        merged = LatencyHistogram.merged(parts, keep_samples=whole.keep_samples)
    else:
        merged = _hdr(1e-6 if "µs" in name else 1e-9)

        def add_all() -> None:
            for p in parts:
                merged.add(p)

        merge_s = _timed(add_all)
    return {
        "histogram": name,
        "record_us": round(record_s * 1e6, 3),
        "max_rel_error": error,
        "merge_8_ms": round(merge_s * 1e3, 3),
        "merge_equals_whole": all(read(merged, q) == read(whole, q) for q in QS),
    }


def main() -> None:
    """Measure, print JSON lines and a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    values = [rng.lognormvariate(math.log(0.018), 1.2) for _ in range(args.n)]
    exact = sorted(values)
    emit({"bench": "histogram", "machine": machine(), "n": args.n})

    contenders: dict[
        str, tuple[Callable[[Sequence[float]], Any], Callable[[Any, float], float]]
    ] = {
        "ours (raw values kept)": (
            lambda vs: _record_ours(vs, 1_000_000),
            lambda h, q: float(h.percentile(q)),
        ),
        "ours (buckets only)": (
            lambda vs: _record_ours(vs, 0),
            lambda h, q: float(h.percentile(q)),
        ),
        "hdrh, µs, 3 sig. figs": (
            lambda vs: _record_hdr(vs, 1e-6),
            lambda h, q: h.get_value_at_percentile(q * 100) * 1e-6,
        ),
        "hdrh, ns, 3 sig. figs": (
            lambda vs: _record_hdr(vs, 1e-9),
            lambda h, q: h.get_value_at_percentile(q * 100) * 1e-9,
        ),
    }
    if importlib.util.find_spec("hdrh") is None:
        print("note: hdrhistogram is not installed; its rows are skipped", file=sys.stderr)
        contenders = {k: v for k, v in contenders.items() if k.startswith("ours")}
    rows: list[list[object]] = []
    for name, (build, read) in contenders.items():
        record = _measure(name, build, read, values, exact)
        emit(record)
        rows.append(
            [
                name,
                f"{record['record_us']:.2f}",
                f"{record['max_rel_error']:.2e}",
                f"{record['merge_8_ms']:.1f}",
                "yes" if record["merge_equals_whole"] else "NO",
            ]
        )
    table(
        f"histograms: {args.n:,} log-normal latencies; precision = worst relative error of "
        f"P25..P99.9 vs exact nearest rank",
        ["histogram", "record µs/value", "max rel. error", "merge 8 parts ms", "merge == whole"],
        rows,
    )


if __name__ == "__main__":
    main()
