"""LatencyHistogram: exact nearest-rank percentiles while raw values fit, bounded error beyond."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mint_async import InvalidInputError
from mint_async.loadtest import LatencyHistogram
from mint_async.loadtest._histogram import rank

QS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


def brute(values: list[float], q: float) -> float:
    """Nearest rank, written out: the ceil(q*n)-th smallest value (at least the first)."""
    ordered = sorted(values)
    k = max(1, math.ceil(round(q * len(ordered), 9)))
    return ordered[k - 1]


values_st = st.lists(
    st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=300,
)


@given(values_st)
@settings(max_examples=150, deadline=None)
def test_exact_percentiles_equal_brute_force(values: list[float]) -> None:
    """With the raw values kept, every percentile equals the brute-force nearest rank."""
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    assert h.exact and h.count == len(values)
    for q in QS:
        assert h.percentile(q) == brute(values, q)
    assert h.min == min(values) and h.max == max(values)
    assert h.mean == pytest.approx(sum(values) / len(values))


@given(values_st)
@settings(max_examples=150, deadline=None)
def test_bucket_percentiles_within_the_documented_bound(values: list[float]) -> None:
    """Without raw values, percentiles are within 1/(2*sub_buckets) of the exact ones."""
    h = LatencyHistogram(keep_samples=0)
    for v in values:
        h.record(v)
    assert not h.exact
    for q in QS:
        exact, approx = brute(values, q), h.percentile(q)
        assert approx is not None
        assert abs(approx - exact) <= max(exact / (2 * h.sub_buckets), 1e-9)


def test_a_million_values_switch_to_buckets_with_small_error() -> None:
    """Past keep_samples the histogram stops storing values but stays within 0.05 %."""
    rng = random.Random(1)
    values = [rng.lognormvariate(-3, 1.2) for _ in range(60_000)]
    h = LatencyHistogram(keep_samples=50_000)
    for v in values:
        h.record(v)
    assert not h.exact and len(h.samples) == 50_000
    for q in QS:
        exact = brute(values, q)
        got = h.percentile(q)
        assert got is not None and abs(got - exact) <= exact * 0.0005


def test_small_sub_buckets_bound() -> None:
    """The bound follows sub_buckets: 16 sub-buckets give at most 1/32 relative error."""
    rng = random.Random(2)
    values = [rng.expovariate(10) for _ in range(5000)]
    h = LatencyHistogram(sub_buckets=16, keep_samples=0)
    for v in values:
        h.record(v)
    for q in QS:
        exact, got = brute(values, q), h.percentile(q)
        assert got is not None and abs(got - exact) <= exact / 32 + 1e-9


def test_merge_and_round_trip() -> None:
    """Merging adds counts and samples; to_dict/from_dict keeps bucket percentiles and aggregates."""
    a, b = LatencyHistogram(), LatencyHistogram()
    for i in range(1, 101):
        (a if i % 2 else b).record(i / 1000)
    merged = LatencyHistogram.merged([a, b])
    assert merged.count == 100 and merged.exact
    assert merged.percentile(0.5) == 0.05 and merged.percentile(0.99) == 0.099
    restored = LatencyHistogram.from_dict(merged.to_dict())
    assert restored.count == 100 and restored.min == 0.001 and restored.max == 0.1
    assert restored.total == pytest.approx(merged.total)
    for q in QS:
        assert restored.percentile(q) == merged.percentile(q, exact=False)
    assert sum(n for _, _, n in restored.buckets()) == 100


def test_empty_and_invalid() -> None:
    """Empty histograms answer None; negative/NaN values, bad quantiles and settings are refused."""
    h = LatencyHistogram()
    assert h.percentile(0.5) is None and h.mean is None
    for bad in (-1.0, math.nan):
        with pytest.raises(InvalidInputError):
            h.record(bad)
    with pytest.raises(InvalidInputError):
        h.percentile(1.5)
    with pytest.raises(InvalidInputError):
        LatencyHistogram(sub_buckets=1000)
    with pytest.raises(InvalidInputError):
        LatencyHistogram.from_dict(
            {"sub_buckets": 4, "count": 2, "sum": 1, "min": 0, "max": 1, "buckets": {"3": 1}}
        )


def test_rank_is_robust_to_binary_rounding() -> None:
    """0.29 * 100 is 28.999999999999996 in floating point; the rank is still 29."""
    assert (
        rank(0.29, 100) == 29 and rank(0.99, 100) == 99 and rank(0.0, 5) == 1 and rank(1.0, 5) == 5
    )
