"""Live progress: one refreshing line on stderr while the run goes.

A ``\\r``-rewritten line rather than a ``rich`` live table: it is all the
information there is (elapsed, done/errors, throughput, in flight, p50/p99 so
far), it costs no dependency, and it works in any terminal. It is drawn only
when the stream is a terminal (never into logs or pipes).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from ._histogram import LatencyHistogram

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["ProgressLine", "progress_text"]


def progress_text(engine: Engine) -> str:
    """The progress line of ``engine`` right now."""
    m = engine.measured
    done = sum(k.completed for k in m.kinds.values())
    errors = sum(k.failed for k in m.kinds.values())
    now = time.perf_counter()
    elapsed = now - engine.start
    start = engine.budget.measure_start
    phase = "warmup" if start is None else ""
    rate = done / (now - start) if start is not None and now > start else 0.0
    # Buckets only (keep_samples=0): cheap enough to redo twice a second.
    ttr = LatencyHistogram.merged((k.time_to_result for k in m.kinds.values()), keep_samples=0)
    p50, p99 = ttr.percentile(0.5, exact=False), ttr.percentile(0.99, exact=False)
    budget = engine.config.effective_requests
    total = f"/{budget:,}" if budget is not None else ""
    parts = [
        f"{elapsed:6.1f}s",
        f"{done:,}{total} ok",
        f"{errors:,} err",
        f"{rate:,.1f} req/s",
        f"{engine.live.in_flight:,} in flight",
        f"p50 {_ms(p50)} p99 {_ms(p99)}",
    ]
    if phase:
        parts.append(phase)
    return " | ".join(parts)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:,.1f}ms"


class ProgressLine:
    """Rewrites one line on a terminal; silent when the stream is not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._width = 0

    def update(self, engine: Engine) -> None:
        """Redraw with the engine's current numbers."""
        if not self._enabled:
            return
        text = progress_text(engine)
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self._stream.write("\r" + text + " " * pad)
        self._stream.flush()

    def close(self) -> None:
        """End the line (so the report starts on a fresh one)."""
        if self._enabled and self._width:
            self._stream.write("\n")
            self._stream.flush()
