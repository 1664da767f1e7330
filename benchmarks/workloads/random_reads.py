"""Workload 3, random reads from a block device (paper §1.1, the iSCSI-target example).

4 KiB O_DIRECT random reads of a file on a real file system (never tmpfs: O_DIRECT
bypasses the page cache and reaches the device), at concurrency 1, 8, 32 and 64: IOPS and
p50/p99 latency per contender, with fio (libaio) beside as the device's physical limit.

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
)

BLOCK = 4096


@dataclass
class ReadState:
    path: str
    blocks: int


class RandomReads(Workload[ReadState]):
    name = "random_reads"
    number = 3
    title = "Random 4 KiB O_DIRECT reads"
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
    headline = (("depth1", "iops"), ("depth32", "iops"), ("depth32", "p99_us"))

    def params(self, profile: Profile) -> dict[str, Any]:
        return {
            "size": {"smoke": 8 * MiB, "quick": 256 * MiB, "full": 1024 * MiB}[profile],
            "depths": [1, 8] if profile == "smoke" else [1, 8, 32, 64],
            "seconds": {"smoke": 0.05, "quick": 0.25, "full": 3.0}[profile],
        }

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, "depths": [8], "seconds": min(0.1, params["seconds"])}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> ReadState:
        path = os.path.join(scratch, "random_reads.dat")
        make_file(path, params["size"])
        return ReadState(path, params["size"] // BLOCK)

    def cleanup(self, state: ReadState) -> None:
        os.unlink(state.path)

    def measure(self, contender: Contender, state: ReadState, params: Mapping[str, Any]) -> Cases:
        depths = [int(d) for d in params["depths"]]
        seconds = float(params["seconds"])
        if isinstance(contender, FioContender):
            return _measure_fio(contender, state, depths, seconds)

        async def main(api: Api) -> Cases:
            cases: Cases = {}
            for depth in depths:
                latencies, wall = await _random_reads(api, state, depth, seconds)
                summary = latency_summary(latencies)
                cases[f"depth{depth}"] = CaseResult(
                    metrics={
                        "iops": len(latencies) / wall,
                        "p50_us": summary["p50"] * 1e6,
                        "p99_us": summary["p99"] * 1e6,
                    },
                    samples={"latency_us_cdf": [v * 1e6 for v in cdf_quantiles(latencies)]},
                )
            return cases

        return run_main(contender, main)


async def _random_reads(
    api: Api, state: ReadState, depth: int, seconds: float
) -> tuple[list[float], float]:
    latencies: list[float] = []
    clock = api.clock

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        buf = api.aligned_buffer(BLOCK)
        f = await api.open_file(state.path, direct=True)
        try:
            # At least one read each, even if opening the file outlasted the window (a
            # loaded machine, a short smoke run): an empty sample has no latency.
            while True:
                offset = rng.randrange(state.blocks) * BLOCK
                t0 = clock()
                got = await f.preadinto(buf, offset)
                latencies.append(clock() - t0)
                if got != BLOCK:
                    raise OSError(f"short O_DIRECT read: {got} bytes at {offset}")
                if clock() >= deadline:
                    break
        finally:
            await f.aclose()

    start = clock()
    deadline = start + seconds
    await api.gather(*(lambda s=seed: worker(s) for seed in range(depth)))
    return latencies, clock() - start


def _measure_fio(
    contender: FioContender, state: ReadState, depths: list[int], seconds: float
) -> Cases:
    """fio's numbers, through ``benchmarks.kaio_fio.run_fio_random_reads``.

    Its dict is recorded whole under ``extra.fio``; the metrics are read from the first
    key found of a few spellings (IOPS; p50/p99 latency in microseconds).
    """
    run = contender.random_reads()
    cases: Cases = {}
    for depth in depths:
        out = run(state.path, depth, max(seconds, 0.5))  # fio needs ~0.5 s to mean anything
        if out is None:
            raise RuntimeError("run_fio_random_reads returned None (fio unavailable or failed)")
        metrics = {}
        for name, keys in FIO_KEYS.items():
            for key in keys:
                if isinstance(out.get(key), int | float):
                    metrics[name] = float(out[key])
                    break
        cases[f"depth{depth}"] = CaseResult(metrics=metrics, extra={"fio": out})
    return cases


FIO_KEYS: dict[str, tuple[str, ...]] = {
    "iops": ("iops",),
    "p50_us": ("p50_us", "lat_p50_us", "clat_p50_us"),
    "p99_us": ("p99_us", "lat_p99_us", "clat_p99_us"),
}
