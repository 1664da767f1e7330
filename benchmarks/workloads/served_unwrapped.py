"""Workload 13, a server whose handler blocks unwrapped (issue 19: served, not just run).

The ``unwrapped`` workload measures twenty tasks in one process. This one puts the same
mistake where it costs the most, in a web server's ``async def`` handler under load: a
blocking call straight in its body holds the loop, so every other connection waits for
it, on stock asyncio, on uvloop and on sysletloop by default. With ``migrate_steps=True``
the blocked step leaves the loop's thread and the server goes on serving
(``syslet_stats().claimed_steps`` counts the moves).

================ ================================================ ===== ===================
case             the handler, on the loop under test              conns target
                                                                        (``sysletloop-steps``
                                                                        req/s vs stock)
================ ================================================ ===== ===================
fastapi-sleep    FastAPI under uvicorn, ``async def``,            64    >= 10
                 ``time.sleep(0.05)`` (``/async-sleep``)
aiohttp-urlopen  aiohttp's web server, ``async def``,             32    >= 10
                 ``urllib.request.urlopen`` of a backend that
                 answers after 50 ms (:mod:`benchmarks.delay_server`)
================ ================================================ ===== ===================

A loop that stalls serves one request per 50 ms, about 20 req/s however many connections
wait; one that does not is bounded by the connections (64 / 50 ms = 1280 req/s, 32 / 50
ms = 640) and by the CPU. The target is the median of the per-round ratios.

Why a workload of its own and not a case of ``fastapi``: that workload's targets are all
about ``sysletloop-anyio`` (one contender per workload's targets, :mod:`benchmarks.targets`),
its ``def`` endpoints never block a task step, and it runs in ``--quick``, where four
stalled servers at 64 connections would add about a minute. The aiohttp case is not
uvicorn at all. What is shared is reused: the FastAPI app (``benchmarks.fastapi_app``),
the uvicorn process (:class:`~benchmarks.workloads.fastapi_uvicorn.Running`), the load
generator and server processes (:mod:`benchmarks.loadgen`), the delay server and its
process (:class:`~benchmarks.workloads.unwrapped.DelayServer`).

Glossary
--------
server
    One process per case, contender and round, on the contender's loop: ``uvicorn
    benchmarks.fastapi_app:app --loop L`` or ``python -m benchmarks.aiohttp_app --loop
    L``, where ``L`` is the contender's ``uvicorn_loop`` (``asyncio``, ``uvloop``,
    ``sysletloop:new_event_loop``, ``benchmarks.fastapi_loops:migrate_steps``).
backend
    The delay server, on stock asyncio in its own process, started once per run
    (``prepare``) and shared by every contender and round: never on the loop under test.
backlog
    A stalled server still owes, when the load generator stops, one 50 ms step per open
    connection (64 x 50 ms = 3.2 s). The lag reset before each window and the reads after
    it are requests too: they wait behind it, so a window never starts on the last one's
    backlog.
claimed steps
    ``claimed_steps`` read from the server (``/_stats``) before and after the window: the
    steps moved off the loop's thread while it was measured (``extra``; None on a loop
    without the counter).
loop faults
    What sysletloop logs when it survives a fault of its own (``sysletloop: holding a
    claimed step failed; the loop goes on``), read from the server's log after the case
    (``extra["loop_faults"]``): once per kind and server, so whether, not how often.

Contenders: those with the ``served`` capability: stock asyncio (the
``asyncio-to_thread`` row names its loop: nothing here goes through ``to_thread``),
uvloop, sysletloop with its default options (it stalls as stock does: its watchdog
watches the calls handed to it, not task steps), and ``sysletloop-steps``, missing with
the loop's error where ``migrate_steps=True`` raises (3.11: ValueError). The others are
n/a: rloop has no uvicorn loop here and would stall as stock does; ``sysletloop-anyio``
only changes ``def`` endpoints; gevent, trio and anyio are not asyncio loops.

Per case: ``warmup_s`` of load that is not recorded (the server is new), a reset of the
lag window, ``seconds`` of load, then the lag and the counters. The runner pairs the
rounds, rotates the contenders' order every round (``rotate``) and takes each ratio to
stock asyncio's round by round. Not in ``--quick`` unless named (``--workloads
served_unwrapped``): its stalled servers alone take over a minute there.

Threads: the harness's main thread only; every loop, server and load generator is a
child process.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from benchmarks.contenders.base import SERVED, Contender
from benchmarks.loadgen import (
    ServerProcess,
    case_overrides,
    choose_generator,
    free_port,
    load,
    read_text,
)
from benchmarks.machine import package_version
from benchmarks.targets import Verdict
from benchmarks.targets import verdicts as judge
from benchmarks.workloads.base import CaseResult, Cases, Profile, Workload
from benchmarks.workloads.fastapi_uvicorn import FastAPIServe, Running
from benchmarks.workloads.unwrapped import DelayServer

SUBJECT = "sysletloop-steps"  # the contender the targets are about
CLAIMED = "claimed_steps"  # the loop's counter of steps moved off its thread
FAULTS = "loop_faults"  # the faults the server's loop logged and survived (extra)
GET_TIMEOUT = 30.0  # seconds for a request of the harness's own: it may wait on a backlog


@dataclass(frozen=True)
class Case:
    name: str
    server: str  # "uvicorn" or "aiohttp"
    path: str
    conns_param: str  # the params key of its connections
    target: float  # SUBJECT's req/s over stock asyncio's, at least (median of ratios)


CASES = (
    Case("fastapi-sleep", "uvicorn", "/async-sleep", "fastapi_conns", 10.0),
    Case("aiohttp-urlopen", "aiohttp", "/urlopen", "aiohttp_conns", 10.0),
)
CASE_NAMES = tuple(c.name for c in CASES)


# ---------------------------------------------------------------------------------------
# The servers
# ---------------------------------------------------------------------------------------


class Served(Protocol):
    """A running server of either kind, as a case sees it."""

    url: str

    def get(self, path: str, method: str = "GET") -> Any: ...

    def stop(self) -> None: ...


def get_json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=GET_TIMEOUT) as reply:
        return json.loads(reply.read())


class AiohttpServer(ServerProcess):
    """``python -m benchmarks.aiohttp_app`` on the loop ``loop``, asking ``backend``."""

    def __init__(self, name: str, loop: str, backend: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "benchmarks.aiohttp_app", "--loop", loop,
                "--port", str(self.port), "--backend", backend]  # fmt: skip
        super().__init__(f"{name}: aiohttp --loop {loop}", argv, log, lambda: self.get("/_stats"))

    def get(self, path: str, method: str = "GET") -> Any:
        return get_json(self.url + path, method)


class SlowGets(Running):
    """The uvicorn server, its own requests allowed to wait behind a stalled backlog."""

    def get(self, path: str, method: str = "GET") -> Any:
        return get_json(self.url + path, method)


# ---------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------


def loop_faults(log: str) -> list[str]:
    """The faults a sysletloop survived and logged (``sysletloop: WHERE failed; the loop
    goes on``, then the error's line), as one line each: once per kind and server, so a
    presence, not a count. A fault logged with a traceback fails the case instead."""
    lines = log.splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.startswith("sysletloop: ") and line.endswith("failed; the loop goes on"):
            error = lines[i + 1].strip() if i + 1 < len(lines) else ""
            found.append(f"{line}: {error}" if error else line)
    return found


def claimed(before: Mapping[str, Any], after: Mapping[str, Any]) -> int | None:
    """Steps claimed between two ``/_stats`` answers; None without the counter."""
    first, last = before.get(CLAIMED), after.get(CLAIMED)
    if isinstance(first, int) and isinstance(last, int):
        return last - first
    return None


def measure_case(
    server: Served, case: Case, wrk: str | None, params: Mapping[str, Any], note: str
) -> CaseResult:
    """One case on a running server: warm-up (not recorded), then the measured window."""
    url = f"{server.url}{case.path}?seconds={float(params['block_s'])}"
    conns = int(params[case.conns_param])
    warmup = float(params["warmup_s"])
    if warmup > 0:
        load(wrk, url, conns, warmup)
    server.get("/_lag/reset", "POST")  # waits behind what a stalled loop still owes
    before = server.get("/_stats")
    metrics = load(wrk, url, conns, float(params["seconds"]))
    lag = server.get("/_lag")
    after = server.get("/_stats")
    return CaseResult(
        metrics={
            "rps": metrics["rps"],
            "p50_ms": metrics["p50_ms"],
            "p99_ms": metrics["p99_ms"],
            "lag_p99_ms": float(lag["p99_ms"]),
            "errors": float(metrics.get("errors", 0.0)),
        },
        extra={
            "generator": note,
            "conns": conns,
            "lag_max_ms": float(lag["max_ms"]),
            CLAIMED: claimed(before, after),
            "loop_stats_end": after or None,
        },
    )


# ---------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------


@dataclass
class ServedState:
    scratch: Path
    wrk: str | None
    generator_note: str  # which generator, and why (recorded in every case's extra)
    backend: DelayServer | None  # aiohttp-urlopen's other side (None: that case is not run)


class ServedUnwrapped(Workload[ServedState]):
    """The workload; keyword arguments override a profile's parameters (tests)."""

    name = "served_unwrapped"
    number = 13
    title = "A served handler that blocks unwrapped"
    claim = (
        "With migrate_steps=True, a server whose async def handler blocks in a C call "
        "(FastAPI under uvicorn calling time.sleep(0.05) at 64 connections; aiohttp "
        "calling urllib's urlopen of a 50 ms backend at 32) serves >= 10x the requests "
        "stock asyncio does"
    )
    paper = "issue 19"
    needs = frozenset({SERVED})
    rotate = True
    # Not in --quick: four servers, two of them stalled at 20 req/s with a backlog of
    # seconds to drain, take over a minute for its three rounds; named with --workloads
    # it runs there too.
    profiles: frozenset[Profile] = frozenset({"smoke", "full"})
    metrics = FastAPIServe.metrics  # the same served-request measures
    headline = (
        ("fastapi-sleep", "rps"),
        ("fastapi-sleep", "p99_ms"),
        ("aiohttp-urlopen", "rps"),
        ("aiohttp-urlopen", "p99_ms"),
    )

    def __init__(
        self,
        *,
        seconds: float | None = None,
        warmup_s: float | None = None,
        cases: Sequence[str] | None = None,
        generator: str | None = None,
    ) -> None:
        self._overrides = case_overrides(
            CASE_NAMES, seconds=seconds, warmup_s=warmup_s, cases=cases, generator=generator
        )

    def params(self, profile: Profile) -> dict[str, Any]:
        # smoke: 8 connections, 10 ms steps: a stalled server's backlog is 80 ms and a
        # case about a second, most of it the server's start. quick (when named) and full:
        # the 50 ms at 64 and 32 connections; 3 s windows (60 requests of a
        # stalled server), 5 s in full.
        smoke = profile == "smoke"
        params: dict[str, Any] = {
            "seconds": {"smoke": 0.3, "quick": 3.0, "full": 5.0}[profile],
            "warmup_s": {"smoke": 0.0, "quick": 1.0, "full": 1.0}[profile],
            "cases": list(CASE_NAMES),
            "block_s": 0.01 if smoke else 0.05,
            "fastapi_conns": 8 if smoke else 64,
            "aiohttp_conns": 8 if smoke else 32,
            # smoke: the stdlib generator, whose window can be a fraction of a second
            "generator": "http_load" if smoke else "auto",
        }
        return {**params, **self._overrides}

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # Each round's servers are new and warm up per case (warmup_s): the runner's
        # warm-up only has to start one server and load it once (imports, page cache).
        seconds = min(1.0, float(params["seconds"]))
        return {**params, "cases": [params["cases"][0]], "warmup_s": 0.0, "seconds": seconds}

    def missing(self) -> str | None:
        why = FastAPIServe().missing()  # fastapi, and a uvicorn whose --loop takes a factory
        if why is None and package_version("aiohttp") is None:
            why = "aiohttp is not installed (pip install 'sysletloop[bench]')"
        return why

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "targets": targets()}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> ServedState:
        where = Path(scratch) / "served_unwrapped"
        where.mkdir(exist_ok=True)
        wrk, note = choose_generator(params["generator"], install=False)
        backend = DelayServer(where) if "aiohttp-urlopen" in params["cases"] else None
        return ServedState(where, wrk, note, backend)

    def cleanup(self, state: ServedState) -> None:
        if state.backend is not None:
            state.backend.finish()

    def measure(self, contender: Contender, state: ServedState, params: Mapping[str, Any]) -> Cases:
        loop = contender.uvicorn_loop
        if loop is None:
            raise TypeError(f"{contender.name} has no loop to serve on")
        by_name = {c.name: c for c in CASES}
        cases: Cases = {}
        for name in params["cases"]:
            case = by_name[name]
            log = state.scratch / f"{case.server}-{contender.name}.log"
            logged = len(read_text(log))  # earlier rounds' lines: not this server's
            server: SlowGets | AiohttpServer
            if case.server == "uvicorn":
                server = SlowGets(contender.name, loop, state.scratch, log)
            else:
                assert state.backend is not None  # started by prepare for this case
                backend = f"http://127.0.0.1:{state.backend.port}"
                server = AiohttpServer(contender.name, loop, backend, log)
            try:
                cases[name] = measure_case(server, case, state.wrk, params, state.generator_note)
            finally:
                server.stop()
            text = read_text(log)[logged:]
            if "Traceback" in text:
                raise RuntimeError(f"{contender.name}: the server logged an error: {text[-2000:]}")
            cases[name].extra[FAULTS] = loop_faults(text)
        return cases


def targets() -> dict[str, Any]:
    """The issue's targets, as recorded in results.json (``workloads.served_unwrapped``)."""
    return {
        "contender": SUBJECT,
        "cases": {c.name: {"rps_ratio": c.target, "lag_p99_ms": None} for c in CASES},
    }


def verdicts(w: Mapping[str, Any]) -> list[Verdict]:
    """Per case of a ``served_unwrapped`` results entry: did the subject meet its target?"""
    return judge(w, targets())
