"""Workload 4, the loop keeps serving (paper §1.1: "trade hashing for non-blocking network
IO and you have an iSCSI target server").

A TCP echo server on 127.0.0.1 answers a fixed client load (a separate process, see
``echo_client.py``) while the same loop also does blocking file I/O: every ``io_gap``
seconds, a 1 MiB read of evicted pages, a 256 KiB write and an fsync, through the
contender. A loop that blocks on that I/O stops answering for its duration; p99 latency
shows it. Case ``busy`` has the file I/O; ``idle`` (full profile only) has none, for the
loop's own floor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.contenders.base import ECHO, FILE, Api, Contender
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

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_client.py")
READ = MiB
WRITE = 256 * 1024


@dataclass
class EchoState:
    path: str
    size: int
    scratch: str


class Echo(Workload[EchoState]):
    name = "echo"
    number = 4
    title = "The loop keeps serving"
    claim = (
        "A server whose loop never blocks on file I/O keeps answering the network at its "
        "usual latency while that I/O is in progress"
    )
    paper = "§1.1"
    needs = frozenset({ECHO, FILE})
    metrics = (
        Metric("p50_ms", "ms", "lower", "median request latency (from intended send time)"),
        Metric("p99_ms", "ms", "lower", "99th percentile request latency"),
        Metric("max_ms", "ms", "lower", "worst request latency"),
        Metric("rps", "req/s", "higher", "answered requests per second"),
        Metric("unanswered", "req", "lower", "requests not answered by the end"),
        Metric("io_rounds", "rounds", "higher", "file I/O rounds the server completed"),
    )
    headline = (("busy", "p50_ms"), ("busy", "p99_ms"), ("busy", "rps"))

    def params(self, profile: Profile) -> dict[str, Any]:
        return {
            "conns": {"smoke": 2, "quick": 4, "full": 8}[profile],
            "interval_ms": 2.0,
            "seconds": {"smoke": 0.2, "quick": 0.8, "full": 5.0}[profile],
            "size": 64,
            "io_gap": 0.005,
            "file_size": {"smoke": 8 * MiB, "quick": 64 * MiB, "full": 256 * MiB}[profile],
            "cases": ["idle", "busy"] if profile == "full" else ["busy"],
        }

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, "seconds": min(0.2, params["seconds"]), "cases": ["busy"]}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> EchoState:
        path = os.path.join(scratch, "echo.dat")
        make_file(path, params["file_size"])
        return EchoState(path, params["file_size"], scratch)

    def cleanup(self, state: EchoState) -> None:
        os.unlink(state.path)

    def measure(self, contender: Contender, state: EchoState, params: Mapping[str, Any]) -> Cases:
        async def main(api: Api) -> Cases:
            cases: Cases = {}
            for case in params["cases"]:
                busy = case == "busy"

                async def body(port: int, busy: bool = busy) -> CaseResult:
                    return await _load(api, state, params, port, busy=busy)

                cases[case] = await api.serve_echo(body)
            return cases

        return run_main(contender, main, timeout=60 + 4 * float(params["seconds"]))


async def _load(
    api: Api, state: EchoState, params: Mapping[str, Any], port: int, *, busy: bool
) -> CaseResult:
    fd_out, out_path = tempfile.mkstemp(prefix="echo-", suffix=".json", dir=state.scratch)
    os.close(fd_out)
    argv = [
        sys.executable,
        CLIENT,
        f"--port={port}",
        f"--conns={params['conns']}",
        f"--interval-ms={params['interval_ms']}",
        f"--seconds={params['seconds']}",
        f"--size={params['size']}",
        f"--out={out_path}",
    ]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    io_rounds = 0
    io_time = 0.0
    limit = api.clock() + float(params["seconds"]) + 30.0
    try:

        async def file_io() -> None:
            nonlocal io_rounds, io_time
            if not busy:
                return
            f = await api.open_file(state.path, write=True)
            data = os.urandom(WRITE)
            try:
                offset = 0
                while proc.poll() is None and api.clock() < limit:
                    os.posix_fadvise(f.fileno, offset, READ, os.POSIX_FADV_DONTNEED)
                    t0 = api.clock()
                    await f.pread(READ, offset)
                    await f.pwrite(data, offset)
                    await f.fsync()
                    io_time += api.clock() - t0
                    io_rounds += 1
                    offset = (offset + READ) % (state.size - READ)
                    await api.sleep(float(params["io_gap"]))
            finally:
                await f.aclose()

        async def wait_client() -> None:
            while proc.poll() is None and api.clock() < limit:
                await api.sleep(0.01)

        await api.pair(wait_client, file_io)
        if proc.poll() is None:
            raise TimeoutError("echo client did not finish")
        if proc.returncode != 0:
            raise RuntimeError(f"echo client exited with {proc.returncode}")
        with open(out_path, encoding="utf-8") as f_out:
            result = json.load(f_out)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.unlink(out_path)
    lat = [float(v) for v in result["latencies_s"]]
    if not lat:
        raise RuntimeError("no request was answered")
    summary = latency_summary(lat)
    return CaseResult(
        metrics={
            "p50_ms": summary["p50"] * 1e3,
            "p99_ms": summary["p99"] * 1e3,
            "max_ms": summary["max"] * 1e3,
            "rps": len(lat) / float(result["seconds"]),
            "unanswered": float(result["unanswered"]),
            "io_rounds": float(io_rounds),
        },
        samples={"latency_ms_cdf": [v * 1e3 for v in cdf_quantiles(lat)]},
        extra={
            "sent": result["sent"],
            "io_round_ms_mean": io_time / io_rounds * 1e3 if io_rounds else None,
            "loop_stats_end": api.stats(),
        },
    )
