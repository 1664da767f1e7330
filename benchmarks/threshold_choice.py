"""How long should a call run before the loop calls it blocked? Measured, not guessed.

``python -m benchmarks.threshold_choice [--quick] [--json OUT]``

Two sides of the choice of ``block_threshold``:

1. How long calls that do *not* block take on this machine (a cached 4 KiB ``os.pread``,
   ``os.stat``, ``getaddrinfo`` of a numeric address, a small sqlite query, a small
   ``json.dumps``): their p99.9 and max must sit well below the threshold, or they would
   be migrated (a false positive costs a thread hand-off, ~50-250 us).
2. What a threshold costs when calls *do* block: with the predictor off, each of 20
   sequential ``time.sleep(0.02)`` calls stalls the loop for threshold + detection +
   hand-off; we report the loop's timer lag (p50/p99/max), and the watchdog thread's CPU
   while 10,000 non-blocking calls a second run (the watchdog polls once per threshold
   while calls come).
3. The hand-over, end to end, for each watchdog: from the moment a call starts (and
   blocks in ``time.sleep``) to the moment another task runs on the loop's new thread,
   minus the threshold. This is what the syslet promise costs when a call does block.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import sysletloop

from .stats import percentile

THRESHOLDS_MS = (0.25, 0.5, 1.0, 2.0)


def _durations(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def non_blocking_call_times(n: int) -> dict[str, dict[str, float]]:
    """Duration percentiles (us) of calls that do not block, called directly."""
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as f:
        f.write(os.urandom(1 << 20))
        f.flush()
        fd = f.fileno()
        os.pread(fd, 1 << 20, 0)
        db = sqlite3.connect(":memory:")
        db.execute("create table t (k integer primary key, v text)")
        db.executemany("insert into t values (?, ?)", [(i, str(i)) for i in range(1000)])
        doc = {str(i): list(range(10)) for i in range(100)}
        calls: dict[str, Callable[[], object]] = {
            "pread 4 KiB (cached)": lambda: os.pread(fd, 4096, 8192),
            "os.stat": lambda: os.stat(f.name),
            "getaddrinfo 127.0.0.1": lambda: socket.getaddrinfo("127.0.0.1", 80),
            "sqlite select by key": lambda: db.execute("select v from t where k=500").fetchone(),
            "json.dumps 3 KiB": lambda: json.dumps(doc),
        }
        result = {}
        for name, fn in calls.items():
            fn()
            d = _durations(fn, n)
            result[name] = {
                "p50_us": percentile(d, 50) * 1e6,
                "p99_us": percentile(d, 99) * 1e6,
                "p99.9_us": percentile(d, 99.9) * 1e6,
                "max_us": max(d) * 1e6,
            }
        db.close()
        return result


def _thread_cpu_seconds(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _lag_and_cpu(blocking: int, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    lags: list[float] = []
    stop = False

    async def ticker() -> None:
        while not stop:
            t0 = loop.time()
            await asyncio.sleep(0.001)
            lags.append(loop.time() - t0 - 0.001)

    tick = asyncio.create_task(ticker())
    for _ in range(blocking):
        await sysletloop.call(time.sleep, 0.02)
    stop = True
    await tick
    # Watchdog CPU while ~10k non-blocking calls a second run.
    watchdog = loop._syslet.watchdog
    assert watchdog is not None and watchdog.native_id is not None
    cpu0 = _thread_cpu_seconds(watchdog.native_id)
    t0 = time.monotonic()
    calls = 0
    while time.monotonic() - t0 < seconds:
        for _ in range(10):
            await sysletloop.call(int)
        calls += 10
        await asyncio.sleep(0.001)  # pace to ~10k calls/s or fewer (select has ms steps)
    cpu = _thread_cpu_seconds(watchdog.native_id) - cpu0
    wall = time.monotonic() - t0
    # ...and while idle (no calls).
    cpu1 = _thread_cpu_seconds(watchdog.native_id)
    await asyncio.sleep(seconds)
    idle_cpu = _thread_cpu_seconds(watchdog.native_id) - cpu1
    return {
        "lag_p50_ms": percentile(lags, 50) * 1e3,
        "lag_p99_ms": percentile(lags, 99) * 1e3,
        "lag_max_ms": max(lags) * 1e3,
        "calls_per_s": calls / wall,
        "watchdog_cpu_busy_pct": 100 * cpu / wall,
        "watchdog_cpu_idle_pct": 100 * idle_cpu / seconds,
        "watchdog": 1.0 if watchdog.kind == "c" else 0.0,
    }


async def _handover_samples(samples: int, threshold: float) -> list[float]:
    out = []
    for _ in range(samples):
        started = [0.0]

        def blocker(started: list[float] = started) -> None:
            started[0] = time.monotonic()
            time.sleep(0.005)

        async def watcher(home: int = threading.get_ident()) -> float:
            while threading.get_ident() == home:
                await asyncio.sleep(0)
            return time.monotonic()

        call = asyncio.ensure_future(sysletloop.call(blocker))
        moved_at = await watcher()
        await call
        out.append(moved_at - started[0] - threshold)
    return out


def handover_latency(samples: int) -> dict[str, dict[str, float]]:
    """Call start -> another task running on the loop's new thread, minus the threshold."""
    out = {}
    threshold = 0.001
    for kind in ("python", "c"):
        os.environ["SYSLETLOOP_WATCHDOG"] = kind
        try:
            lat = sysletloop.run(
                _handover_samples(samples, threshold),
                block_threshold=threshold,
                predict_blocking=False,
            )
        except ImportError as exc:
            out[kind] = {"error": str(exc)}  # type: ignore[dict-item]
            continue
        finally:
            os.environ.pop("SYSLETLOOP_WATCHDOG", None)
        out[kind] = {
            "p50_us": percentile(lat, 50) * 1e6,
            "p90_us": percentile(lat, 90) * 1e6,
            "p99_us": percentile(lat, 99) * 1e6,
        }
    return out


