"""Reads that would block: io_uring (``uring_reads``) against today's thread hand-over.

Run from the checkout's root, with sysletloop installed in the Python::

    python -m benchmarks.uring_reads [--rounds 5] [--seconds 2] [--depth 32]

Issue 20's "beyond the anchors": should sysletloop send a read that would block to
io_uring instead of a spare thread? Both are sysletloop; only the option differs. Each
round runs ``depth`` tasks of 4 KiB random ``os.preadv`` reads (``asyncio.to_thread``)
for ``seconds``, on each storage, each mode, in turn (paired rounds):

=============  ==========================================================================
storage        what a read waits for
=============  ==========================================================================
disk           ``O_DIRECT`` reads of a 256 MiB file under /var/tmp (this VM's disk)
latencyfs      ``O_DIRECT`` reads through the latency file system (2 ms per read,
               :mod:`benchmarks.latencyfs`; "missing" where FUSE cannot be had)
=============  ==========================================================================

Per case: reads/s; the loop's timer lag p99 (a task asking for 1 ms sleeps meanwhile:
how late it wakes); the tasks of the process at the run's peak (threads of ours, and the
kernel's io-wq workers, ``iou-wrk-*``, which io_uring starts for a file it cannot queue
without blocking); and the memory per read in flight: the resident-set growth over the
run plus 16 KiB of kernel stack per extra task (x86-64's THREAD_SIZE), divided by
``depth``. Medians over rounds, and the median of the per-round ratios (uring / threads).
"""

from __future__ import annotations

import argparse
import asyncio
import mmap
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sysletloop
from benchmarks.stats import paired_ratios, percentile

BLOCK = 4096
FILE_SIZE = 256 << 20
KERNEL_STACK_KIB = 16  # x86-64 THREAD_SIZE: what each task costs the kernel
MODES = ("threads", "uring")


def _tasks() -> tuple[int, int]:
    """(threads of ours, io-wq workers) in this process now."""
    ours = workers = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="ascii") as f:
                name = f.read().strip()
        except OSError:
            continue
        if name.startswith("iou-wrk"):
            workers += 1
        else:
            ours += 1
    return ours, workers


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _run(path: str, depth: int, seconds: float) -> dict[str, float]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    blocks = os.fstat(fd).st_size // BLOCK
    done = 0
    lags: list[float] = []
    peak = [0, 0]
    rss0 = _rss_kib()
    rss_peak = rss0
    tasks0 = _tasks()
    stop = time.monotonic() + seconds

    async def reader(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        buffer = mmap.mmap(-1, BLOCK)
        while time.monotonic() < stop:
            got = await asyncio.to_thread(os.preadv, fd, [buffer], rng.randrange(blocks) * BLOCK)
            assert got == BLOCK
            done += 1

    async def ticker() -> None:
        nonlocal rss_peak
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - t0 - 0.001)
            if len(lags) % 50 == 0:
                ours, workers = _tasks()
                peak[0], peak[1] = max(peak[0], ours), max(peak[1], workers)
                rss_peak = max(rss_peak, _rss_kib())

    try:
        t0 = time.perf_counter()
        await asyncio.gather(ticker(), *(reader(i) for i in range(depth)))
        wall = time.perf_counter() - t0
    finally:
        os.close(fd)
    extra_tasks = max(0, peak[0] - tasks0[0]) + max(0, peak[1] - tasks0[1])
    kib = (rss_peak - rss0 + extra_tasks * KERNEL_STACK_KIB) / depth
    return {
        "reads_per_s": done / wall,
        "lag_p99_ms": percentile(lags, 0.99) * 1e3 if lags else 0.0,
        "threads": peak[0],
        "io_wq_workers": peak[1],
        "kib_per_read": kib,
    }


def _one(path: str, mode: str, depth: int, seconds: float) -> dict[str, float]:
    # A fresh process per case would be fairer for memory; a fresh loop per case keeps
    # the run short: threads of the thread path exit after idle_timeout, so each case
    # starts its own (idle_timeout 0.5 s and a pause between cases).
    result: dict[str, float] = sysletloop.run(
        _run(path, depth, seconds), uring_reads=(mode == "uring"), idle_timeout=0.5
    )
    time.sleep(1.0)  # the spares of a thread-path case exit
    return result


@contextmanager
def _storages(scratch: str) -> Iterator[dict[str, str | None]]:
    path = os.path.join(scratch, "reads.dat")
    with open(path, "wb") as f:
        for _ in range(FILE_SIZE >> 20):
            f.write(os.urandom(1 << 20))
    os.sync()  # no dirty pages: O_DIRECT reads go to the device
    out: dict[str, str | None] = {"disk": path}
    try:
        from benchmarks.latencyfs import LatencyFsUnavailable, mounted

        with mounted(scratch) as mount:
            out["latencyfs"] = os.path.join(mount.path, "reads.dat")
            yield out
            return
    except LatencyFsUnavailable as exc:
        print(f"latencyfs: missing ({exc})", file=sys.stderr)
        out["latencyfs"] = None
    yield out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--depth", type=int, default=32)
    args = parser.parse_args(argv)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with (
        tempfile.TemporaryDirectory(dir="/var/tmp", prefix="uring-reads-") as scratch,
        _storages(scratch) as storages,
    ):
        for r in range(args.rounds):
            for storage, path in storages.items():
                if path is None:
                    continue
                for mode in MODES if r % 2 == 0 else MODES[::-1]:
                    out = _one(path, mode, args.depth, args.seconds)
                    results.setdefault((storage, mode), []).append(out)
                    print(f"round {r + 1} {storage:9} {mode:7} " + _fmt(out), flush=True)
    print(f"\nmedians of {args.rounds} rounds, depth {args.depth}, {args.seconds} s each:")
    for storage in ("disk", "latencyfs"):
        if (storage, "uring") not in results:
            continue
        for mode in MODES:
            rows = results[(storage, mode)]
            med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
            print(f"  {storage:9} {mode:7} " + _fmt(med))
        ratios = paired_ratios(
            [row["reads_per_s"] for row in results[(storage, "uring")]],
            [row["reads_per_s"] for row in results[(storage, "threads")]],
        )
        print(
            f"  {storage:9} uring / threads reads/s: median {statistics.median(ratios):.2f}x "
            f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
        )


def _fmt(out: dict[str, Any]) -> str:
    return (
        f"{out['reads_per_s']:9.0f} reads/s  lag p99 {out['lag_p99_ms']:6.2f} ms  "
        f"threads {out['threads']:3.0f}  io-wq {out['io_wq_workers']:3.0f}  "
        f"{out['kib_per_read']:6.1f} KiB/read"
    )


if __name__ == "__main__":
    main()
