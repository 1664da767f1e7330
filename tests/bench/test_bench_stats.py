from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.stats import (
    cdf_quantiles,
    latency_summary,
    median_interval,
    paired_ratios,
    percentile,
    spread,
    thin,
)

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


def test_percentile_known_values() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile([1, 2, 3, 4, 5], 0) == 1
    assert percentile([1, 2, 3, 4, 5], 100) == 5
    assert percentile([0, 10], 99) == pytest.approx(9.9)
    assert percentile([3, 1, 2], 50) == 2  # unsorted input


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(st.lists(finite, min_size=1, max_size=50), st.floats(min_value=0, max_value=100))
def test_percentile_is_within_range_and_median_agrees(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert min(values) <= p <= max(values)
    assert percentile(values, 50) == pytest.approx(statistics.median(values), rel=1e-9, abs=1e-6)


@given(st.lists(finite, min_size=1, max_size=30))
def test_percentile_is_monotonic(values: list[float]) -> None:
    qs = [percentile(values, q) for q in range(0, 101, 10)]
    assert qs == sorted(qs)


def test_spread() -> None:
    s = spread([3.0, 1.0, 2.0])
    assert (s.median, s.min, s.max, s.n) == (2.0, 1.0, 3.0, 3)
    assert s.as_dict() == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}


def test_paired_ratios_pair_by_repeat_and_skip_gaps() -> None:
    assert paired_ratios([2.0, 4.0, None, 6.0], [1.0, 2.0, 5.0, 0.0]) == [2.0, 2.0]
    assert paired_ratios([1.0, 2.0], [None, 4.0]) == [0.5]
    assert paired_ratios([1.0], [math.inf]) == []


def test_latency_summary() -> None:
    s = latency_summary([1.0] * 99 + [100.0])
    assert s["p50"] == 1.0 and s["max"] == 100.0
    assert s["mean"] == pytest.approx(1.99)
    assert 1.0 < s["p99"] < 100.0


@given(st.lists(finite, min_size=0, max_size=300), st.integers(min_value=2, max_value=50))
def test_thin_keeps_ends_order_and_limit(values: list[float], limit: int) -> None:
    out = thin(values, limit)
    assert len(out) == min(len(values), limit)
    if values:
        assert out[0] == values[0] and out[-1] == values[-1]


def test_cdf_quantiles() -> None:
    q = cdf_quantiles([float(i) for i in range(1, 101)], points=101)
    assert len(q) == 101 and q[0] == 1 and q[-1] == 100
    assert q == sorted(q)
    assert q[99] == pytest.approx(percentile(list(range(1, 101)), 99))
    assert cdf_quantiles([]) == []


def test_median_interval_is_the_sign_test_interval() -> None:
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0, 0.75)  # min-max, 1 - 2/8
    low, high, cover = median_interval([float(v) for v in range(1, 11)])
    assert (low, high) == (2.0, 9.0) and cover == pytest.approx(1 - 22 / 1024)
    low, high, cover = median_interval([float(v) for v in range(1, 21)])
    assert (low, high) == (6.0, 15.0) and cover >= 0.95
    with pytest.raises(ValueError):
        median_interval([])


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40))
def test_median_interval_holds_the_median(values: list[float]) -> None:
    low, high, cover = median_interval(values)
    assert low <= statistics.median(values) <= high and 0 <= cover < 1
