"""Workload 6, KAIO submission blocks (paper §4.1: "KAIO submission would not block as
often as it does now ... O_DIRECT writes issued with KAIO block waiting for an available
IO request structure").

4 KiB writes at random aligned offsets, buffered and O_DIRECT, ``tasks`` at a time. For
each write we time its *first step* (how long the submitting task was held before the
operation suspended: ``io_submit`` for KAIO, queueing for a pool or for sysletloop; the
whole call for an eager one until it completes or blocks) and its total latency. The
loop's timer lag during the writes shows whether submission held the loop.

If ``benchmarks.kaio_fio.submit_latency`` exists, its raw ``io_submit`` numbers for
``"buffered"`` and ``"direct"`` are recorded beside (workload reference, per repeat).
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.contenders.base import FILE, Api, Contender
from benchmarks.stats import latency_summary
from benchmarks.workloads.base import (
    CaseResult,
    Cases,
    FirstStep,
    Metric,
    MiB,
    Profile,
    Ticker,
    Workload,
    make_file,
    run_main,
)

BLOCK = 4096


@dataclass
class SubmitState:
    path: str
    blocks: int


class KaioSubmit(Workload[SubmitState]):
    name = "kaio_submit"
    number = 6
    title = "Submission cost of writes"
    claim = (
        "KAIO's io_submit blocks for buffered writes (and for O_DIRECT writes when the "
        "device queue is full); a syslet submission returns at once"
    )
    paper = "§4.1"
    needs = frozenset({FILE})
    metrics = (
        Metric("submit_p50_us", "us", "lower", "median first-step (submission) time"),
        Metric("submit_p99_us", "us", "lower", "99th percentile submission time"),
        Metric("submit_max_us", "us", "lower", "worst submission time"),
        Metric("latency_p50_us", "us", "lower", "median time to completion"),
        Metric("lag_max_ms", "ms", "lower", "worst timer lag of the loop during the writes"),
        Metric("writes_per_s", "writes/s", "higher", "completed writes per second"),
    )
    headline = (
        ("buffered", "submit_p99_us"),
        ("direct", "submit_p99_us"),
        ("direct", "lag_max_ms"),
    )

    def params(self, profile: Profile) -> dict[str, Any]:
        return {
            "writes": {"smoke": 64, "quick": 512, "full": 8192}[profile],
            "tasks": 32,
            "size": {"smoke": 8 * MiB, "quick": 64 * MiB, "full": 256 * MiB}[profile],
        }

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, "writes": min(64, params["writes"])}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> SubmitState:
        path = os.path.join(scratch, "kaio_submit.dat")
        make_file(path, params["size"])
        return SubmitState(path, params["size"] // BLOCK)

    def cleanup(self, state: SubmitState) -> None:
        os.unlink(state.path)

    def reference(
        self, state: SubmitState, params: Mapping[str, Any]
    ) -> dict[str, dict[str, float]]:
        try:
            submit_latency = importlib.import_module("benchmarks.kaio_fio").submit_latency
        except (ImportError, AttributeError):
            return {}
        out: dict[str, dict[str, float]] = {}
        for kind in ("buffered", "direct"):
            raw = submit_latency(kind)
            out[kind] = {
                f"kaio_fio_{k}": float(v) for k, v in raw.items() if isinstance(v, int | float)
            }
        return out

    def measure(self, contender: Contender, state: SubmitState, params: Mapping[str, Any]) -> Cases:
        writes = int(params["writes"])
        tasks = int(params["tasks"])

        async def main(api: Api) -> Cases:
            cases: Cases = {}
            for case in ("buffered", "direct"):
                cases[case] = await _writes(api, state, case == "direct", writes, tasks)
            return cases

        return run_main(contender, main)


async def _writes(
    api: Api, state: SubmitState, direct: bool, writes: int, tasks: int
) -> CaseResult:
    submits: list[float] = []
    totals: list[float] = []
    per_task = max(1, writes // tasks)
    ticker = Ticker(api)

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        buf = api.aligned_buffer(BLOCK)
        buf[:BLOCK] = os.urandom(BLOCK)
        f = await api.open_file(state.path, direct=direct, write=True)
        try:
            for _ in range(per_task):
                step = FirstStep(f.pwrite(buf, rng.randrange(state.blocks) * BLOCK))
                await step
                submits.append(step.first_step)
                totals.append(step.total)
        finally:
            await f.aclose()

    async def writers() -> float:
        await api.sleep(0.002)  # let the ticker start
        t0 = api.clock()
        try:
            await api.gather(*(lambda s=seed: worker(s) for seed in range(tasks)))
        finally:
            ticker.stop = True
        return api.clock() - t0

    _, wall = await api.pair(ticker.run, writers)
    sub = latency_summary(submits)
    tot = latency_summary(totals)
    return CaseResult(
        metrics={
            "submit_p50_us": sub["p50"] * 1e6,
            "submit_p99_us": sub["p99"] * 1e6,
            "submit_max_us": sub["max"] * 1e6,
            "latency_p50_us": tot["p50"] * 1e6,
            "lag_max_ms": max(ticker.lateness, default=0.0) * 1e3,
            "writes_per_s": len(totals) / wall,
        },
        extra={"loop_stats_end": api.stats()},
    )
