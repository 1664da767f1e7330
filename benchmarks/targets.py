"""An issue's targets, judged against one run: the workloads that carry them (``fastapi``,
issue 11; ``net_throughput``, issue 12) save them in ``results.json`` as
``{"contender": name, "cases": {case: {"rps_ratio": r, "lag_p99_ms": ms | null}}}``:
``contender``'s req/s, over stock asyncio's in the same round, must be at least ``r``
(the median of the per-round ratios), and its loop lag p99 at most ``ms`` where given.

A verdict also says whether the run *resolved* it: whether the distribution-free
interval of the median ratio (:func:`benchmarks.stats.median_interval`) lies on one side
of the target. A median on the right side whose interval straddles the target is "met"
but within the noise: more rounds narrow the interval, longer rounds do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.stats import median_interval

RESOLVING = 0.9  # the least coverage of the median's interval that can resolve a target


@dataclass(frozen=True)
class Verdict:
    """One case's target, against one run's numbers."""

    case: str
    ratio: Mapping[str, Any] | None  # SPREAD of the contender's req/s ratio, or None
    target: float
    lag_p99_ms: float | None  # the contender's median lag p99
    lag_target_ms: float | None
    met: bool | None  # None: not measured

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
        return (
            iv is not None and iv[2] >= RESOLVING and (iv[0] >= self.target or iv[1] < self.target)
        )

    def text(self) -> str:
        want = f">= {self.target:g}x" + (
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
        measured = result.get("cases", {}).get(case, {}).get("metrics", {})
        ratio = (measured.get("rps") or {}).get("ratio")
        lag = (measured.get("lag_p99_ms") or {}).get("median")
        met: bool | None = None
        if ratio is not None:
            met = ratio["median"] >= t["rps_ratio"]
            if t["lag_p99_ms"] is not None:
                met = met and lag is not None and lag <= t["lag_p99_ms"]
        out.append(Verdict(case, ratio, t["rps_ratio"], lag, t["lag_p99_ms"], met))
    return out
