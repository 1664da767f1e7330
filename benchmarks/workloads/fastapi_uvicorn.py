"""Workload 10, FastAPI ``def`` endpoints under uvicorn (issue 11: served syslet-style).

FastAPI and Starlette run every ``def`` endpoint, sync dependency and ``FileResponse``
through ``anyio.to_thread.run_sync``: anyio's own worker threads behind 40 tokens, a path
that never meets ``run_in_executor``. The loop option ``route_anyio`` sends it down the
syslet path instead. This workload serves one FastAPI app (``benchmarks.fastapi_app``)
with a real uvicorn process on 127.0.0.1 per contender and repeat, ``--loop`` set to the
contender's loop, and puts each case under a closed-loop load:

========== =========================================== ===== ==========================
case       endpoint                                    conns target (``sysletloop-anyio``
                                                             req/s vs stock asyncio)
========== =========================================== ===== ==========================
json       ``def``, a small JSON object                32    >= 1.25
sleep      ``def``, ``time.sleep(0.05)``               256   >= 3, loop lag p99 <= 5 ms
sqlite     ``def``, one row of a SQLite database file  32    >= 1.25
file       ``FileResponse`` of a 64 KiB file           32    >= 1.5
async-json ``async def``, a small JSON object          32    >= 0.97 (the option is free)
========== =========================================== ===== ==========================

Glossary
--------
server
    One ``uvicorn benchmarks.fastapi_app:app --loop L`` process, started for one repeat of
    one contender and stopped after its last case. ``L`` is the contender's
    ``uvicorn_loop``: ``asyncio`` for the baseline (stock asyncio; on this workload
    ``asyncio-to_thread`` names the stock loop, its endpoints on anyio's threads),
    ``uvloop``, ``sysletloop:new_event_loop``, ``sysletloop:new_anyio_event_loop``.
workers
    Processes serving one listening socket, each on a loop of its own (parameter
    ``workers``, default 1): ``uvicorn --workers N``, or with ``server="gunicorn"``,
    ``gunicorn -w N -k benchmarks.gunicorn_workers.LoopWorker`` (uvicorn's worker class,
    ``L`` as its loop). The way Python servers use more than one core.
load generator
    wrk when it is on PATH, else :mod:`benchmarks.http_load` (:mod:`benchmarks.loadgen`,
    shared with ``net_throughput``). Every case records the one used
    (``extra.generator``) and the report names it.
loop lag
    How late a 1 ms timer in the server fired, over the measured window. Every worker has
    its ticker and writes its samples when it shuts down (:mod:`benchmarks.lag_ticker`);
    a case's ``lag_p99_ms`` is the worst worker's p99 over the case's window, each
    worker's own in ``extra.lag_workers``.

Per case: ``warmup_s`` of load that is not recorded (the server is new: the predictor has
seen nothing), ``seconds`` of load, then the loop's own counters (``/_stats``: one
worker's); the lag of each case's window once the server has stopped. The runner pairs
the repeats and takes the ratios; the order of the contenders is rotated every repeat
(``rotate``), as ``benchmarks.fastapi_serve`` did before it became a front end to this
workload.

Threads: everything here runs in the harness's main thread; the load is in child
processes (uvicorn, wrk).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.contenders.base import ASGI, Contender
from benchmarks.lag_ticker import read_dumps, window_report
from benchmarks.loadgen import (
    ServerProcess,
    case_overrides,
    choose_generator,
    free_port,
    generator_name,
    load,
    process_tree,
    read_text,
    tree_cpu_seconds,
)
from benchmarks.machine import package_version
from benchmarks.targets import Verdict
from benchmarks.targets import verdicts as judge
from benchmarks.workloads.base import CaseResult, Cases, Metric, Profile, Workload

LOOP_VARIABLE = "SYSLETLOOP_BENCH_UVICORN_LOOP"  # benchmarks.gunicorn_workers reads it
ROUTED = "sysletloop-anyio"  # the contender the targets are about
UVICORN_MIN = (0, 36)  # the first uvicorn whose --loop takes a module:attr loop factory


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    conns: int
    target: float  # the target for ROUTED / stock asyncio req/s (median of ratios)
    lag_target_ms: float | None = None


CASES = (
    Case("json", "/json", 32, 1.25),
    Case("sleep", "/sleep", 256, 3.0, lag_target_ms=5.0),
    Case("sqlite", "/sqlite", 32, 1.25),
    Case("file", "/file", 32, 1.5),
    Case("async-json", "/async-json", 32, 0.97),
)
CASE_NAMES = tuple(c.name for c in CASES)


# ---------------------------------------------------------------------------------------
# A server
# ---------------------------------------------------------------------------------------


SERVERS = ("uvicorn", "gunicorn")


def server_argv(server: str, loop: str, port: int, workers: int) -> list[str]:
    """The command line serving ``benchmarks.fastapi_app`` on ``loop`` in ``workers``
    processes (gunicorn's worker class reads the loop from the environment)."""
    if server == "uvicorn":
        argv = [sys.executable, "-m", "uvicorn", "benchmarks.fastapi_app:app",
                "--host", "127.0.0.1", "--port", str(port), "--loop", loop,
                "--no-access-log", "--log-level", "warning"]  # fmt: skip
        return argv + (["--workers", str(workers)] if workers > 1 else [])
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "benchmarks.fastapi_app:app",
                "-k", "benchmarks.gunicorn_workers.LoopWorker", "-w", str(workers),
                "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10",
                "--log-level", "warning"]  # fmt: skip
    raise ValueError(f"server {server!r}: one of {', '.join(SERVERS)}")


