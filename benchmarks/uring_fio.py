"""io_uring loop vs fio's io_uring engine: random 4 KiB O_DIRECT reads, paired rounds.

Run::

    python -m benchmarks.uring_fio [--quick] [--file PATH] [--json OUT] [--depths 1,8,32]

What is measured, in one run, on one file (issue 20's target: the loop at depth 32 >= 0.90
of ``fio --ioengine=io_uring``, median of paired rounds):

* Random 4 KiB O_DIRECT reads at queue depth 1, 8 and 32: the io_uring loop's IOPS
  (``depth`` tasks each awaiting ``uring_readinto`` in a loop, offsets drawn before the
  clock starts, as fio draws its own in C) against ``fio --ioengine=io_uring`` at the same
  depth, and ``fio --ioengine=libaio`` beside them. A *round* runs each engine once, in an
  order that alternates between rounds; its ratio is loop/fio-io_uring of that round. The
  report gives per engine the median, min and max IOPS, and the median of the rounds'
  ratios (the target's measure) with their range. The disk's IOPS drift from minute to
  minute on a shared VM; pairing within a round cancels most of that drift.
* The same reads from one Python thread with no event loop (:mod:`benchmarks.uring_raw`:
  the package's own ring, submit and wait in one ``io_uring_enter``): what Python alone
  reaches, so the loop's distance from fio splits into the language's share and
  asyncio's.

The data file is ``/var/tmp/sysletloop-uring-fio.dat`` (1 GiB; 256 MiB with ``--quick``;
not the KAIO comparison's, so the two can run side by side), created if missing and
deleted afterwards unless ``--keep-file`` or ``--file`` names an existing file. Stdlib
only; fio is optional (its columns read "missing" without it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Literal

from benchmarks.kaio_fio import (
    BLOCK,
    FULL_SIZE,
    OFFSETS_PER_WORKER,
    QUICK_SIZE,
    fio_version,
    prepare_file,
    run_fio_random_reads,
)
from benchmarks.uring_raw import run_raw_random_reads
from sysletloop import uring

DEFAULT_FILE = Path("/var/tmp/sysletloop-uring-fio.dat")
DEPTHS = (1, 8, 32)
TARGET_RATIO_AT_32 = 0.90
ENGINES = ("uring", "uring-raw", "fio-io_uring", "fio-libaio")


def run_uring_random_reads(
    path: str | Path,
    depth: int,
    seconds: float,
    *,
    block_size: int = BLOCK,
    seed: int = 0,
    entries: int | None = None,
    harvest_batch: int = 0,
) -> dict[str, Any]:
    """Random O_DIRECT reads of *block_size* through the io_uring loop, *depth* in flight."""
    nblocks = os.stat(path).st_size // block_size

    async def main(loop: uring.UringEventLoop) -> dict[str, Any]:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        ios = [0] * depth
        offsets_of = [_random_offsets(seed * 1000 + i, nblocks, block_size) for i in range(depth)]
        buffers = [uring.aligned_buffer(block_size) for _ in range(depth)]
        try:
            deadline = loop.time() + seconds

            async def worker(index: int) -> None:
                offsets, buffer = offsets_of[index], buffers[index]
                read = loop.uring_readinto
                clock = loop.time
                done = 0
                while clock() < deadline:
                    await read(fd, buffer, offsets[done % OFFSETS_PER_WORKER])
                    done += 1
                ios[index] = done

            started = time.perf_counter()
            await asyncio.gather(*(worker(i) for i in range(depth)))
            elapsed = time.perf_counter() - started
        finally:
            os.close(fd)
        stats = loop.uring_stats()
        total = sum(ios)
        return {
            "engine": "uring-loop",
            "depth": depth,
            "seconds": elapsed,
            "ios": total,
            "iops": total / elapsed,
            "enter_calls": stats.enter_calls,
            "ios_per_enter": stats.ops_per_enter,
            "enter_mean_us": stats.enter_mean_seconds * 1e6,
            "enter_max_us": stats.enter_max_seconds * 1e6,
            "eventfd_wakeups": stats.eventfd_wakeups,
            "reaps": stats.reaps,
        }

    size = entries or max(uring.DEFAULT_ENTRIES, depth)
    with asyncio.Runner(
        loop_factory=lambda: uring.new_event_loop(entries=size, harvest_batch=harvest_batch)
    ) as r:
        loop = r.get_loop()
        assert isinstance(loop, uring.UringEventLoop)
        return r.run(main(loop))


def _random_offsets(seed: int, nblocks: int, block_size: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(nblocks) * block_size for _ in range(OFFSETS_PER_WORKER)]


def _run(engine: str, path: Path, depth: int, seconds: float, **loop: Any) -> float | None:
    if engine == "uring":
        return float(run_uring_random_reads(path, depth, seconds, **loop)["iops"])
    if engine == "uring-raw":
        return float(run_raw_random_reads(path, depth, seconds)["iops"])
    fio_engine: Literal["libaio", "io_uring"] = "io_uring" if engine == "fio-io_uring" else "libaio"
    result = run_fio_random_reads(path, depth, seconds, engine=fio_engine)
    return None if result is None else float(result["iops"])


def compare(
    path: str | Path,
    *,
    depths: tuple[int, ...] = DEPTHS,
    seconds: float = 5.0,
    rounds: int = 5,
    engines: tuple[str, ...] = ENGINES,
    **loop: Any,
) -> list[dict[str, Any]]:
    """*rounds* paired rounds per depth (engine order reversed every other round): the
    spread of each engine's IOPS and the median of the per-round loop/fio-io_uring ratios."""
    rows: list[dict[str, Any]] = []
    for depth in depths:
        iops: dict[str, list[float]] = {engine: [] for engine in engines}
        ratios: list[float] = []
        for n in range(rounds):
            got: dict[str, float] = {}
            for engine in engines if n % 2 == 0 else engines[::-1]:
                value = _run(engine, Path(path), depth, seconds, **loop)
                if value is not None:
                    got[engine] = value
                    iops[engine].append(value)
            if "uring" in got and got.get("fio-io_uring"):
                ratios.append(got["uring"] / got["fio-io_uring"])
        row: dict[str, Any] = {"depth": depth}
        for engine in engines:
            row[engine] = _spread(iops[engine]) if iops[engine] else "missing"
        if ratios:
            row["ratio"] = _spread(ratios)
        rows.append(row)
    return rows


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def _column(spread: dict[str, float] | str, digits: int = 0) -> str:
    if isinstance(spread, str):
        return spread
    return f"{spread['median']:.{digits}f} ({spread['min']:.{digits}f}-{spread['max']:.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.uring_fio", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="256 MiB file, 1 s runs, 1 round")
    parser.add_argument("--file", type=Path, help=f"data file (default {DEFAULT_FILE})")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--seconds", type=float, help="per run (default 5; --quick 1)")
    parser.add_argument("--rounds", type=int, help="paired rounds per depth (default 5)")
    parser.add_argument("--depths", default=",".join(map(str, DEPTHS)), help="e.g. 1,8,32")
    parser.add_argument("--entries", type=int, help="the loop's ring size")
    parser.add_argument("--harvest-batch", type=int, default=0, help="the loop's bound")
    parser.add_argument("--no-libaio", action="store_true", help="skip fio's libaio engine")
    parser.add_argument("--keep-file", action="store_true", help="do not delete the data file")
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 5)
    depths = tuple(int(d) for d in args.depths.split(","))
    engines = ENGINES[:3] if args.no_libaio else ENGINES
    path: Path = args.file or DEFAULT_FILE
    created = prepare_file(path, QUICK_SIZE if args.quick else FULL_SIZE)
    try:
        version = fio_version()
        print(
            f"file {path} ({path.stat().st_size >> 20} MiB), {seconds:g} s x {rounds} rounds, "
            f"fio: {version or 'missing'}, Python {sys.version.split()[0]}",
            flush=True,
        )
        rows = compare(
            path,
            depths=depths,
            seconds=seconds,
            rounds=rounds,
            engines=engines,
            entries=args.entries,
            harvest_batch=args.harvest_batch,
        )
    finally:
        if created and not args.keep_file:
            path.unlink()
    header = f"{'depth':>5} " + " ".join(f"{e + ' IOPS (min-max)':>28}" for e in engines)
    print(header + f" {'loop/fio-io_uring, median of rounds (min-max)':>48}")
    for row in rows:
        ratio = _column(row["ratio"], 2) if "ratio" in row else "-"
        cells = " ".join(f"{_column(row[e]):>28}" for e in engines)
        print(f"{row['depth']:>5} {cells} {ratio:>48}")
    at32 = next((r for r in rows if r["depth"] == 32 and "ratio" in r), None)
    if at32 is not None:
        verdict = "met" if at32["ratio"]["median"] >= TARGET_RATIO_AT_32 else "MISSED"
        print(f"target >= {TARGET_RATIO_AT_32:.0%} of fio io_uring at depth 32: {verdict}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "file": str(path),
                    "seconds": seconds,
                    "rounds": rounds,
                    "fio_version": version,
                    "python": sys.version,
                    "random_reads": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
