"""An issue's targets, judged against one run: the workloads that carry them (``fastapi``,
issue 11; ``net_throughput``, issue 12; ``unwrapped``, issue 19) save them in
``results.json`` as ``{"contender": name, "cases": {case: {RATIO_KEY: r, "lag_p99_ms": ms |
null}}}``. The ratio key names the metric and which way it must go (:data:`RATIOS`):
``rps_ratio``, ``contender``'s req/s over stock asyncio's in the same round must be at
least ``r``; ``wall_ratio``, its wall time over stock asyncio's at most ``r`` (each the
median of the per-round ratios). Its loop lag p99 must be at most ``ms`` where given.

A verdict also says whether the run *resolved* it: whether the distribution-free
interval of the median ratio (:func:`benchmarks.stats.median_interval`) lies on one side
of the target. A median on the right side whose interval straddles the target is "met"
but within the noise: more rounds narrow the interval, longer rounds do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from benchmarks.stats import median_interval

RESOLVING = 0.9  # the least coverage of the median's interval that can resolve a target

Better = Literal["higher", "lower"]
# A case target's ratio key: (the metric whose ratio is judged, which way is better).
RATIOS: Mapping[str, tuple[str, Better]] = {
    "rps_ratio": ("rps", "higher"),  # at least r
    "wall_ratio": ("wall_s", "lower"),  # at most r
    "iops_ratio": ("iops", "higher"),  # at least r (random_reads, issue 20)
    "files_ratio": ("files_per_s", "higher"),  # at least r (metadata, issue 20)
}
# How a report names a target's metric.
METRIC_WORDS: Mapping[str, str] = {
    "rps": "req/s",
    "wall_s": "wall time",
    "iops": "reads/s",
    "files_per_s": "files/s",
}


@dataclass(frozen=True)
class Verdict:
    """One case's target, against one run's numbers."""

    case: str
    ratio: Mapping[str, Any] | None  # SPREAD of the contender's ratio of ``metric``, or None
    target: float
    lag_p99_ms: float | None  # the contender's median lag p99
    lag_target_ms: float | None
    met: bool | None  # None: not measured
    metric: str = "rps"
    better: Better = "higher"  # "higher": the ratio must be at least target; "lower": at most

    @property
    def words(self) -> str:
        """The judged metric, as a report names it (``req/s``, ``wall time``)."""
        return METRIC_WORDS.get(self.metric, self.metric)

    @property
    def interval(self) -> tuple[float, float, float] | None:
        """(low, high, coverage) of the median ratio, from the per-round ratios."""
        values = [v for v in (self.ratio or {}).get("values") or () if v is not None]
        return median_interval(values) if values else None

    @property
    def resolved(self) -> bool:
        """The median's interval covers it at least RESOLVING (5 rounds or more) and lies
        wholly on one side of the target."""
        iv = self.interval
        if iv is None or iv[2] < RESOLVING:
            return False
        if self.better == "lower":
            return iv[1] <= self.target or iv[0] > self.target
        return iv[0] >= self.target or iv[1] < self.target

    def text(self) -> str:
        sign = "<=" if self.better == "lower" else ">="
        want = f"{sign} {self.target:g}x" + (
            f", lag p99 <= {self.lag_target_ms:g} ms" if self.lag_target_ms is not None else ""
        )
        if self.met is None:
            return f"{want}: not measured"
        verdict = f"{want}: {'met' if self.met else 'MISSED'}"
        iv = self.interval
        if iv is None or self.resolved:
            return verdict
        if iv[2] < RESOLVING:
            return f"{verdict} (not resolved: too few rounds, the interval covers {iv[2]:.0%})"
        return (
            f"{verdict} (within the noise: the median's {iv[2]:.0%} interval "
            f"{iv[0]:.2f}-{iv[1]:.2f} spans {self.target:g})"
        )


def verdicts(w: Mapping[str, Any], goal: Mapping[str, Any] | None = None) -> list[Verdict]:
    """Per case of a workload's results entry that was run: did the contender meet its
    target? ``goal``: the targets when the entry has none saved; no targets, no verdicts."""
    goal = w.get("targets") or goal
    if not goal:
        return []
    result = w["results"].get(goal["contender"], {})
    out = []
    for case, t in goal["cases"].items():
        if case not in w["params"].get("cases", ()):
            continue  # not run: no verdict at all
        key = next(k for k in RATIOS if k in t)
        metric, better = RATIOS[key]
        want, lag_want = float(t[key]), t.get("lag_p99_ms")
        measured = result.get("cases", {}).get(case, {}).get("metrics", {})
        ratio = (measured.get(metric) or {}).get("ratio")
        lag = (measured.get("lag_p99_ms") or {}).get("median")
        met: bool | None = None
        if ratio is not None:
            median = float(ratio["median"])
            met = median <= want if better == "lower" else median >= want
            if lag_want is not None:
                met = met and lag is not None and lag <= lag_want
        out.append(Verdict(case, ratio, want, lag, lag_want, met, metric, better))
    return out
