"""Workload 3, random reads from a block device (paper §1.1, the iSCSI-target example).

4 KiB random reads of a file, at several concurrencies: IOPS and p50/p99 latency per
contender, with fio (libaio) beside as the storage's own limit. On three storages
(:mod:`benchmarks.workloads.storage`), each a set of cases:

- ``disk`` (cases ``depth1`` ... ``depth64``, named as before storages existed): O_DIRECT
  reads of a file on a real file system (never tmpfs: O_DIRECT bypasses the page cache
  and reaches the device);
- ``cache`` (``cache-depth1`` ...): the same reads through the page cache, which never
  blocks (fio, which reads with O_DIRECT, has no cache cases);
- ``latencyfs`` (``latencyfs-depth1`` ...): O_DIRECT reads through the latency file
  system, each answered 2 ms after it arrives: storage that blocks for real, where a
  contender's concurrency is what its IOPS measure (the ideal is depth / latency). The
  issue's targets (issue 20): sysletloop >= 2x stock asyncio's ``to_thread`` at depth 32
  (and >= 0.7 of fio on the same mount, read off the report). Each case's ``extra``
  has the server's CPU share and reply lateness during it.

Each of ``depth`` tasks owns a page-aligned 4 KiB buffer and reads random aligned blocks
until the deadline; latency is the time one ``await`` took, seen by the task.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.contenders.base import FILE, FIO, Api, Contender
from benchmarks.contenders.fio import FioContender
from benchmarks.latencyfs import Latency
from benchmarks.stats import cdf_quantiles, latency_summary
from benchmarks.workloads.base import (
    CaseResult,
    Cases,
    Metric,
    MiB,
    Profile,
    Workload,
    make_file,
    run_main,
    warm,
)
from benchmarks.workloads.storage import STORAGES, LatencyStorage, Storage

BLOCK = 4096
LATENCY_MS = 2.0  # the latency file system's read latency (issue 20's default)
TARGET_LATENCYFS_RATIO = 2.0  # issue 20: sysletloop's IOPS over to_thread's at depth 32


@dataclass
class ReadFile:
    """The file one storage's cases read: its path (through the mount for latencyfs)."""

    path: str
    blocks: int
    direct: bool


@dataclass
class ReadState:
    files: dict[str, ReadFile]  # by storage, for the storages that could be had
    missing: dict[str, str]  # storage -> why its cases cannot run here
    latencyfs: LatencyStorage | None = None

    # The disk file, for callers that predate storages.
    @property
    def path(self) -> str:
        return self.files["disk"].path

    @property
    def blocks(self) -> int:
        return self.files["disk"].blocks


def case_name(storage: str, depth: int) -> str:
    """``depth32`` on disk (the name it had before storages), ``latencyfs-depth32``..."""
    return f"depth{depth}" if storage == "disk" else f"{storage}-depth{depth}"