def threshold_costs(blocking: int, seconds: float) -> dict[str, dict[str, float]]:
    out = {}
    for ms in THRESHOLDS_MS:
        out[f"{ms} ms"] = sysletloop.run(
            _lag_and_cpu(blocking, seconds), block_threshold=ms / 1e3, predict_blocking=False
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.threshold_choice")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args(argv)
    n = 5_000 if args.quick else 50_000
    seconds = 1.0 if args.quick else 3.0
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "non_blocking_calls": non_blocking_call_times(n),
        "thresholds": threshold_costs(10 if args.quick else 20, seconds),
        "handover": handover_latency(50 if args.quick else 200),
    }
    print(f"Calls that do not block, called directly ({n} each), us:")
    print(f"  {'call':<24}{'p50':>8}{'p99':>8}{'p99.9':>8}{'max':>9}")
    for name, r in results["non_blocking_calls"].items():
        print(
            f"  {name:<24}{r['p50_us']:>8.1f}{r['p99_us']:>8.1f}"
            f"{r['p99.9_us']:>8.1f}{r['max_us']:>9.1f}"
        )
    print("Per threshold (predictor off; timer lag while blocking calls run one by one):")
    print(
        f"  {'threshold':<10}{'lag p50':>9}{'lag p99':>9}{'lag max':>9}"
        f"{'calls/s':>9}{'wd busy %':>10}{'wd idle %':>10}"
    )
    for name, r in results["thresholds"].items():
        print(
            f"  {name:<10}{r['lag_p50_ms']:>9.2f}{r['lag_p99_ms']:>9.2f}{r['lag_max_ms']:>9.2f}"
            f"{r['calls_per_s']:>9.0f}{r['watchdog_cpu_busy_pct']:>10.2f}"
            f"{r['watchdog_cpu_idle_pct']:>10.3f}"
        )
    print("Hand-over, call start -> loop running on a new thread, minus the 1 ms threshold:")
    for kind, r in results["handover"].items():
        if "error" in r:
            print(f"  {kind:<8} {r['error']}")
        else:
            print(
                f"  {kind:<8} p50 {r['p50_us']:7.0f} us   p90 {r['p90_us']:7.0f} us"
                f"   p99 {r['p99_us']:7.0f} us"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
