"""Statistics for benchmark numbers: percentiles, medians with their spread, ratios.

Everything here is pure and deterministic so that it can be tested exactly. Percentiles
use linear interpolation between closest ranks (numpy's default, "type 7"), so the p50 of
an even-sized sample is the mean of the two middle values, like ``statistics.median``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """The median of repeated measurements with the smallest and largest seen."""

    median: float
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of a non-empty sample, interpolated linearly."""
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], not {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float]) -> Spread:
    """Median, min and max of repeated measurements (one value per repeat)."""
    if not values:
        raise ValueError("spread of an empty sample")
    return Spread(percentile(values, 50), min(values), max(values), len(values))


def paired_ratios(values: Sequence[float | None], baseline: Sequence[float | None]) -> list[float]:
    """Ratios value/baseline, repeat by repeat (entry i of both is repeat i of one run).

    A repeat with a missing side (None: that contender failed or skipped it) or a zero
    baseline gives no ratio: a ratio is only ever taken within one repeat.
    """
    ratios = []
    for value, base in zip(values, baseline, strict=False):
        if value is None or base is None:
            continue
        if base != 0 and math.isfinite(base) and math.isfinite(value):
            ratios.append(value / base)
    return ratios


def median_interval(values: Sequence[float], coverage: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free interval for the median of ``values``: (low, high, its coverage).

    The order statistics ``x(k) <= median <= x(n+1-k)`` hold with probability
    ``1 - 2 P(B < k)``, ``B ~ Binomial(n, 1/2)``, whatever the distribution (the sign
    test's interval). ``k`` is the largest that keeps at least ``coverage``; with fewer
    than 6 values none does, and the interval is min-max with the coverage it has (75% at
    3 values, 94% at 5). Unlike min-max, it narrows as rounds are added: 10 rounds give
    the 2nd to 9th smallest (98%), 20 the 6th to 15th (96%).
    """
    if not values:
        raise ValueError("median interval of an empty sample")
    ordered = sorted(values)
    n = len(ordered)

    def cover(k: int) -> float:  # 1 - 2 P(B < k)
        return 1.0 - 2.0 * sum(math.comb(n, i) for i in range(k)) / 2.0**n

    k = 1
    while k + 1 <= (n + 1) // 2 and cover(k + 1) >= coverage:
        k += 1
    return ordered[k - 1], ordered[n - k], cover(k)


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """p50, p99, max and mean of one run's latency samples (same unit as the samples)."""
    if not samples:
        raise ValueError("latency summary of an empty sample")
    return {
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "max": max(samples),
        "mean": math.fsum(samples) / len(samples),
    }


def thin(values: Sequence[float], limit: int) -> list[float]:
    """At most ``limit`` values picked evenly from ``values`` (order kept, ends kept).

    Used to keep raw samples (lag over time, latency CDFs) small in ``results.json``.
    """
    if limit < 2:
        raise ValueError("thin needs a limit of at least 2")
    n = len(values)
    if n <= limit:
        return list(values)
    step = (n - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]


def cdf_quantiles(samples: Sequence[float], points: int = 101) -> list[float]:
    """The sample's quantiles at ``points`` evenly spaced probabilities from 0 to 1.

    A latency CDF is then drawn as these values against ``linspace(0, 1, points)``;
    storing quantiles instead of raw samples keeps the file small and exact at the tails
    we care about when ``points`` is 101 or more (p99 is one of them).
    """
    if not samples:
        return []
    if points < 2:
        raise ValueError("cdf_quantiles needs at least 2 points")
    return [percentile(samples, 100.0 * i / (points - 1)) for i in range(points)]
