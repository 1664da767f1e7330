"""The ``gevent`` contender of the ``unwrapped`` workload, in a child process of its own.

``python -m benchmarks.gevent_unwrapped --case sleep|recv --tasks N --seconds S
--period P [--port PORT]`` monkey-patches this interpreter (``gevent.monkey.patch_all()``,
before anything else is imported), then does what the workload does on an asyncio loop:
a greenlet ticks every ``P`` seconds and records how late each tick was; after 5 ms, ``N``
greenlets start together, each calling ``time.sleep(S)`` (``sleep``) or making one request
of the delay server on ``PORT`` and ``recv``-ing its answer on a plain blocking socket
(``recv``, :func:`benchmarks.delay_server.ask`), written exactly as on the loops; 5 ms
after the last ends, the ticker stops. It prints one JSON object: ``wall_s`` (first start
to last end), the ticks' ``times`` (since the ticker started) and ``lateness`` (seconds),
gevent's version and whether ``time`` and ``socket`` were patched. The harness turns them
into the same metrics as the loops' (:mod:`benchmarks.workloads.unwrapped`).

Why a child: patching replaces ``time.sleep``, ``socket`` and ``threading`` for the whole
interpreter and cannot be undone; in the harness's process it would change every other
contender's numbers.

Threads: one; the greenlets share it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

SETTLE = 0.005  # seconds of ticks before the calls start and after they end, as on the loops


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gevent_unwrapped")
    p.add_argument("--case", choices=("sleep", "recv"), required=True)
    p.add_argument("--tasks", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--period", type=float, default=0.001)
    p.add_argument("--port", type=int)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.case == "recv" and args.port is None:
        parser().error("--case recv needs --port")
    monkey: Any = importlib.import_module("gevent.monkey")
    monkey.patch_all()
    gevent: Any = importlib.import_module("gevent")
    # After the patching: ask() looks socket.create_connection up at each call.
    from benchmarks.delay_server import ask

    clock = time.perf_counter
    times: list[float] = []
    lateness: list[float] = []
    stop = [False]
    start = clock()

    def ticker() -> None:
        while not stop[0]:
            before = clock()
            gevent.sleep(args.period)
            after = clock()
            times.append(after - start)
            lateness.append(max(0.0, after - before - args.period))

    def one() -> None:
        if args.case == "sleep":
            time.sleep(args.seconds)  # gevent.sleep, once patched
        else:
            ask(args.port, args.seconds)

    ticking = gevent.spawn(ticker)
    gevent.sleep(SETTLE)
    t0 = clock()
    gevent.joinall([gevent.spawn(one) for _ in range(args.tasks)], raise_error=True)
    wall = clock() - t0
    gevent.sleep(SETTLE)
    stop[0] = True
    ticking.join()
    json.dump(
        {
            "wall_s": wall,
            "times": times,
            "lateness": lateness,
            "gevent": str(gevent.__version__),
            "patched": bool(
                monkey.is_module_patched("time") and monkey.is_module_patched("socket")
            ),
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
