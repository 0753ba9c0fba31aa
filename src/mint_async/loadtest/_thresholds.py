"""k6-style pass/fail criteria: ``p99_time_to_result<2s``, ``error_rate<0.01``.

Syntax: ``<metric>[{<kind or workload>}] <op> <value>`` with ``op`` one of
``< <= > >= == !=``.

Metrics:

* latencies — ``<stat>_<name>`` with ``stat`` ``mean``, ``max`` or a
  percentile ``pNN`` / ``pNN.N`` (any, e.g. ``p99.9``), and ``name`` one of
  ``submit_latency``, ``time_to_result``, ``event_loop_lag``,
  ``schedule_lag`` (open loop), ``operation`` (a workload's operations, needs
  ``{workload}``). Values need a unit: ``us``, ``ms``, ``s``, ``m``.
  ``{kind}`` picks one request kind: ``p99_time_to_result{sample}<1s``.
* ``error_rate`` — a fraction (``0.01``) or a percentage (``1%``).
* plain numbers — ``completed``, ``failed``, ``cancelled``,
  ``request_throughput``, ``input_token_throughput``,
  ``output_token_throughput``, ``training_token_throughput``,
  ``client_cpu_percent``, ``peak_in_flight``, ``mean_polls``, ``p99_polls``,
  ``max_polls``; ``duration`` and ``client_cpu_seconds`` take a time unit.

A metric without data (no requests of that kind) fails its threshold.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from .._exceptions import InvalidInputError
from ._config import parse_seconds
from ._report import LoadTestReport

__all__ = ["Threshold", "ThresholdResult", "check_thresholds"]

_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_SYNTAX: Final = re.compile(
    r"^\s*([a-z0-9_.]+)(?:\{([A-Za-z0-9_-]+)\})?\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$"
)
_LATENCY: Final = re.compile(r"^(mean|max|p\d{1,2}(?:\.\d+)?)_([a-z_]+)$")
_HISTOGRAMS: Final = (
    "submit_latency",
    "time_to_result",
    "event_loop_lag",
    "schedule_lag",
    "operation",
)
_PLAIN: Final = (
    "completed",
    "failed",
    "cancelled",
    "request_throughput",
    "input_token_throughput",
    "output_token_throughput",
    "training_token_throughput",
    "client_cpu_percent",
    "peak_in_flight",
    "mean_polls",
    "p99_polls",
    "max_polls",
)
_TIMES: Final = ("duration", "client_cpu_seconds")
_KIND_KEYS: Final = frozenset(
    {"completed", "failed", "cancelled", "mean_polls", "p99_polls", "max_polls"}
)


def _known() -> list[str]:
    stats = [f"{s}_{h}" for h in _HISTOGRAMS for s in ("mean", "p50", "p99", "max")]
    return [*stats, "error_rate", *_PLAIN, *_TIMES]


@dataclass(frozen=True)
class Threshold:
    """One criterion; build it with :meth:`parse`."""

    text: str
    metric: str
    scope: str | None
    op: str
    value: float
    """In base units: seconds for times, a fraction for error_rate."""

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """Parse ``p99_time_to_result<2s``, ``error_rate<=1%``, ``request_throughput>100``..."""
        match = _SYNTAX.match(text) if isinstance(text, str) else None
        if match is None:
            msg = (
                f"threshold {text!r}: expected <metric> <op> <value>, e.g. 'p99_time_to_result<2s'"
            )
            raise InvalidInputError(msg)
        metric, scope, op, raw = match.groups()
        latency = _LATENCY.match(metric)
        if latency is not None and latency.group(2) in _HISTOGRAMS:
            if latency.group(1).startswith("p") and not 0 <= float(latency.group(1)[1:]) <= 100:
                msg = f"threshold {text!r}: a percentile is between p0 and p100"
                raise InvalidInputError(msg)
            if latency.group(2) == "operation" and scope is None:
                msg = f"threshold {text!r}: operation latencies need a workload, e.g. p99_operation{{rl-step}}"
                raise InvalidInputError(msg)
            value = _time(text, raw)
        elif metric in _TIMES:
            value = _time(text, raw)
        elif metric == "error_rate":
            value = _number(text, raw[:-1]) / 100 if raw.endswith("%") else _number(text, raw)
        elif metric in _PLAIN:
            value = _number(text, raw)
        else:
            close = difflib.get_close_matches(metric, _known(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            msg = f"threshold {text!r}: unknown metric {metric!r}{hint} (known: {', '.join(_known())}, any pNN)"
            raise InvalidInputError(msg)
        if scope is not None and latency is None and metric not in _KIND_KEYS:
            msg = f"threshold {text!r}: {metric} has no per-kind value"
            raise InvalidInputError(msg)
        return cls(text.strip(), metric, scope, op, value)

    def actual(self, report: LoadTestReport) -> float | None:
        """The report's value of this metric (base units), or None without data."""
        latency = _LATENCY.match(self.metric)
        if latency is not None and latency.group(2) in _HISTOGRAMS:
            stat, name = latency.groups()
            key = name if self.scope is None else f"{name}:{self.scope}"
            h = report.histograms.get(key)
            if h is None or h.count == 0:
                return None
            if stat == "mean":
                return h.mean
            if stat == "max":
                return h.max
            return h.percentile(float(stat[1:]) / 100)
        source = report.data
        if self.scope is not None:
            source = report.data["kinds"].get(self.scope) or report.data["workloads"].get(
                self.scope
            )
            if source is None:
                return None
        value = source.get(self.metric)
        return None if value is None else float(value)

    def check(self, report: LoadTestReport) -> ThresholdResult:
        """Evaluate against ``report``."""
        actual = self.actual(report)
        passed = actual is not None and math.isfinite(actual) and _OPS[self.op](actual, self.value)
        return ThresholdResult(self, actual, passed)


def _number(text: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        msg = f"threshold {text!r}: {raw!r} is not a number"
        raise InvalidInputError(msg) from None
    if not math.isfinite(value):
        msg = f"threshold {text!r}: the value must be finite"
        raise InvalidInputError(msg)
    return value


def _time(text: str, raw: str) -> float:
    if not re.search(r"(us|ms|s|m)$", raw):
        msg = f"threshold {text!r}: give the time with a unit, e.g. 250ms or 2s"
        raise InvalidInputError(msg)
    return parse_seconds(raw, f"threshold {text!r}")


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold, the measured value, and whether it held."""

    threshold: Threshold
    actual: float | None
    passed: bool

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return f"{mark}  {self.threshold.text}  (actual: {self._shown()})"

    def _shown(self) -> str:
        if self.actual is None:
            return "no data"
        metric = self.threshold.metric
        latency = _LATENCY.match(metric)
        if (latency is not None and latency.group(2) in _HISTOGRAMS) or metric in _TIMES:
            return f"{self.actual * 1e3:,.3f}ms"
        if metric == "error_rate":
            return f"{self.actual:.4%}"
        return f"{self.actual:,.3f}"


def check_thresholds(
    report: LoadTestReport, thresholds: Iterable[str | Threshold]
) -> list[ThresholdResult]:
    """Evaluate every threshold (strings are parsed first; bad ones raise InvalidInputError)."""
    parsed = [th if isinstance(th, Threshold) else Threshold.parse(th) for th in thresholds]
    return [th.check(report) for th in parsed]
