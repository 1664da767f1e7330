"""How late a blocked call's thread gets back to its task while the loop computes.

Run from the checkout's root, with sysletloop installed in the Python (3.12+ for the
``step`` case)::

    python -m benchmarks.takeback_gil [--repeat 15] [--sleep-ms 10] [--work-ms 1]

Issue 19 asks what the GIL does to a step that blocked unwrapped: when its call returns,
its thread must take the GIL before it can even ask for the loop back, and while the new
owner runs bytecode it holds the GIL until the switch interval (``sys.getswitchinterval``,
5 ms) forces a hand-over. Every thread-based completion waits the same way (a
``to_thread`` worker needs the GIL to post its result), so the cases put the claimed
step beside the wrapped calls, on the same computing loop:

=============  ==========================================================================
case           one task blocks for ``sleep_ms`` while another computes in steps of
               ``work_ms`` (pure Python, ``await asyncio.sleep(0)`` between)
=============  ==========================================================================
step           sysletloop, ``migrate_steps``: ``time.sleep`` straight in the coroutine
to_thread      sysletloop: ``await asyncio.to_thread(time.sleep, ...)``
stock          stock asyncio: ``await asyncio.to_thread(time.sleep, ...)``
idle-step      as ``step``, with nothing computing (the floor: the take-back alone)
=============  ==========================================================================

The *delay* is the time from the sleep's end (its start plus ``sleep_ms``; the kernel's
own overshoot, measured by the same sleep in a lone thread, is subtracted) to the next
line of the blocked task. Median and maximum over ``repeat`` blocks, per case, and the
switch interval in force.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time

import sysletloop

CASES = ("step", "to_thread", "stock", "idle-step")


def busy(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


async def one_block(case: str, sleep: float, work: float) -> float:
    """The delay of one block, in seconds (overshoot not subtracted)."""
    stop = False

    async def computer() -> None:
        while not stop:
            busy(work)
            await asyncio.sleep(0)

    other = None if case == "idle-step" else asyncio.create_task(computer())
    await asyncio.sleep(0.002)  # the computer is under way
    start = time.perf_counter()
    if case in ("step", "idle-step"):
        time.sleep(sleep)
    else:
        await asyncio.to_thread(time.sleep, sleep)
    delay = time.perf_counter() - (start + sleep)
    stop = True
    if other is not None:
        await other
    return delay


def run_case(case: str, sleep: float, work: float, repeat: int) -> tuple[list[float], int]:
    """The delays of ``repeat`` blocks, and the steps the loop claimed (0 on stock)."""

    async def main() -> tuple[list[float], int]:
        delays = [await one_block(case, sleep, work) for _ in range(repeat)]
        loop = asyncio.get_running_loop()
        claimed = loop.syslet_stats().claimed_steps if hasattr(loop, "syslet_stats") else 0
        return delays, claimed

    if case == "stock":
        return asyncio.run(main())
    if case in ("step", "idle-step"):
        return sysletloop.run(main(), migrate_steps=True)
    return sysletloop.run(main())


def overshoot(sleep: float, repeat: int) -> float:
    """The median overshoot of ``time.sleep(sleep)`` in a lone thread, in seconds."""
    out: list[float] = []

    def measure() -> None:
        for _ in range(repeat):
            start = time.perf_counter()
            time.sleep(sleep)
            out.append(time.perf_counter() - start - sleep)

    thread = threading.Thread(target=measure)
    thread.start()
    thread.join()
    return statistics.median(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.takeback_gil")
    parser.add_argument("--repeat", type=int, default=15, help="blocks per case")
    parser.add_argument("--sleep-ms", type=float, default=10.0)
    parser.add_argument("--work-ms", type=float, default=1.0, help="the computing steps")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.sleep_ms <= 0 or args.work_ms <= 0:
        parser.error("--repeat, --sleep-ms and --work-ms must be positive")
    sleep, work = args.sleep_ms / 1000, args.work_ms / 1000
    cases = [c for c in args.cases if sys.version_info >= (3, 12) or "step" not in c]
    base = overshoot(sleep, args.repeat)
    print(
        f"Python {sys.version.split()[0]}, switch interval "
        f"{sys.getswitchinterval() * 1000:.1f} ms, sleep {args.sleep_ms} ms, computing "
        f"steps {args.work_ms} ms, {args.repeat} blocks; sleep overshoot "
        f"{base * 1e6:.0f} us (subtracted)"
    )
    print(f"{'case':<10} {'median delay (ms)':>18} {'max (ms)':>9} {'claimed':>8}")
    for case in cases:
        raw, claimed = run_case(case, sleep, work, args.repeat)
        delays = [d - base for d in raw]
        print(
            f"{case:<10} {statistics.median(delays) * 1000:>18.2f} "
            f"{max(delays) * 1000:>9.2f} {claimed:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
