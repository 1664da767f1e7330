"""Workload 5, the cost of a blocked operation (paper §4.2: "memory consumption will go up
as each blocked operation is tracked with a kernel thread ... This may be alleviated by
limiting the number ... issued as syslets at any given time").

N calls (10, 100, 1000) are started together, each blocking in a futex wait (no CPU, no
I/O) until released. They are released in waves: when the number of calls in flight has
stopped growing for ``settle`` seconds (every call that can start has started), all
waiting calls return. Measured per case: the peak number of calls in flight, the peak
growth of the process's OS threads and resident memory (sampled from /proc/self/status
every millisecond by a plain thread), memory per blocked call, process CPU per call and
wall time. ``default``: the contender's own cap (pool size, limiter, ``max_blocked``);
``uncapped``: the cap raised to N. Each repeat runs in a fresh interpreter so that one
contender's idle threads and heap do not count against the next.

Growth is measured from the process's state *before its first case* (not before each
case): a library that keeps idle threads cached between runs (trio's thread cache) reuses
them for the next, larger case, and those reused threads are still threads that the
blocked calls occupy. Measuring from each case's start would hide them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from benchmarks.contenders.base import CALL, IN_FLIGHT, Api, Contender
from benchmarks.workloads.base import CaseResult, Cases, Metric, Profile, Workload, run_main


def proc_status() -> tuple[int, int]:
    """(threads, resident KiB) of this process, from /proc/self/status."""
    threads = rss = 0
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return threads, rss


class Holder:
    """Holds blocked calls until the in-flight count stops growing, then releases them.

    Glossary: *in flight* = inside :meth:`block`. A wave ends when no call has entered for
    ``settle`` seconds; the monitor thread then bumps ``generation`` and wakes everyone
    who entered under the old one. Threads: ``block`` runs on the contender's threads (or
    the loop's, when inline); the monitor on its own; all shared state is under ``cond``.
    """

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self.cond = threading.Condition()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.generation = 0
        self.last_entry = time.perf_counter()
        self.done = False
        self.peak_threads = 0
        self.peak_rss = 0
        self._monitor = threading.Thread(target=self._watch, name="bench-holder", daemon=True)

    def start(self) -> None:
        self.peak_threads, self.peak_rss = proc_status()
        self._monitor.start()

    def stop(self) -> None:
        with self.cond:
            self.done = True
            self.generation += 1
            self.cond.notify_all()
        self._monitor.join()

    def block(self) -> None:
        with self.cond:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self.last_entry = time.perf_counter()
            generation = self.generation
            while self.generation == generation and not self.done:
                self.cond.wait(1.0)
            self.in_flight -= 1

    def _watch(self) -> None:
        while True:
            threads, rss = proc_status()
            with self.cond:
                if self.done:
                    return
                self.peak_threads = max(self.peak_threads, threads)
                self.peak_rss = max(self.peak_rss, rss)
                quiet = time.perf_counter() - self.last_entry
                if self.in_flight and quiet >= self.settle:
                    self.generation += 1
                    self.cond.notify_all()
            time.sleep(0.001)


def _cpu() -> float:
    """Process CPU seconds, all threads (CLOCK_PROCESS_CPUTIME_ID: ns, not 10 ms ticks)."""
    return time.process_time()


class BlockedCost(Workload[None]):
    name = "blocked_cost"
    number = 5
    title = "Cost of a blocked operation"
    claim = (
        "Each blocked operation costs a thread (memory, CPU); a cap on concurrently "
        "blocked operations bounds that cost"
    )
    paper = "§4.2"
    needs = frozenset({CALL, IN_FLIGHT})
    isolated = True
    metrics = (
        Metric("in_flight", "calls", "none", "peak calls blocked at once"),
        Metric("threads", "threads", "lower", "peak growth of the process's OS threads"),
        Metric("rss_kib", "KiB", "lower", "peak growth of resident memory"),
        Metric("kib_per_blocked", "KiB", "lower", "rss_kib / in_flight"),
        Metric("cpu_us_per_call", "us", "lower", "process CPU time / calls"),
        Metric("wall_s", "s", "lower", "time for all N calls"),
    )
    headline = (
        ("n1000/uncapped", "threads"),
        ("n1000/uncapped", "kib_per_blocked"),
        ("n1000/default", "wall_s"),
    )

    def params(self, profile: Profile) -> dict[str, Any]:
        return {
            "counts": [10, 100] if profile == "smoke" else [10, 100, 1000],
            "settle": {"smoke": 0.005, "quick": 0.01, "full": 0.02}[profile],
        }

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, "counts": [10]}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> None:
        return None

    def measure(self, contender: Contender, state: None, params: Mapping[str, Any]) -> Cases:
        cases: Cases = {}
        before = proc_status()
        for n in params["counts"]:
            for cap in ("default", "uncapped"):
                cap_n = None if cap == "default" else int(n)
                cases[f"n{n}/{cap}"] = _one_case(
                    contender, int(n), cap_n, float(params["settle"]), before
                )
        return cases


def _one_case(
    contender: Contender,
    n: int,
    max_threads: int | None,
    settle: float,
    before: tuple[int, int],
) -> CaseResult:
    holder = Holder(settle)

    async def main(api: Api) -> dict[str, Any] | None:
        await api.gather(*(lambda: api.call(holder.block) for _ in range(n)))
        return api.stats()

    threads0, rss0 = before
    cpu0 = _cpu()
    holder.start()
    t0 = time.perf_counter()
    try:
        stats = run_main(contender, main, max_threads=max_threads, timeout=120)
    finally:
        wall = time.perf_counter() - t0
        holder.stop()
    cpu = _cpu() - cpu0
    rss = max(0, holder.peak_rss - rss0)
    in_flight = holder.peak_in_flight
    return CaseResult(
        metrics={
            "in_flight": float(in_flight),
            "threads": float(max(0, holder.peak_threads - threads0 - 1)),  # less the monitor
            "rss_kib": float(rss),
            "kib_per_blocked": rss / in_flight if in_flight else 0.0,
            "cpu_us_per_call": cpu / n * 1e6,
            "wall_s": wall,
        },
        extra={"loop_stats_end": stats, "threads_before": threads0, "rss_kib_before": rss0},
    )
