"""Workload 1, file hashing (paper §1.1): overlap reading with hashing.

The paper's first example: hash a large file read in pieces. With synchronous reads the
CPU idles while a piece is read and the disk idles while it is hashed; with asynchronous
reads the next piece is read while the current one is hashed, and the whole job should
take about as long as the slower of the two alone. Target: wall time <= 1.15 x
max(read-only, hash-only), both measured in the same repeat, without any loop.

Shape of the pipeline (the same for every contender): the loop's task hashes piece i
(``hashlib`` releases the GIL for large buffers) while ``pread`` of piece i+1 is in flight
through the contender. Cases: ``cold`` (pages evicted with ``POSIX_FADV_DONTNEED`` before
each run), ``warm`` (file in the page cache) and ``latencyfs`` (the same file read through
the latency file system, :mod:`benchmarks.latencyfs`: every request is answered 2 ms after
it arrives, with the page cache defeated, so that there is a read to overlap for real (a
1 MiB piece is two 512 KiB requests here, about 4.5 ms; on this VM "cold" reads come from
the host's cache at ~850 MB/s and nothing blocks).
Where FUSE cannot be had the ``latencyfs`` case says "unsupported", with the reason.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.contenders.base import FILE, Api, Contender
from benchmarks.latencyfs import Latency
from benchmarks.workloads.base import (
    CaseResult,
    Cases,
    Metric,
    MiB,
    Profile,
    Workload,
    evict,
    make_file,
    run_main,
    warm,
)
from benchmarks.workloads.storage import LatencyStorage

TARGET_OVERLAP = 1.15  # the target for wall / max(read-only, hash-only)
LATENCY_MS = 2.0  # the latency file system's read latency (issue 20's default)
CASES = ("cold", "warm", "latencyfs")


@dataclass
class HashState:
    path: str
    size: int
    piece: int
    digest: str
    latencyfs: LatencyStorage | None = None

    def path_for(self, case: str) -> str:
        if case == "latencyfs":
            assert self.latencyfs is not None
            return self.latencyfs.path(os.path.basename(self.path))
        return self.path


class Hashing(Workload[HashState]):
    name = "hashing"
    number = 1
    title = "File hashing: overlap I/O with CPU"
    claim = (
        "AIO lets one process hash piece i while piece i+1 is read, so the job takes "
        "about max(read time, hash time) instead of their sum"
    )
    paper = "§1.1"
    needs = frozenset({FILE})
    metrics = (
        Metric("wall_s", "s", "lower", "time to read and hash the whole file"),
        Metric("mb_per_s", "MB/s", "higher", "file size / wall time"),
        Metric(
            "overlap",
            "x",
            "lower",
            "wall / max(read-only, hash-only) of the same repeat; 1.0 is perfect overlap, "
            f"target <= {TARGET_OVERLAP}",
        ),
    )
    headline = (
        ("cold", "wall_s"),
        ("cold", "overlap"),
        ("warm", "overlap"),
        ("latencyfs", "overlap"),
    )

    def params(self, profile: Profile) -> dict[str, Any]:
        size = {"smoke": 4 * MiB, "quick": 128 * MiB, "full": 512 * MiB}[profile]
        return {
            "size": size,
            "piece": MiB,
            "cases": list(CASES),
            "latency": Latency(read_ms=LATENCY_MS).as_dict(),
        }

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # One case warms a contender up (imports, threads, the predictor's first look):
        # the whole file once, not three times (a fifth of the quick run's hashing time).
        return {
            **params,
            "cases": [c for c in params["cases"] if c == "warm"][:1] or params["cases"][:1],
        }

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> HashState:
        # A directory of its own: latencyfs is mounted over it.
        directory = os.path.join(scratch, "hashing")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "hashing.dat")
        make_file(path, params["size"])
        h = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY)
        try:
            while piece := os.read(fd, params["piece"]):
                h.update(piece)
        finally:
            os.close(fd)
        state = HashState(path, params["size"], params["piece"], h.hexdigest())
        if "latencyfs" in params.get("cases", ("cold", "warm")):
            state.latencyfs = LatencyStorage.open(directory, Latency(**params["latency"]))
        return state

    def cleanup(self, state: HashState) -> None:
        if state.latencyfs is not None:
            state.latencyfs.close()
        os.unlink(state.path)
        os.rmdir(os.path.dirname(state.path))

    def _cases(self, state: HashState, params: Mapping[str, Any]) -> list[str]:
        return [str(c) for c in params.get("cases", ("cold", "warm"))]

    def _missing(self, state: HashState, case: str) -> str | None:
        if case == "latencyfs" and state.latencyfs is not None:
            return state.latencyfs.missing
        return None

    def reference(self, state: HashState, params: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        """Read-only, hash-only and sync (read then hash) times, without any loop."""
        out: dict[str, dict[str, float]] = {}
        buf = os.urandom(state.piece)
        t0 = time.perf_counter()
        h = hashlib.sha256()
        for _ in range(state.size // state.piece):
            h.update(buf)
        hash_only = time.perf_counter() - t0
        for case in self._cases(state, params):
            if self._missing(state, case) is not None:
                continue
            path = state.path_for(case)
            _prime(state.path, case)
            read_only = _timed_sync(state, path, hash_it=False)
            _prime(state.path, case)
            sync = _timed_sync(state, path, hash_it=True)
            out[case] = {"read_only_s": read_only, "hash_only_s": hash_only, "sync_s": sync}
        return out

    def measure(self, contender: Contender, state: HashState, params: Mapping[str, Any]) -> Cases:
        async def main(api: Api) -> Cases:
            cases: Cases = {}
            for case in self._cases(state, params):
                missing = self._missing(state, case)
                if missing is not None:
                    cases[case] = CaseResult(unsupported=missing)
                    continue
                _prime(state.path, case)
                f = await api.open_file(state.path_for(case))
                extra: dict[str, Any] = {}
                try:
                    if case == "latencyfs":
                        assert state.latencyfs is not None
                        with state.latencyfs.window(extra):
                            t0 = api.clock()
                            digest = await pipelined_sha256(api, f, state.piece)
                            wall = api.clock() - t0
                    else:
                        t0 = api.clock()
                        digest = await pipelined_sha256(api, f, state.piece)
                        wall = api.clock() - t0
                finally:
                    await f.aclose()
                if digest != state.digest:
                    raise AssertionError(f"{case}: wrong digest {digest} != {state.digest}")
                cases[case] = CaseResult(
                    metrics={"wall_s": wall, "mb_per_s": state.size / wall / 1e6}, extra=extra
                )
            return cases

        return run_main(contender, main)

    def complete(self, cases: Cases, reference: Mapping[str, Mapping[str, float]]) -> None:
        """``overlap`` = wall / max(read-only, hash-only), all from the same repeat."""
        for case, result in cases.items():
            ref = reference.get(case)
            if ref and "wall_s" in result.metrics:
                bound = max(ref["read_only_s"], ref["hash_only_s"])
                result.metrics["overlap"] = result.metrics["wall_s"] / bound


def _prime(path: str, case: str) -> None:
    """``path`` is the backing file: evicted for cold, read once for warm and for
    latencyfs (whose server reads it through the cache: the latency is the injected one)."""
    if case == "cold":
        evict(path)
    else:
        warm(path)


def _timed_sync(state: HashState, path: str, *, hash_it: bool) -> float:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        t0 = time.perf_counter()
        offset = 0
        while piece := os.pread(fd, state.piece, offset):
            offset += len(piece)
            if hash_it:
                h.update(piece)
        return time.perf_counter() - t0
    finally:
        os.close(fd)


async def pipelined_sha256(api: Api, f: Any, piece: int) -> str:
    """SHA-256 of the file, hashing piece i while piece i+1 is read (depth-1 pipeline)."""
    h = hashlib.sha256()
    offset = 0
    data: bytes = await f.pread(piece, 0)
    while data:
        offset += len(data)
        current = data

        async def hash_current(chunk: bytes = current) -> None:
            h.update(chunk)

        async def read_next(at: int = offset) -> bytes:
            return bytes(await f.pread(piece, at))

        data, _ = await api.pair(read_next, hash_current)
    return h.hexdigest()
