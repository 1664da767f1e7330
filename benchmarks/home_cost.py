"""What home affinity costs a blocking call: wall time per call, with and without it.

``python -m benchmarks.home_cost [--calls N] [--rounds R] [--sleep S] [--json]``

One task makes ``N`` sequential ``asyncio.to_thread(time.sleep, S)`` calls (they block:
the first migrates the loop, the predictor hands off or sends away the rest), and the
cost of one call is its wall time minus ``S``. Three contenders, in paired rounds (each
round runs all three, one after the other, so a busy moment hits all of them): stock
asyncio's ``to_thread`` (a pool thread), sysletloop with ``home_affinity=True`` (the
default: each call runs on the home thread, the loop moves to a spare and comes back,
two hand-overs) and with ``home_affinity=False`` (each call goes to a spare, the loop
stays: one job hand-off and a ring post). Reported: the median over rounds of each
contender's microseconds per call above ``S``, and the median of the paired ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable

import sysletloop

CONTENDERS = ("asyncio-to_thread", "sysletloop", "sysletloop-away")


async def _calls(n: int, seconds: float) -> float:
    """Microseconds per call above ``seconds``."""
    started = time.perf_counter()
    for _ in range(n):
        await asyncio.to_thread(time.sleep, seconds)
    return (time.perf_counter() - started) / n * 1e6 - seconds * 1e6


def _runner(name: str, n: int, seconds: float) -> Callable[[], float]:
    if name == "asyncio-to_thread":
        return lambda: asyncio.run(_calls(n, seconds))
    affinity = name == "sysletloop"
    return lambda: sysletloop.run(_calls(n, seconds), home_affinity=affinity)


def measure(calls: int, rounds: int, seconds: float) -> dict[str, object]:
    per_call: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(rounds):
        for name in CONTENDERS:
            per_call[name].append(_runner(name, calls, seconds)())
    home, away = per_call["sysletloop"], per_call["sysletloop-away"]
    stock = per_call["asyncio-to_thread"]
    return {
        "calls": calls,
        "rounds": rounds,
        "sleep_s": seconds,
        "us_per_call_above_sleep": {k: statistics.median(v) for k, v in per_call.items()},
        "samples": per_call,
        "home_over_away": statistics.median(h / a for h, a in zip(home, away, strict=True)),
        "home_over_stock": statistics.median(h / s for h, s in zip(home, stock, strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.home_cost")
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per run")
    parser.add_argument("--rounds", type=int, default=7, help="paired rounds")
    parser.add_argument("--sleep", type=float, default=0.002, help="seconds each call blocks")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.rounds < 1 or not args.sleep > 0:
        parser.error("--calls and --rounds must be at least 1, --sleep positive")
    result = measure(args.calls, args.rounds, args.sleep)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    medians = result["us_per_call_above_sleep"]
    assert isinstance(medians, dict)
    print(
        f"blocking call cost, us per call above the {args.sleep * 1e3:g} ms it blocks "
        f"(median of {args.rounds} paired rounds of {args.calls} sequential calls), "
        f"CPython {sys.version.split()[0]}"
    )
    for name in CONTENDERS:
        print(f"  {name:<18} {medians[name]:8.1f}")
    print(f"  home/away ratio    {result['home_over_away']:8.2f}")
    print(f"  home/stock ratio   {result['home_over_stock']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