class RandomReads(Workload[ReadState]):
    name = "random_reads"
    number = 3
    title = "Random 4 KiB reads (disk O_DIRECT, page cache, latencyfs)"
    claim = (
        "With many reads in flight a single process keeps the device busy; O_DIRECT is "
        "the one path where KAIO truly does not block"
    )
    paper = "§1.1, §1.2"
    needs_any = frozenset({FILE, FIO})
    metrics = (
        Metric("iops", "IOPS", "higher", "completed reads per second"),
        Metric("p50_us", "us", "lower", "median read latency"),
        Metric("p99_us", "us", "lower", "99th percentile read latency"),
    )
    headline = (
        ("depth1", "iops"),
        ("depth32", "iops"),
        ("depth32", "p99_us"),
        ("latencyfs-depth32", "iops"),
    )

    def params(self, profile: Profile) -> dict[str, Any]:
        # quick: depth 64 on disk and depths 1 and 8 in the cache are left to full runs
        # (no target reads them, and cheap_calls times a cached read at depth 1; they were
        # a fifth of the quick run's time, which must stay under 12 minutes from a fresh
        # clone).
        disk = {"smoke": [1, 8], "quick": [1, 8, 32], "full": [1, 8, 32, 64]}[profile]
        latencyfs = [8] if profile == "smoke" else [1, 8, 32]
        cache = {"smoke": [8], "quick": [32], "full": [1, 8, 32]}[profile]
        storages = {"disk": disk, "cache": cache, "latencyfs": latencyfs}
        return {
            "size": {"smoke": 8 * MiB, "quick": 256 * MiB, "full": 1024 * MiB}[profile],
            # the disk's depths (named so before storages; the plots read them)
            "depths": disk,
            "storages": storages,
            # every case, in order (the targets are judged on the cases a run has)
            "cases": [case_name(s, d) for s, depths in storages.items() for d in depths],
            # the cache and latencyfs files: a read of either never touches the device
            "small_size": {"smoke": 4 * MiB, "quick": 32 * MiB, "full": 64 * MiB}[profile],
            "latency": Latency(read_ms=LATENCY_MS).as_dict(),
            "seconds": {"smoke": 0.05, "quick": 0.25, "full": 3.0}[profile],
        }

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        storages = {s: [8] for s in params["storages"]}
        return {
            **params,
            "depths": [8],
            "storages": storages,
            "cases": [case_name(s, 8) for s in storages],
            "seconds": min(0.1, params["seconds"]),
        }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "targets": targets()}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> ReadState:
        storages = params.get("storages") or {"disk": params["depths"]}
        state = ReadState({}, {})
        if "disk" in storages:
            path = os.path.join(scratch, "random_reads.dat")
            make_file(path, params["size"])
            state.files["disk"] = ReadFile(path, params["size"] // BLOCK, direct=True)
        small = int(params.get("small_size", params["size"]))
        if "cache" in storages:
            path = os.path.join(scratch, "random_reads-cache.dat")
            make_file(path, small)
            state.files["cache"] = ReadFile(path, small // BLOCK, direct=False)
        if "latencyfs" in storages:
            source = os.path.join(scratch, "random_reads-latencyfs")
            os.makedirs(source, exist_ok=True)
            make_file(os.path.join(source, "data"), small)
            warm(os.path.join(source, "data"))  # the server reads it from the cache
            lfs = LatencyStorage.open(source, Latency(**params["latency"]))
            state.latencyfs = lfs
            if lfs.missing is not None:
                state.missing["latencyfs"] = lfs.missing
            else:
                state.files["latencyfs"] = ReadFile(lfs.path("data"), small // BLOCK, True)
        return state

    def cleanup(self, state: ReadState) -> None:
        if state.latencyfs is not None:
            state.latencyfs.close()
            os.unlink(os.path.join(state.latencyfs.source, "data"))
            os.rmdir(state.latencyfs.source)
        for storage, f in state.files.items():
            if storage != "latencyfs":
                os.unlink(f.path)

    def measure(self, contender: Contender, state: ReadState, params: Mapping[str, Any]) -> Cases:
        storages: dict[str, list[int]] = params.get("storages") or {"disk": params["depths"]}
        seconds = float(params["seconds"])
        plan = [(s, [int(d) for d in storages[s]]) for s in STORAGES if s in storages]
        if isinstance(contender, FioContender):
            return _measure_fio(contender, state, plan, seconds)

        async def main(api: Api) -> Cases:
            cases: Cases = {}
            for storage, depths in plan:
                for depth in depths:
                    name = case_name(storage, depth)
                    if storage in state.missing:
                        cases[name] = CaseResult(unsupported=state.missing[storage])
                        continue
                    f = state.files[storage]
                    if storage == "cache":
                        warm(f.path)  # outside the window: every read is a copy
                    extra: dict[str, Any] = {}
                    if storage == "latencyfs":
                        assert state.latencyfs is not None
                        with state.latencyfs.window(extra):
                            latencies, wall = await _random_reads(api, f, depth, seconds)
                    else:
                        latencies, wall = await _random_reads(api, f, depth, seconds)
                    summary = latency_summary(latencies)
                    cases[name] = CaseResult(
                        metrics={
                            "iops": len(latencies) / wall,
                            "p50_us": summary["p50"] * 1e6,
                            "p99_us": summary["p99"] * 1e6,
                        },
                        samples={"latency_us_cdf": [v * 1e6 for v in cdf_quantiles(latencies)]},
                        extra=extra,
                    )
            return cases

        return run_main(contender, main)


def targets() -> dict[str, Any]:
    """Issue 20's target on the latency file system, as recorded in results.json."""
    return {
        "contender": "sysletloop",
        "cases": {case_name("latencyfs", 32): {"iops_ratio": TARGET_LATENCYFS_RATIO}},
    }


async def _random_reads(
    api: Api, state: ReadFile, depth: int, seconds: float
) -> tuple[list[float], float]:
    latencies: list[float] = []
    clock = api.clock

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        buf = api.aligned_buffer(BLOCK)
        f = await api.open_file(state.path, direct=state.direct)
        try:
            # At least one read each, even if opening the file outlasted the window (a
            # loaded machine, a short smoke run): an empty sample has no latency.
            while True:
                offset = rng.randrange(state.blocks) * BLOCK
                t0 = clock()
                got = await f.preadinto(buf, offset)
                latencies.append(clock() - t0)
                if got != BLOCK:
                    raise OSError(f"short read: {got} bytes at {offset} of {state.path}")
                if clock() >= deadline:
                    break
        finally:
            await f.aclose()

    start = clock()
    deadline = start + seconds
    await api.gather(*(lambda s=seed: worker(s) for seed in range(depth)))
    return latencies, clock() - start


def _measure_fio(
    contender: FioContender,
    state: ReadState,
    plan: list[tuple[Storage, list[int]]],
    seconds: float,
) -> Cases:
    """fio's numbers, through ``benchmarks.kaio_fio.run_fio_random_reads``.

    Its dict is recorded whole under ``extra.fio``; the metrics are read from the first
    key found of a few spellings (IOPS; p50/p99 latency in microseconds). fio reads with
    O_DIRECT: the cache cases are not its to run.
    """
    run = contender.random_reads()
    cases: Cases = {}
    for storage, depths in plan:
        for depth in depths:
            name = case_name(storage, depth)
            if storage == "cache":
                cases[name] = CaseResult(
                    unsupported="fio runs libaio with O_DIRECT, which bypasses the page cache"
                )
                continue
            if storage in state.missing:
                cases[name] = CaseResult(unsupported=state.missing[storage])
                continue
            extra: dict[str, Any] = {}
            path = state.files[storage].path
            if storage == "latencyfs":
                assert state.latencyfs is not None
                with state.latencyfs.window(extra):
                    out = run(path, depth, max(seconds, 0.5))
            else:
                out = run(path, depth, max(seconds, 0.5))  # fio needs ~0.5 s to mean anything
            if out is None:
                raise RuntimeError("run_fio_random_reads returned None (fio unavailable or failed)")
            metrics = {}
            for metric, keys in FIO_KEYS.items():
                for key in keys:
                    if isinstance(out.get(key), int | float):
                        metrics[metric] = float(out[key])
                        break
            cases[name] = CaseResult(metrics=metrics, extra={"fio": out, **extra})
    return cases


FIO_KEYS: dict[str, tuple[str, ...]] = {
    "iops": ("iops",),
    "p50_us": ("p50_us", "lat_p50_us", "clat_p50_us"),
    "p99_us": ("p99_us", "lat_p99_us", "clat_p99_us"),
}
