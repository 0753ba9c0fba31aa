"""``mint-async loadtest compare a.json b.json``: two saved results side by side, with deltas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from ._report import LoadTestReport

__all__ = ["compare_reports"]

Better = Literal["higher", "lower", None]

_ROWS: Final[tuple[tuple[str, Better], ...]] = (
    ("completed", None),
    ("failed", "lower"),
    ("error_rate", "lower"),
    ("duration", None),
    ("request_throughput", "higher"),
    ("input_token_throughput", "higher"),
    ("output_token_throughput", "higher"),
    ("training_token_throughput", "higher"),
    ("mean_submit_latency_ms", "lower"),
    ("p50_submit_latency_ms", "lower"),
    ("p99_submit_latency_ms", "lower"),
    ("mean_time_to_result_ms", "lower"),
    ("p25_time_to_result_ms", "lower"),
    ("p50_time_to_result_ms", "lower"),
    ("p75_time_to_result_ms", "lower"),
    ("p90_time_to_result_ms", "lower"),
    ("p95_time_to_result_ms", "lower"),
    ("p99_time_to_result_ms", "lower"),
    ("max_time_to_result_ms", "lower"),
    ("mean_polls", "lower"),
    ("client_cpu_ms_per_request", "lower"),
    ("client_cpu_percent", None),
    ("p99_event_loop_lag_ms", "lower"),
    ("peak_in_flight", None),
)
_KIND_ROWS: Final[tuple[tuple[str, Better], ...]] = (
    ("throughput", "higher"),
    ("p50_time_to_result_ms", "lower"),
    ("p99_time_to_result_ms", "lower"),
)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _row(name: str, a: object, b: object, better: Better) -> list[str]:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return [name, _fmt(a), _fmt(b), "-", "-", ""]
    delta = b - a
    change = f"{delta / a:+.1%}" if a else ("-" if not delta else "new")
    verdict = ""
    if better is not None and delta:
        improved = (delta > 0) == (better == "higher")
        verdict = "better" if improved else "worse"
    return [name, _fmt(a), _fmt(b), f"{delta:+,.4g}", change, verdict]


def compare_reports(a: LoadTestReport, b: LoadTestReport, names: Sequence[str] = ("A", "B")) -> str:
    """A plain-text table: each headline metric of ``a`` and ``b``, the delta and whether B is better."""
    rows: list[list[str]] = [["metric", names[0], names[1], "delta", "change", ""]]
    for key, better in _ROWS:
        if key in a.data or key in b.data:
            rows.append(_row(key, a.data.get(key), b.data.get(key), better))
    kinds_a, kinds_b = a.data.get("kinds", {}), b.data.get("kinds", {})
    for kind in sorted(set(kinds_a) | set(kinds_b)):
        for key, better in _KIND_ROWS:
            rows.append(
                _row(
                    f"{kind}.{key}",
                    kinds_a.get(kind, {}).get(key),
                    kinds_b.get(kind, {}).get(key),
                    better,
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines: list[str] = []
    for i, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    header = [
        f"A: {names[0]} — {a.data.get('date', '?')}, {a.data.get('target', '?')}",
        f"B: {names[1]} — {b.data.get('date', '?')}, {b.data.get('target', '?')}",
        "",
    ]
    return "\n".join(header + lines)
