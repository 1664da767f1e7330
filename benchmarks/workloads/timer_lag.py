"""Workload 8, timer lag while blocking calls run (the core issue's measure; paper §2.1:
"the submitting process never blocks").

A task sleeps 1 ms in a loop and records how late each wake-up was, while (a) 20
``time.sleep(0.05)`` calls run one after another through the contender, and (b) 20 start
together (``gather``). Lag p50/p99/max and wall time per case; the lag over time is kept
for the plot. The inline baseline stalls the loop ~50 ms per call; a thread pool should
stay near the timer's resolution; sysletloop stalls each call for its block threshold
plus the hand-off.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from benchmarks.contenders.base import CALL, Api, Contender
from benchmarks.stats import latency_summary, thin
from benchmarks.workloads.base import CaseResult, Cases, Metric, Profile, Ticker, Workload, run_main

SAMPLES_KEPT = 1500  # lag-over-time points stored per case


class TimerLag(Workload[None]):
    name = "timer_lag"
    number = 8
    title = "Timer lag while blocking calls run"
    claim = "The submitting loop never blocks: its timers fire on time while calls block"
    paper = "§2.1"
    needs = frozenset({CALL})
    metrics = (
        Metric("lag_p50_ms", "ms", "lower", "median lateness of a 1 ms timer"),
        Metric("lag_p99_ms", "ms", "lower", "99th percentile lateness"),
        Metric("lag_max_ms", "ms", "lower", "worst lateness"),
        Metric("wall_s", "s", "lower", "time for all the blocking calls"),
    )
    headline = (
        ("sequential", "lag_p99_ms"),
        ("concurrent", "lag_p99_ms"),
        ("concurrent", "wall_s"),
    )

    def params(self, profile: Profile) -> dict[str, Any]:
        if profile == "smoke":
            return {"calls": 3, "sleep": 0.01}
        return {"calls": 20, "sleep": 0.05}

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, "calls": 2}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> None:
        return None

    def measure(self, contender: Contender, state: None, params: Mapping[str, Any]) -> Cases:
        calls = int(params["calls"])
        seconds = float(params["sleep"])

        async def main(api: Api) -> Cases:
            cases: Cases = {}
            for case in ("sequential", "concurrent"):
                cases[case] = await _lag(api, case, calls, seconds)
            return cases

        return run_main(contender, main)


async def _lag(api: Api, case: str, calls: int, seconds: float) -> CaseResult:
    ticker = Ticker(api)

    async def blockers() -> float:
        await api.sleep(0.005)  # a few ticks before
        t0 = api.clock()
        if case == "sequential":
            for _ in range(calls):
                await api.call(time.sleep, seconds)
        else:
            await api.gather(*(lambda: api.call(time.sleep, seconds) for _ in range(calls)))
        wall = api.clock() - t0
        await api.sleep(0.005)  # and a few after
        ticker.stop = True
        return wall

    _, wall = await api.pair(ticker.run, blockers)
    lag = latency_summary(ticker.lateness)
    return CaseResult(
        metrics={
            "lag_p50_ms": lag["p50"] * 1e3,
            "lag_p99_ms": lag["p99"] * 1e3,
            "lag_max_ms": lag["max"] * 1e3,
            "wall_s": wall,
        },
        samples={
            "t_s": thin(ticker.times, SAMPLES_KEPT),
            "lag_ms": thin([v * 1e3 for v in ticker.lateness], SAMPLES_KEPT),
        },
        extra={"loop_stats_end": api.stats()},
    )
