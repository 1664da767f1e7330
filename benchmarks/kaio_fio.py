"""KAIO loop vs fio: random 4 KiB O_DIRECT reads, and the cost of io_submit.

Run::

    python -m benchmarks.kaio_fio [--quick] [--file PATH] [--json OUT]

What is measured, in one run, on one file:

* Random 4 KiB O_DIRECT reads at queue depth 1, 8 and 32: the KAIO loop's IOPS (``depth``
  tasks each awaiting ``aio_preadinto`` in a loop) against ``fio --ioengine=libaio`` at the
  same depth. Each pair is repeated (``--repeats``, order alternating), and the median,
  min and max are reported with the ratio of medians. The target is >= 0.90 at depth 32.
* The same reads from a Python thread with no event loop (:mod:`benchmarks.kaio_raw`):
  what Python and ``ctypes`` alone reach, so the loop's distance from fio splits into
  the language's share and the event loop's.
* ``io_submit`` latency for sequential 4 KiB writes, buffered vs O_DIRECT, at depth 1:
  the per-call time the loop's own counters measured (``kaio_stats().submit_seconds``).
  The paper's point (Brown 2007, §1.2) is that buffered submission *is* the I/O.

The default data file is ``/var/tmp/sysletloop-kaio-fio.dat`` (1 GiB; 256 MiB with
``--quick``), created if missing and deleted afterwards unless ``--keep-file`` or ``--file``
names an existing file. Its file system must support O_DIRECT (tmpfs before 6.6 does not).
Stdlib only; fio is optional (its columns read "missing" without it).

Functions for the harness: :func:`run_kaio_random_reads`, :func:`run_fio_random_reads`,
:func:`submit_latency`, :func:`prepare_file`, :func:`compare`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

from benchmarks.kaio_raw import run_raw_random_reads
from sysletloop import kaio

BLOCK = 4096  # bytes: the I/O size the issue specifies
DEFAULT_FILE = Path("/var/tmp/sysletloop-kaio-fio.dat")
FULL_SIZE = 1 << 30  # 1 GiB, per the issue
QUICK_SIZE = 256 << 20  # --quick: still far beyond any disk cache that O_DIRECT would skip
DEPTHS = (1, 8, 32)
TARGET_RATIO_AT_32 = 0.90
OFFSETS_PER_WORKER = 1 << 16  # random offsets cycled by each reader; 64 Ki x 4 KiB spans 256 MiB


# ---- the data file ---------------------------------------------------------------------
def check_direct(path: Path) -> None:
    """Raise OSError with a clear message if *path*'s file system refuses O_DIRECT."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as exc:
        raise OSError(exc.errno, f"{path}: O_DIRECT not supported here ({exc.strerror})") from exc
    os.close(fd)


