"""The latency file system's own ceiling: how many reads per second it serves at all.

Run::

    python -m benchmarks.latencyfs.ceiling [--latency-ms 2] [--depths 1 8 32]
        [--engines psync libaio io_uring] [--seconds 3] [--repeats 3] [--json OUT]

A benchmark on latencyfs measures the loop only if the file system is not the limit. With
a latency ``L`` and ``d`` reads in flight, no reader can do better than ``d / L`` reads
per second (the *ideal*: 16,000/s at 2 ms and depth 32). fio, a C program with nothing
between it and the kernel, reads 4 KiB blocks at random from a file on the mount, ``d``
at a time: with ``psync``, ``d`` threads each in ``pread`` (the kernel sees what a thread
pool's reads look like); with ``libaio`` and ``io_uring``, one thread with ``d``
asynchronous direct reads in flight. Its rate over the ideal is the ceiling's fraction.
While fio runs, the server's own CPU time is read from ``/proc`` (its *share*: CPU
seconds per second, 1.0 is one core busy), and its counters say how late replies left
past their deadlines: on 2 cores the server, fio and the kernel share the CPUs, and
those two numbers say what the file system costs.

Each (engine, depth) pair is measured ``--repeats`` times, the engines' order turned each
round; medians with min-max are printed. Stdlib only; fio missing is reported, not
raised.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.latencyfs import Latency, LatencyFsUnavailable, Mount, mounted

BLOCK = 4096
ENGINES = ("psync", "libaio", "io_uring")
DEFAULT_DEPTHS = (1, 8, 32)
FILE_SIZE = 64 << 20  # bytes: the backing file (read through its page cache)


def fio_command(path: str, engine: str, depth: int, seconds: float) -> list[str]:
    """fio reading 4 KiB blocks at random, ``depth`` in flight, for ``seconds``."""
    exe = shutil.which("fio")
    if exe is None:
        raise FileNotFoundError("fio is not on PATH")
    common = [
        exe,
        "--name=latencyfs-ceiling",
        f"--filename={path}",
        "--readonly",
        "--rw=randread",
        f"--bs={BLOCK}",
        f"--runtime={max(1, round(seconds))}",
        "--time_based",
        "--norandommap",
        "--randrepeat=0",
        "--invalidate=0",
        "--output-format=json",
    ]
    if engine == "psync":  # depth threads, each in pread: a thread pool's shape
        return [*common, "--ioengine=psync", f"--numjobs={depth}", "--thread", "--group_reporting"]
    return [*common, f"--ioengine={engine}", "--direct=1", f"--iodepth={depth}", "--numjobs=1"]


def measure(fs: Mount, path: str, engine: str, depth: int, seconds: float) -> dict[str, Any]:
    """One fio run on the mount; its rate, the ideal, and what the server spent."""
    before, stats_before = fs.cpu_seconds(), fs.stats()
    t0 = time.perf_counter()
    done = subprocess.run(
        fio_command(path, engine, depth, seconds), capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    cpu, stats_after = fs.cpu_seconds() - before, fs.stats()
    if done.returncode != 0:
        raise RuntimeError(f"fio {engine} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    job = json.loads(done.stdout[done.stdout.index("{") :])["jobs"][0]
    read = job["read"]
    sent = int(stats_after["sent"]) - int(stats_before["sent"])
    late = int(stats_after["late_ns_sum"]) - int(stats_before["late_ns_sum"])
    ideal = depth / (fs.latency.read_ms / 1000)
    return {
        "engine": engine,
        "depth": depth,
        "iops": float(read["iops"]),
        "ideal": ideal,
        "fraction": float(read["iops"]) / ideal,
        "p50_us": read["clat_ns"]["percentile"]["50.000000"] / 1000,
        "p99_us": read["clat_ns"]["percentile"]["99.000000"] / 1000,
        "server_cpu_share": cpu / wall,
        "fio_cpu_share": (float(job["usr_cpu"]) + float(job["sys_cpu"])) / 100,
        "late_mean_us": late / sent / 1000 if sent else None,
    }


def ceiling(
    latency: Latency,
    *,
    engines: tuple[str, ...] = ENGINES,
    depths: tuple[int, ...] = DEFAULT_DEPTHS,
    seconds: float = 3.0,
    repeats: int = 3,
    scratch: str | None = None,
    threads: int = 2,
) -> list[dict[str, Any]]:
    """Every (engine, depth) pair, ``repeats`` rounds, one mount; per pair the medians."""
    source = tempfile.mkdtemp(prefix="latencyfs-ceiling-", dir=scratch or "/var/tmp")
    try:
        with open(os.path.join(source, "data"), "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(FILE_SIZE >> 20):
                f.write(block)
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        with mounted(source, latency, threads=threads) as fs:
            path = os.path.join(fs.path, "data")
            for rnd in range(repeats):
                turn = rnd % len(engines)
                for engine in engines[turn:] + engines[:turn]:
                    for depth in depths:
                        one = measure(fs, path, engine, depth, seconds)
                        runs.setdefault((engine, depth), []).append(one)
    finally:
        shutil.rmtree(source, ignore_errors=True)
    rows = []
    for (engine, depth), got in runs.items():
        row: dict[str, Any] = {"engine": engine, "depth": depth, "rounds": len(got)}
        for key in ("iops", "fraction", "server_cpu_share", "fio_cpu_share", "late_mean_us"):
            values = [g[key] for g in got if g[key] is not None]
            if values:
                row[key] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                }
        row["ideal"] = got[0]["ideal"]
        row["p99_us"] = statistics.median(g["p99_us"] for g in got)
        rows.append(row)
    return sorted(rows, key=lambda r: (ENGINES.index(r["engine"]), r["depth"]))


def _cell(spread: dict[str, float] | None, fmt: str = "{:.0f}") -> str:
    if not spread:
        return "-"
    return (
        f"{fmt.format(spread['median'])} ({fmt.format(spread['min'])}-{fmt.format(spread['max'])})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latencyfs.ceiling", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--latency-ms", type=float, default=2.0, help="read latency (2)")
    parser.add_argument("--lognormal", action="store_true", help="lognormal, sigma 0.5")
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEFAULT_DEPTHS))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--seconds", type=float, default=3.0, help="per fio run (3)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (3)")
    parser.add_argument("--threads", type=int, default=2, help="server session threads (2)")
    parser.add_argument("--scratch", help="parent of the backing directory (/var/tmp)")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if shutil.which("fio") is None:
        print("fio is not on PATH (Debian: apt-get install fio)", file=sys.stderr)
        return 1
    latency = Latency(
        read_ms=args.latency_ms, distribution="lognormal" if args.lognormal else "fixed"
    )
    try:
        rows = ceiling(
            latency,
            engines=tuple(args.engines),
            depths=tuple(args.depths),
            seconds=args.seconds,
            repeats=args.repeats,
            scratch=args.scratch,
            threads=args.threads,
        )
    except LatencyFsUnavailable as exc:
        print(f"latencyfs is missing here: {exc.reason}", file=sys.stderr)
        return 1
    print(
        f"latencyfs ceiling: 4 KiB random reads, {latency.read_ms:g} ms "
        f"({latency.distribution}), {args.seconds:g} s x {args.repeats}, "
        f"server threads {args.threads}; median (min-max)"
    )
    print(
        f"{'engine':>8} {'depth':>5} {'reads/s':>20} {'ideal':>7} {'of ideal':>17} "
        f"{'server CPU':>17} {'fio CPU':>6} {'late us':>8} {'p99 us':>8}"
    )
    for r in rows:
        fio_cpu = r.get("fio_cpu_share", {}).get("median")
        late = r.get("late_mean_us", {}).get("median")
        print(
            f"{r['engine']:>8} {r['depth']:>5} {_cell(r.get('iops')):>20} {r['ideal']:>7.0f} "
            f"{_cell(r.get('fraction'), '{:.2f}'):>17} "
            f"{_cell(r.get('server_cpu_share'), '{:.2f}'):>17} "
            f"{fio_cpu if fio_cpu is None else f'{fio_cpu:.2f}':>6} "
            f"{'-' if late is None else f'{late:.0f}':>8} {r['p99_us']:>8.0f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"latency": latency.as_dict(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
