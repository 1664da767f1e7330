"""Workload 2, non-blocking calls are cheap (paper §2.1: "very little cost is required to
issue non-blocking operations").

Microseconds per call for calls that never block: a no-op, a cached 4 KiB ``os.pread``,
an ``os.stat`` of a cached inode. ``seq``: one task, one call after another; ``c64``: 64
tasks each making an equal share of the calls. A thread pool pays two thread hops per
call whether or not it blocks; sysletloop should complete each inline, with no hop.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.contenders.base import CALL, FILE, FS, Api, Contender, NotSupported
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

OPS = ("noop", "pread4k", "stat")
MODES = {"seq": 1, "c64": 64}  # mode -> concurrent tasks
BLOCK = 4096


def _noop() -> None:
    return None


@dataclass
class CheapState:
    path: str
    blocks: int


class CheapCalls(Workload[CheapState]):
    name = "cheap_calls"
    number = 2
    title = "Non-blocking calls are cheap"
    claim = (
        "Issuing an operation that does not block should cost about as much as making it: "
        "no thread hop, no scheduler round trip"
    )
    paper = "§2.1"
    needs_any = frozenset({CALL, FILE, FS})
    metrics = (Metric("us_per_call", "us", "lower", "wall time / calls (all tasks together)"),)
    headline = (
        ("noop/seq", "us_per_call"),
        ("pread4k/seq", "us_per_call"),
        ("pread4k/c64", "us_per_call"),
    )

    def params(self, profile: Profile) -> dict[str, Any]:
        calls = {"smoke": 128, "quick": 1024, "full": 20480}[profile]
        return {"calls": calls}

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"calls": max(64, params["calls"] // 4)}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> CheapState:
        path = os.path.join(scratch, "cheap.dat")
        make_file(path, MiB)
        warm(path)
        return CheapState(path, MiB // BLOCK)

    def cleanup(self, state: CheapState) -> None:
        os.unlink(state.path)

    def measure(self, contender: Contender, state: CheapState, params: Mapping[str, Any]) -> Cases:
        calls = int(params["calls"])

        async def main(api: Api) -> Cases:
            cases: Cases = {}
            f = await api.open_file(state.path) if FILE in api.provides else None
            try:
                for op in OPS:
                    for mode, tasks in MODES.items():
                        one = _one_call(api, op, f, state)
                        if one is None:
                            continue  # the contender has no such operation: shown as n/a
                        try:
                            us = await _us_per_call(api, one, calls, tasks)
                        except NotSupported as exc:
                            cases[f"{op}/{mode}"] = CaseResult(unsupported=str(exc))
                            continue
                        cases[f"{op}/{mode}"] = CaseResult(metrics={"us_per_call": us})
                stats = api.stats()
                if stats is not None:
                    for result in cases.values():
                        result.extra["loop_stats_end"] = stats
            finally:
                if f is not None:
                    await f.aclose()
            return cases

        return run_main(contender, main)


def _one_call(
    api: Api, op: str, f: Any, state: CheapState
) -> Callable[[int], Awaitable[object]] | None:
    if op == "noop":
        if CALL not in api.provides:
            return None
        return lambda i: api.call(_noop)
    if op == "pread4k":
        if f is None:
            return None
        return lambda i: f.pread(BLOCK, (i % state.blocks) * BLOCK)
    if FS not in api.provides:
        return None
    return lambda i: api.fs("stat", state.path)


async def _us_per_call(
    api: Api, one: Callable[[int], Awaitable[object]], calls: int, tasks: int
) -> float:
    per_task = max(1, calls // tasks)
    unsupported: list[str] = []

    async def worker(base: int) -> None:
        try:
            for i in range(per_task):
                await one(base + i)
        except NotSupported as exc:  # caught here: a task group would wrap it in a group
            unsupported.append(str(exc))

    t0 = api.clock()
    await api.gather(*(lambda b=t * per_task: worker(b) for t in range(tasks)))
    wall = api.clock() - t0
    if unsupported:
        raise NotSupported(unsupported[0])
    return wall / (per_task * tasks) * 1e6
