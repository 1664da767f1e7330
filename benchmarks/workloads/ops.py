"""Workload 7, supported operations (paper §2.1: with syslets "almost every existing
system call" is asynchronous, while KAIO "supports few operations").

For each operation and contender: does the operation run asynchronously (the loop's
1 ms timer keeps ticking while it runs), block the loop, or is it unsupported? Each
operation is sized to take milliseconds, so a stall is visible:

- ``read``: 16 MiB of evicted pages; ``write``: 16 MiB; ``fsync``: after dirtying 16 MiB;
- ``unlink`` of a 16 MiB file; ``sqlite``: a query of ~10-20 ms on an in-memory database;
- ``sleep``: ``time.sleep(0.02)``, the reference blocker;
- ``open``, ``stat`` and ``getaddrinfo("localhost")`` (resolved from /etc/hosts, no
  network) take microseconds, so each is repeated ``batch`` times in one offloaded
  callable (tens of ms) for a contender that runs callables; a contender with a native
  API instead (aiofiles) awaits it ``batch // 20`` times, each await being its own
  offload (the loop ticks between them whatever happens inside).

Verdict (from the medians): ``unsupported`` if the contender raised NotSupported;
``fast`` if the operation took under ``FAST_MS`` (a stall too short to see); ``blocks``
if the longest gap between ticks exceeded both ``BLOCKS_FRACTION`` of the operation's
time and ``FAST_MS``; else ``async``. A healthy 1 ms timer shows gaps of 1-1.5 ms, but an
offloaded thread running Python code (the batches) holds the GIL for up to the switch
interval (5 ms), so a gap of a few ms alone does not mean the loop itself blocked.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
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
    Ticker,
    Workload,
    evict,
    make_file,
    run_main,
)

FAST_MS = 2.0  # below this an operation's stall cannot be told from timer noise
# An inline (blocking) operation stalls the timer for ~all of its time (ratios 0.9-1.0
# measured); an offloaded one leaves gaps of GIL hand-offs, well under this fraction.
BLOCKS_FRACTION = 0.8
BIG = 16 * MiB
OPS = ("read", "write", "fsync", "open", "stat", "unlink", "getaddrinfo", "sqlite", "sleep")


@dataclass
class OpsState:
    scratch: str
    read_path: str
    batch: int


class Ops(Workload[OpsState]):
    name = "ops"
    number = 7
    title = "Supported operations"
    claim = (
        "Syslets make almost every system call asynchronous without touching its handler; "
        "KAIO supports a few file operations, and blocks on most of them"
    )
    paper = "§2.1, §1.3"
    needs_any = frozenset({CALL, FILE, FS})
    metrics = (
        Metric("op_ms", "ms", "none", "time the operation took"),
        Metric("max_gap_ms", "ms", "lower", "longest the loop's 1 ms timer went without a tick"),
    )
    headline = (("read", "max_gap_ms"), ("fsync", "max_gap_ms"), ("getaddrinfo", "max_gap_ms"))

    def params(self, profile: Profile) -> dict[str, Any]:
        return {"batch": {"smoke": 1000, "quick": 10000, "full": 20000}[profile]}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> OpsState:
        path = os.path.join(scratch, "ops-read.dat")
        make_file(path, BIG)
        return OpsState(scratch, path, int(params["batch"]))

    def cleanup(self, state: OpsState) -> None:
        os.unlink(state.read_path)

    def measure(self, contender: Contender, state: OpsState, params: Mapping[str, Any]) -> Cases:
        async def main(api: Api) -> Cases:
            cases: Cases = {}
            for op in OPS:
                cases[op] = await _one_op(api, state, op)
            return cases

        return run_main(contender, main)

    def labels(self, case: str, medians: Mapping[str, float]) -> dict[str, str]:
        return {"verdict": verdict(medians)}


def verdict(medians: Mapping[str, float]) -> str:
    if "op_ms" not in medians:
        return "unsupported"
    if medians["op_ms"] < FAST_MS:
        return "fast"
    gap = medians["max_gap_ms"]
    return "blocks" if gap > BLOCKS_FRACTION * medians["op_ms"] and gap > FAST_MS else "async"


async def _one_op(api: Api, state: OpsState, op: str) -> CaseResult:
    try:
        run, cleanup = await _setup(api, state, op)
    except NotSupported as exc:
        return CaseResult(unsupported=str(exc))
    ticker = Ticker(api)
    span: list[float] = []
    unsupported: list[str] = []

    async def timed() -> None:
        await api.sleep(0.003)  # the ticker is ticking
        t0 = api.clock()
        try:
            await run()
        except NotSupported as exc:  # caught here: a task group would wrap it in a group
            unsupported.append(str(exc))
        finally:
            span.extend((t0, api.clock()))
            ticker.stop = True

    try:
        await api.pair(ticker.run, timed)
    finally:
        await cleanup()
    if unsupported:
        return CaseResult(unsupported=unsupported[0])
    t0, t1 = span
    return CaseResult(
        metrics={"op_ms": (t1 - t0) * 1e3, "max_gap_ms": ticker.max_gap_between(t0, t1) * 1e3}
    )


Step = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


async def _setup(api: Api, state: OpsState, op: str) -> tuple[Step, Step]:
    """(the operation, its cleanup), prepared outside the timed span."""
    scratch = os.path.join(state.scratch, f"ops-{op}.dat")
    batch = state.batch
    if op in ("read", "write", "fsync"):
        write = op != "read"
        if write:
            make_file(scratch, BIG) if op == "write" else _dirty(scratch)
        else:
            evict(state.read_path)
        f = await api.open_file(scratch if write else state.read_path, write=write)

        async def close() -> None:
            await f.aclose()
            if write:
                os.unlink(scratch)

        if op == "read":
            return (lambda: _read_all(f)), close
        if op == "write":
            data = os.urandom(BIG)
            return (lambda: _discard(f.pwrite(data, 0))), close
        return f.fsync, close
    if op == "unlink":
        make_file(scratch, BIG)

        async def gone() -> None:
            if os.path.exists(scratch):
                os.unlink(scratch)

        return (lambda: api.fs("unlink", scratch)), gone
    if op in ("open", "stat"):
        fs_op = "open_close" if op == "open" else "stat"
        path = state.read_path
        if CALL in api.provides:
            fn = _open_close_many if op == "open" else _stat_many
            return (lambda: api.call(fn, path, batch)), _nothing

        async def many() -> None:
            for _ in range(max(1, batch // 20)):
                await api.fs(fs_op, path)  # type: ignore[arg-type]

        return many, _nothing
    if op == "getaddrinfo":
        return (lambda: api.call(_getaddrinfo_many, batch)), _nothing
    if op == "sqlite":
        return (lambda: api.call(_sqlite_query)), _nothing
    if op == "sleep":
        return (lambda: api.call(time.sleep, 0.02)), _nothing
    raise ValueError(op)


async def _discard(aw: Awaitable[Any]) -> None:
    await aw


async def _read_all(f: Any) -> None:
    offset = 0
    while offset < BIG:
        got = await f.pread(4 * MiB, offset)
        if not got:
            break
        offset += len(got)


def _dirty(path: str) -> None:
    make_file(path, 0)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, os.urandom(BIG), 0)  # dirty pages, not synced: fsync has work to do
    finally:
        os.close(fd)


def _open_close_many(path: str, n: int) -> None:
    for _ in range(n):
        os.close(os.open(path, os.O_RDONLY))


def _stat_many(path: str, n: int) -> None:
    for _ in range(n):
        os.stat(path)


def _getaddrinfo_many(n: int) -> None:
    for _ in range(n):
        socket.getaddrinfo("localhost", 7, proto=socket.IPPROTO_TCP)


def _sqlite_query() -> None:
    db = sqlite3.connect(":memory:")
    try:
        db.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) "
            "SELECT sum(x) FROM c"
        ).fetchone()
    finally:
        db.close()