class Running(ServerProcess):
    """``server`` (uvicorn or gunicorn) serving ``benchmarks.fastapi_app`` on ``loop`` in
    ``workers`` processes; each worker writes its lag samples to ``lag_dir`` at exit."""

    def __init__(
        self,
        name: str,
        loop: str,
        data_dir: Path,
        log: Path,
        *,
        server: str = "uvicorn",
        workers: int = 1,
        lag_dir: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = server_argv(server, loop, self.port, workers)
        env = dict(os.environ, SYSLETLOOP_BENCH_DIR=str(data_dir))
        env[LOOP_VARIABLE] = loop
        if lag_dir is not None:
            env["SYSLETLOOP_BENCH_LAG_DIR"] = str(lag_dir)
        what = f"{name}: {server} --loop {loop}" + (f", {workers} workers" if workers > 1 else "")
        super().__init__(what, argv, log, lambda: self.get("/async-json"), env)

    def get(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())


def measure_case(
    running: Running, case: Case, wrk: str | None, seconds: float, warmup_s: float
) -> tuple[CaseResult, tuple[float, float]]:
    """One case on a running server: warm-up (not recorded), then the measured window,
    returned with the case (its lag is added once the server has stopped: ``add_lag``)."""
    url = running.url + case.path
    if warmup_s > 0:
        load(wrk, url, case.conns, warmup_s)
    pids = process_tree(running.pid)  # uvicorn's or gunicorn's workers, and the master
    cpu0, t0 = tree_cpu_seconds(pids), time.perf_counter()
    start = time.time()
    metrics = load(wrk, url, case.conns, seconds)
    window = (start, time.time())
    server_cpu = (tree_cpu_seconds(pids) - cpu0) / (time.perf_counter() - t0)
    result = CaseResult(
        metrics={
            "rps": metrics["rps"],
            "p50_ms": metrics["p50_ms"],
            "p99_ms": metrics["p99_ms"],
            "errors": float(metrics.get("errors", 0.0)),
            "server_cpu": server_cpu,
        },
        extra={
            "generator": generator_name(wrk),
            "loop_stats_end": running.get("/_stats") or None,
        },
    )
    return result, window


def add_lag(
    result: CaseResult, dumps: Sequence[dict[str, Any]], window: tuple[float, float]
) -> None:
    """The case's loop lag, from the workers' samples (``benchmarks.lag_ticker``)."""
    lag = window_report(dumps, *window)
    result.metrics["lag_p99_ms"] = float(lag["p99_ms"])
    result.extra["lag_max_ms"] = float(lag["max_ms"])
    result.extra["lag_workers"] = lag["workers"]


# ---------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------


@dataclass
class ServeState:
    data_dir: Path
    log: Path
    wrk: str | None
    generator_note: str  # which generator, and why (recorded in every case's extra)
    servers: int = 0  # servers started so far (each gets its own lag directory)


class FastAPIServe(Workload[ServeState]):
    """The workload; the keyword arguments override a profile's parameters (the
    ``benchmarks.fastapi_serve`` command's options)."""

    name = "fastapi"
    number = 10
    title = "FastAPI def endpoints under uvicorn"
    claim = (
        "With `uvicorn --loop sysletloop:new_anyio_event_loop` (route_anyio), FastAPI's "
        "thread work takes the syslet path: against stock asyncio, a `def` endpoint "
        "returning small JSON or reading a SQLite row serves >= 1.25x the requests, one "
        "blocked in `time.sleep(0.05)` at 256 connections >= 3x with loop lag p99 <= 5 ms, "
        "a 64 KiB `FileResponse` >= 1.5x, and an `async def` endpoint >= 0.97x (the option "
        "costs nothing)"
    )
    paper = "issue 11"
    needs = frozenset({ASGI})
    rotate = True
    metrics = (
        Metric("rps", "req/s", "higher", "answered requests per second (load generator)"),
        Metric("p50_ms", "ms", "lower", "median request latency (load generator)"),
        Metric("p99_ms", "ms", "lower", "99th percentile request latency (load generator)"),
        Metric("lag_p99_ms", "ms", "lower", "p99 lateness of a 1 ms timer in the server"),
        Metric("errors", "req", "lower", "non-2xx answers and socket errors"),
        Metric("server_cpu", "cores", "none", "CPU share of the server's processes, all workers"),
    )
    headline = (
        ("json", "rps"),
        ("sleep", "rps"),
        ("sleep", "lag_p99_ms"),
        ("sqlite", "rps"),
        ("file", "rps"),
        ("async-json", "rps"),
    )

    def __init__(
        self,
        *,
        seconds: float | None = None,
        warmup_s: float | None = None,
        cases: Sequence[str] | None = None,
        generator: str | None = None,
        install_wrk: bool = False,
        workers: int | None = None,
        server: str | None = None,
    ) -> None:
        self._overrides = case_overrides(
            CASE_NAMES, seconds=seconds, warmup_s=warmup_s, cases=cases, generator=generator
        )
        if workers is not None:
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise ValueError(f"workers={workers!r}: a positive whole number of processes")
            self._overrides["workers"] = workers
        if server is not None:
            if server not in SERVERS:
                raise ValueError(f"server {server!r}: one of {', '.join(SERVERS)}")
            self._overrides["server"] = server
        self._install_wrk = install_wrk

    def params(self, profile: Profile) -> dict[str, Any]:
        # quick: 1 s per case after 1 s of warm-up (wrk's floor): 141 s for the four
        # servers and 3 repeats on 2 shared vCPUs. full: 5 s, about 10 minutes at 5
        # repeats (benchmarks.fastapi_serve's own default is 10 s per case).
        params: dict[str, Any] = {
            "seconds": {"smoke": 0.3, "quick": 1.0, "full": 5.0}[profile],
            "warmup_s": {"smoke": 0.0, "quick": 1.0, "full": 1.0}[profile],
            "cases": ["json", "sleep"] if profile == "smoke" else list(CASE_NAMES),
            # smoke: the stdlib generator, whose window can be a fraction of a second
            "generator": "http_load" if profile == "smoke" else "auto",
            "workers": 1,
            "server": "uvicorn",
        }
        return {**params, **self._overrides}

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # Each repeat's server is new and warms itself up per case (warmup_s): the runner's
        # warm-up run only has to start one server and load it once (imports, page cache).
        seconds = min(1.0, float(params["seconds"]))
        return {**params, "cases": [params["cases"][0]], "warmup_s": 0.0, "seconds": seconds}

    def missing(self) -> str | None:
        for module in ("fastapi", "uvicorn"):
            if package_version(module) is None:
                return f"{module} is not installed (pip install 'sysletloop[bench]')"
        version = package_version("uvicorn") or "0"
        numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
        if numbers < UVICORN_MIN:
            return f"uvicorn {version} has no module:attr --loop (needs 0.36 or later)"
        if self._overrides.get("server") == "gunicorn":
            for module in ("gunicorn", "uvicorn_worker"):
                if package_version(module.replace("_", "-")) is None:
                    return f"{module} is not installed (pip install 'sysletloop[bench]')"
        return None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "targets": targets()}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> ServeState:
        from benchmarks import fastapi_app  # imports fastapi: only once the workload runs

        data_dir = Path(scratch) / "fastapi"
        fastapi_app.prepare(data_dir)
        wrk, note = choose_generator(params["generator"], install=self._install_wrk)
        return ServeState(data_dir, data_dir / "uvicorn.log", wrk, note)

    def measure(self, contender: Contender, state: ServeState, params: Mapping[str, Any]) -> Cases:
        loop = contender.uvicorn_loop
        if loop is None:
            raise TypeError(f"{contender.name} has no uvicorn loop")
        by_name = {c.name: c for c in CASES}
        state.servers += 1
        lag_dir = state.data_dir / f"lag-{state.servers}"
        running = Running(
            contender.name,
            loop,
            state.data_dir,
            state.log,
            server=params.get("server", "uvicorn"),
            workers=int(params.get("workers", 1)),
            lag_dir=lag_dir,
        )
        cases: Cases = {}
        windows = {}
        try:
            for name in params["cases"]:
                result, windows[name] = measure_case(
                    running,
                    by_name[name],
                    state.wrk,
                    float(params["seconds"]),
                    float(params["warmup_s"]),
                )
                result.extra["generator"] = state.generator_note
                cases[name] = result
        finally:
            running.stop()
        if "Traceback" in (text := read_text(state.log)):
            raise RuntimeError(f"{contender.name}: the server logged an error: {text[-2000:]}")
        dumps = read_dumps(lag_dir) if lag_dir.is_dir() else []
        if len(dumps) < int(params.get("workers", 1)):
            raise RuntimeError(
                f"{contender.name}: {len(dumps)} of {params.get('workers', 1)} workers wrote "
                f"their lag samples at shutdown ({lag_dir}): {running.log_tail()}"
            )
        for name, result in cases.items():
            add_lag(result, dumps, windows[name])
            # the load's split between the workers (warm-up included)
            path = by_name[name].path
            result.extra["served_by_worker"] = [(d.get("served") or {}).get(path, 0) for d in dumps]
        return cases


def targets() -> dict[str, Any]:
    """The issue's targets, as recorded in results.json (``workloads.fastapi.targets``)."""
    return {
        "contender": ROUTED,
        "cases": {c.name: {"rps_ratio": c.target, "lag_p99_ms": c.lag_target_ms} for c in CASES},
    }


def verdicts(w: Mapping[str, Any]) -> list[Verdict]:
    """Per case of a ``fastapi`` results entry: did the routed contender meet its target?"""
    return judge(w, targets())