def prepare_file(path: Path, size: int) -> bool:
    """Make *path* a file of *size* bytes of real (non-sparse) data; True if created."""
    if path.exists() and path.stat().st_size >= size:
        check_direct(path)
        return False
    chunk = random.Random(0).randbytes(4 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        while written < size:
            written += os.write(fd, chunk[: min(len(chunk), size - written)])
        os.fsync(fd)
    finally:
        os.close(fd)
    check_direct(path)
    return True


# ---- the KAIO loop -----------------------------------------------------------------------
def run_kaio_random_reads(
    path: str | Path,
    depth: int,
    seconds: float,
    *,
    backend: str | None = None,
    block_size: int = BLOCK,
    seed: int = 0,
) -> dict[str, Any]:
    """Random O_DIRECT reads of *block_size* through the KAIO loop, *depth* in flight."""
    nblocks = os.stat(path).st_size // block_size

    async def main(loop: kaio.KaioEventLoop) -> dict[str, Any]:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        ios = [0] * depth
        # Offsets and buffers are made before the clock starts, as fio draws its offsets in
        # C: the loop is measured, not Python's random module (2 M randrange calls at depth
        # 32 would otherwise eat most of a second of the timed window).
        offsets_of = [_random_offsets(seed * 1000 + i, nblocks, block_size) for i in range(depth)]
        buffers = [kaio.aligned_buffer(block_size) for _ in range(depth)]
        try:
            deadline = loop.time() + seconds

            async def worker(index: int) -> None:
                offsets, buffer = offsets_of[index], buffers[index]
                read = loop.aio_preadinto
                done = 0
                while loop.time() < deadline:
                    await read(fd, buffer, offsets[done % OFFSETS_PER_WORKER])
                    done += 1
                ios[index] = done

            started = time.perf_counter()
            await asyncio.gather(*(worker(i) for i in range(depth)))
            elapsed = time.perf_counter() - started
        finally:
            os.close(fd)
        stats = loop.kaio_stats()
        total = sum(ios)
        return {
            "engine": "kaio-loop",
            "backend": stats.backend,
            "depth": depth,
            "seconds": elapsed,
            "ios": total,
            "iops": total / elapsed,
            "submit_calls": stats.submit_calls,
            "ios_per_submit": stats.submitted / stats.submit_calls if stats.submit_calls else 0,
            "submit_mean_us": stats.submit_mean_seconds * 1e6,
            "submit_max_us": stats.submit_max_seconds * 1e6,
        }

    ring = max(kaio.DEFAULT_RING_SIZE, depth)
    with asyncio.Runner(
        loop_factory=lambda: kaio.new_event_loop(ring_size=ring, backend=backend)
    ) as r:
        loop = r.get_loop()
        assert isinstance(loop, kaio.KaioEventLoop)
        return r.run(main(loop))


def _random_offsets(seed: int, nblocks: int, block_size: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(nblocks) * block_size for _ in range(OFFSETS_PER_WORKER)]


# ---- fio ---------------------------------------------------------------------------------
def fio_version() -> str | None:
    exe = shutil.which("fio")
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def run_fio_random_reads(
    path: str | Path,
    depth: int,
    seconds: float,
    *,
    block_size: int = BLOCK,
    engine: Literal["libaio", "io_uring"] = "libaio",
) -> dict[str, Any] | None:
    """The same workload through ``fio --ioengine=ENGINE`` (``libaio`` by default; the
    io_uring loop's comparison asks for ``io_uring``, with fio's defaults for it: no
    fixed buffers, no registered files, no SQPOLL); None when fio is not installed."""
    exe = shutil.which("fio")
    if exe is None:
        return None
    cmd = [
        exe,
        "--name=kaio-compare",
        f"--filename={path}",
        "--readonly",
        f"--ioengine={engine}",
        "--direct=1",
        "--rw=randread",
        f"--bs={block_size}",
        f"--iodepth={depth}",
        f"--runtime={max(1, round(seconds))}",
        "--time_based",
        "--numjobs=1",
        "--norandommap",
        "--randrepeat=0",
        "--invalidate=0",
        "--output-format=json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"fio failed ({done.returncode}): {done.stderr.strip()[:500]}")
    report = json.loads(done.stdout[done.stdout.index("{") :])
    read = report["jobs"][0]["read"]
    runtime_s = read["runtime"] / 1000
    # fio's completion latency percentiles (ns), as the harness reports p50/p99 in us.
    percentiles = read.get("clat_ns", {}).get("percentile", {})
    latency = {
        f"p{q}_us": percentiles[key] / 1000
        for q, key in (("50", "50.000000"), ("99", "99.000000"))
        if key in percentiles
    }
    return {
        "engine": f"fio-{engine}",
        "depth": depth,
        "seconds": runtime_s,
        "ios": read["total_ios"],
        "iops": read["iops"],
        **latency,
        "fio_version": report.get("fio version"),
        "command": " ".join(cmd),
    }


# ---- io_submit latency ---------------------------------------------------------------------
def submit_latency(
    kind: Literal["buffered", "direct"],
    directory: str | Path = DEFAULT_FILE.parent,
    *,
    count: int = 2000,
    block_size: int = BLOCK,
    backend: str | None = None,
    extend: bool = False,
) -> dict[str, Any]:
    """Time each ``io_submit`` of *count* sequential writes at depth 1, buffered or
    O_DIRECT, as the loop's own counters see it; plus the whole op's latency.

    By default the writes overwrite blocks already allocated and written (the case KAIO is
    built for); ``extend=True`` appends to an empty file instead, where ext4 performs an
    O_DIRECT write synchronously inside ``io_submit`` (it must allocate blocks and move
    i_size: the paper's "must block" case)."""
    path = Path(directory) / f"sysletloop-kaio-submit-{kind}.{os.getpid()}.dat"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if kind == "direct" else 0)
    if not extend:
        prepare_file(path, count * block_size)
        flags &= ~os.O_TRUNC

    async def main(loop: kaio.KaioEventLoop) -> dict[str, Any]:
        fd = os.open(path, flags, 0o600)
        submit_us: list[float] = []
        op_us: list[float] = []
        try:
            data = kaio.aligned_buffer(block_size)
            data[:] = random.Random(1).randbytes(block_size)
            for i in range(count):
                before = loop.kaio_stats().submit_seconds
                t0 = time.perf_counter()
                await loop.aio_pwrite(fd, data, i * block_size, exact=True)
                op_us.append((time.perf_counter() - t0) * 1e6)
                submit_us.append((loop.kaio_stats().submit_seconds - before) * 1e6)
        finally:
            os.close(fd)
            path.unlink()
        return {
            "kind": kind,
            "extend": extend,
            "count": count,
            **_summary("submit", submit_us),
            **_summary("op", op_us),
        }

    with asyncio.Runner(loop_factory=lambda: kaio.new_event_loop(backend=backend)) as r:
        loop = r.get_loop()
        assert isinstance(loop, kaio.KaioEventLoop)
        return r.run(main(loop))


def _summary(prefix: str, values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        f"{prefix}_mean_us": statistics.fmean(ordered),
        f"{prefix}_p50_us": ordered[len(ordered) // 2],
        f"{prefix}_p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        f"{prefix}_max_us": ordered[-1],
    }


# ---- the comparison ----------------------------------------------------------------------
def compare(
    path: str | Path,
    *,
    depths: tuple[int, ...] = DEPTHS,
    seconds: float = 5.0,
    repeats: int = 3,
    backend: str | None = None,
) -> list[dict[str, Any]]:
    """Alternate KAIO-loop, raw-ctypes and fio runs at each depth (the order reversed on
    every other repeat); medians, spreads and ratios of medians."""
    rows: list[dict[str, Any]] = []
    engines = ("kaio", "raw", "fio")
    for depth in depths:
        iops: dict[str, list[float]] = {engine: [] for engine in engines}
        for repeat in range(repeats):
            for engine in engines if repeat % 2 == 0 else engines[::-1]:
                if engine == "kaio":
                    result = run_kaio_random_reads(path, depth, seconds, backend=backend)
                elif engine == "raw":
                    result = run_raw_random_reads(path, depth, seconds, backend=backend)
                else:
                    result = run_fio_random_reads(path, depth, seconds)
                if result is not None:
                    iops[engine].append(result["iops"])
        row: dict[str, Any] = {
            "depth": depth,
            "kaio_iops": _spread(iops["kaio"]),
            "raw_iops": _spread(iops["raw"]),
        }
        row["fio_iops"] = _spread(iops["fio"]) if iops["fio"] else "missing"
        if iops["fio"]:
            fio = statistics.median(iops["fio"])
            row["ratio"] = statistics.median(iops["kaio"]) / fio
            row["raw_ratio"] = statistics.median(iops["raw"]) / fio
        rows.append(row)
    return rows


def _column(spread: dict[str, float] | str) -> str:
    if isinstance(spread, str):
        return spread
    return f"{spread['median']:.0f} ({spread['min']:.0f}-{spread['max']:.0f})"


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.kaio_fio", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="256 MiB file, 1 s runs, 1 repeat")
    parser.add_argument("--file", type=Path, help=f"data file (default {DEFAULT_FILE})")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--seconds", type=float, help="per run (default 5; --quick 1)")
    parser.add_argument("--repeats", type=int, help="runs per engine and depth (default 3)")
    parser.add_argument("--backend", choices=["libaio", "syscall"], help="KAIO binding")
    parser.add_argument("--keep-file", action="store_true", help="do not delete the data file")
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    repeats = args.repeats or (1 if args.quick else 3)
    path: Path = args.file or DEFAULT_FILE
    created = prepare_file(path, QUICK_SIZE if args.quick else FULL_SIZE)
    try:
        version = fio_version()
        print(
            f"file {path} ({path.stat().st_size >> 20} MiB), {seconds:g} s x {repeats}, "
            f"fio: {version or 'missing'}",
            flush=True,
        )
        rows = compare(path, seconds=seconds, repeats=repeats, backend=args.backend)
        latency = [
            submit_latency(k, path.parent, backend=args.backend, extend=e)
            for e in (False, True)
            for k in ("buffered", "direct")
        ]
    finally:
        if created and not args.keep_file:
            path.unlink()
    print(
        f"{'depth':>5} {'KAIO loop IOPS (min-max)':>26} {'raw ctypes IOPS (min-max)':>26} "
        f"{'fio IOPS (min-max)':>26} {'loop/fio':>8} {'raw/fio':>7}"
    )
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else "-"
        raw_ratio = f"{row['raw_ratio']:.2f}" if "raw_ratio" in row else "-"
        print(
            f"{row['depth']:>5} {_column(row['kaio_iops']):>26} {_column(row['raw_iops']):>26} "
            f"{_column(row['fio_iops']):>26} {ratio:>8} {raw_ratio:>7}"
        )
    at32 = next((r for r in rows if r["depth"] == 32 and "ratio" in r), None)
    if at32 is not None:
        verdict = "met" if at32["ratio"] >= TARGET_RATIO_AT_32 else "MISSED"
        print(f"target >= {TARGET_RATIO_AT_32:.0%} of fio at depth 32: {verdict}")
    print("io_submit latency, sequential 4 KiB writes at depth 1 (microseconds):")
    for lat in latency:
        what = f"{lat['kind']}, {'extending' if lat['extend'] else 'overwrite'}"
        print(
            f"  {what:>20}: submit mean {lat['submit_mean_us']:.1f} p50 "
            f"{lat['submit_p50_us']:.1f} p99 {lat['submit_p99_us']:.1f} max "
            f"{lat['submit_max_us']:.1f}; whole op mean {lat['op_mean_us']:.1f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "file": str(path),
                    "seconds": seconds,
                    "repeats": repeats,
                    "fio_version": version,
                    "random_reads": rows,
                    "submit_latency": latency,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
