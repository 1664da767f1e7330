"""What ``sysletloop.call_eager`` adds to a call that does not block, in wall time.

Run from the checkout's root, with sysletloop installed in the Python::

    python -m benchmarks.eager_cost [--n 200000] [--repeat 7]

One task on a syslet loop times ``n`` direct calls of ``len(b)``, then ``n`` of ``await
sysletloop.call_eager(len, b)``, ``repeat`` times, and prints the median difference per
call in microseconds with every repeat's value (issue 12's target: at most 1 us). The
two loops run back to back in the same task, so what differs is the eager path alone:
the ``await`` of a coroutine, the predictor's look-up and the watchdog's arm and disarm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import sysletloop


async def measure(n: int, repeat: int) -> list[float]:
    data = b"abc"
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            len(data)
        direct = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(n):
            await sysletloop.call_eager(len, data)
        eager = time.perf_counter() - start
        out.append((eager - direct) / n * 1e6)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eager_cost")
    parser.add_argument("--n", type=int, default=200_000, help="calls per timed loop")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    per_call = sysletloop.run(measure(args.n, args.repeat))
    print(
        f"Python {sys.version.split()[0]}: call_eager over a direct call, "
        f"median {statistics.median(per_call):.3f} us "
        f"[{', '.join(f'{x:.3f}' for x in per_call)}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
