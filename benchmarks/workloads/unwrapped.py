"""Workload 12, blocking calls written straight in an ``async def`` (issue 19: "unwrapped").

Code that calls ``time.sleep`` or a blocking ``socket.recv`` in a coroutine's body, with no
``to_thread`` around it, holds an asyncio loop: the call runs inside the task's step, on
the loop's thread, and no other task, timer or callback runs until it returns. sysletloop's
option ``migrate_steps=True`` is meant to lift that: a step still running in a C call past
the block threshold leaves its thread to finish the call, and the loop goes on on another
(``syslet_stats().claimed_steps`` counts those steps). gevent reaches the same end another
way: monkey patching makes ``time.sleep`` and socket calls yield to its hub.

====== ====================================================== ============================
case   each of ``tasks`` tasks, all started together (gather) target (``sysletloop-steps``
                                                              against stock asyncio)
====== ====================================================== ============================
sleep  ``time.sleep(seconds)``                                wall <= 0.15x,
                                                              lag p99 <= 5 ms
recv   connects to :mod:`benchmarks.delay_server`, sends one  wall <= 0.15x,
       request and ``recv``-s the answer on the plain         lag p99 <= 5 ms
       blocking socket; the answer comes ``seconds`` later
====== ====================================================== ============================

Beside them a task sleeps 1 ms in a loop and records how late each tick was (the
``timer_lag`` workload's :class:`~benchmarks.workloads.base.Ticker`). The quick and full
profiles run the issue's numbers, 20 tasks of 50 ms: a loop that stalls takes 1 s per
case, one that does not about 50 ms. A ``--quick`` run leaves the workload out unless it
is named (``--workloads unwrapped``): its stalled loops alone take about 28 s there.

Glossary
--------
unwrapped call
    A blocking call made in a coroutine's own body, not handed to ``to_thread``,
    ``run_in_executor`` or ``sysletloop.call``: the loop never sees it, only its effect,
    a task step that does not return.
stall
    The time the loop's thread spends inside such a step; the ticker's lateness measures
    it (``lag_p99_ms``, ``lag_max_ms``).
delay server
    The other side of ``recv``: a process on stock asyncio, started once per run by
    ``prepare`` and shared by every contender and round; never on the loop under test.

Contenders: those with the ``unwrapped`` capability. Stock asyncio (the
``asyncio-to_thread`` row names its loop: nothing here goes through ``to_thread``), uvloop
and rloop; sysletloop with its default options, which stalls as stock does (its watchdog
watches the calls handed to it, not task steps); ``sysletloop-steps``, the same loop with
``migrate_steps=True``, missing with the loop's error where creating it raises (a
sysletloop without the option: TypeError; Python 3.11, without ``sys.monitoring``:
ValueError); and ``gevent``, monkey-patched, in a child process per case
(:mod:`benchmarks.gevent_unwrapped`) so that patching never reaches the harness.

Per case a fresh loop (or child). The runner pairs the rounds, rotates the contenders'
order every round (``rotate``) and takes each contender's ratio to stock asyncio's round
by round; the targets are judged on the median of those ratios
(:mod:`benchmarks.targets`).

Threads: the loops run in the harness's main thread (``sysletloop-steps`` also on the
threads its loop moves to); the delay server and gevent are child processes.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.contenders.base import UNWRAPPED, Api, Contender
from benchmarks.contenders.gevent import GeventContender
from benchmarks.delay_server import ask
from benchmarks.loadgen import ServerProcess, read_text
from benchmarks.stats import latency_summary, thin
from benchmarks.workloads.base import CaseResult, Cases, Metric, Profile, Ticker, Workload, run_main

SUBJECT = "sysletloop-steps"  # the contender the targets are about
CLAIMED = "claimed_steps"  # the loop's counter of steps moved off its thread
SETTLE = 0.005  # seconds of ticks before the tasks start and after they end
SAMPLES_KEPT = 1500  # lag-over-time points stored per case


@dataclass(frozen=True)
class Case:
    name: str
    wall_ratio: float  # SUBJECT's wall time over stock asyncio's, at most (median of ratios)
    lag_p99_ms: float  # SUBJECT's ticker lag p99, at most (median of the rounds)


CASES = (Case("sleep", 0.15, 5.0), Case("recv", 0.15, 5.0))
CASE_NAMES = tuple(c.name for c in CASES)


# ---------------------------------------------------------------------------------------
# The delay server
# ---------------------------------------------------------------------------------------


class DelayServer(ServerProcess):
    """``python -m benchmarks.delay_server`` in a child process, listening once its port
    file is there and a connection is accepted."""

    def __init__(self, scratch: Path) -> None:
        self.port_file = scratch / "delay-server.port"
        self.port_file.unlink(missing_ok=True)
        self.port = 0
        argv = [sys.executable, "-m", "benchmarks.delay_server", f"--port-file={self.port_file}"]
        super().__init__("delay server", argv, scratch / "delay-server.log", self._probe)

    def _probe(self) -> None:
        self.port = int(self.port_file.read_text())  # FileNotFoundError: not yet
        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()

    def finish(self) -> None:
        """Stop the server; a traceback in its log is an error."""
        self.stop()
        if "Traceback" in (text := read_text(self.log)):
            raise RuntimeError(f"the delay server logged an error: {text[-2000:]}")


# ---------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------


def blocking_step(case: str, seconds: float, port: int | None) -> Callable[[], Awaitable[None]]:
    """The coroutine function each task runs: a blocking call straight in its body."""
    if case == "sleep":

        async def sleep_step() -> None:
            time.sleep(seconds)  # unwrapped: the task's step blocks for ``seconds``

        return sleep_step
    if port is None:
        raise ValueError("the recv case needs the delay server's port")
    where = port

    async def recv_step() -> None:
        ask(where, seconds)  # unwrapped: connect, send, and a blocking recv

    return recv_step


def case_result(
    wall: float, times: Sequence[float], lateness: Sequence[float], extra: dict[str, Any]
) -> CaseResult:
    """The metrics of one case from the ticker's record (seconds), alike for every
    contender (gevent's child sends its record, the loops keep theirs)."""
    lag = latency_summary(lateness)
    return CaseResult(
        metrics={
            "wall_s": wall,
            "lag_p50_ms": lag["p50"] * 1e3,
            "lag_p99_ms": lag["p99"] * 1e3,
            "lag_max_ms": lag["max"] * 1e3,
        },
        samples={
            "t_s": thin(list(times), SAMPLES_KEPT),
            "lag_ms": thin([v * 1e3 for v in lateness], SAMPLES_KEPT),
        },
        extra={"ticks": len(lateness), **extra},
    )


def loop_case(
    contender: Contender, case: str, tasks: int, seconds: float, period: float, port: int | None
) -> CaseResult:
    """One case on an asyncio loop, in a fresh loop of the contender."""
    step = blocking_step(case, seconds, port)

    async def main(api: Api) -> CaseResult:
        ticker = Ticker(api, period)
        claimed_before = api.counter(CLAIMED)

        async def blockers() -> float:
            await api.sleep(SETTLE)
            t0 = api.clock()
            await api.gather(*(step for _ in range(tasks)))
            wall = api.clock() - t0
            await api.sleep(SETTLE)
            ticker.stop = True
            return wall

        _, wall = await api.pair(ticker.run, blockers)
        claimed = api.counter(CLAIMED)
        if claimed is not None and claimed_before is not None:
            claimed -= claimed_before
        extra = {"loop_stats_end": api.stats(), CLAIMED: claimed}
        return case_result(wall, ticker.times, ticker.lateness, extra)

    # Generous: a loop that stalls runs the tasks one after another.
    return run_main(contender, main, timeout=60 + 2 * tasks * seconds)


def gevent_case(
    contender: GeventContender,
    case: str,
    tasks: int,
    seconds: float,
    period: float,
    port: int | None,
) -> CaseResult:
    out = contender.unwrapped(case, tasks, seconds, period, port if case == "recv" else None)
    if not out.get("patched"):
        raise RuntimeError("gevent's child did not patch time and socket")
    extra = {"loop_stats_end": None, "gevent": out.get("gevent")}
    return case_result(float(out["wall_s"]), out["times"], out["lateness"], extra)


# ---------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------


@dataclass
class UnwrappedState:
    server: DelayServer | None  # the recv case's other side (None: that case is not run)


class Unwrapped(Workload[UnwrappedState]):
    """The workload; keyword arguments override a profile's parameters (tests)."""

    name = "unwrapped"
    number = 12
    title = "Blocking calls written straight in a coroutine"
    claim = (
        "With migrate_steps=True, a task step that blocks in a C call (time.sleep, "
        "socket.recv, not wrapped in to_thread) no longer stalls the loop: 20 such tasks "
        "of 50 ms take at most 0.15x stock asyncio's wall time, and a 1 ms timer's lag "
        "p99 stays at most 5 ms"
    )
    paper = "issue 19"
    needs = frozenset({UNWRAPPED})
    rotate = True
    # Not in --quick: four loops that stall take 1 s per case, about 28 s for its three
    # rounds on 2 shared vCPUs, over the 20 s a quick run can spare for it; named with
    # --workloads it runs there too, at the numbers.
    profiles: frozenset[Profile] = frozenset({"smoke", "full"})
    metrics = (
        Metric("wall_s", "s", "lower", "from starting the tasks to the last one's end"),
        Metric("lag_p50_ms", "ms", "lower", "median lateness of a 1 ms timer"),
        Metric("lag_p99_ms", "ms", "lower", "99th percentile lateness of a 1 ms timer"),
        Metric("lag_max_ms", "ms", "lower", "worst lateness"),
    )
    headline = (
        ("sleep", "wall_s"),
        ("sleep", "lag_p99_ms"),
        ("recv", "wall_s"),
        ("recv", "lag_p99_ms"),
    )

    def __init__(
        self,
        *,
        tasks: int | None = None,
        seconds: float | None = None,
        cases: Sequence[str] | None = None,
    ) -> None:
        unknown = set(cases or ()) - set(CASE_NAMES)
        if unknown:
            raise ValueError(f"unknown case(s): {', '.join(sorted(unknown))}")
        self._overrides: dict[str, Any] = {
            k: v
            for k, v in {
                "tasks": tasks,
                "seconds": seconds,
                "cases": list(cases) if cases else None,
            }.items()
            if v is not None
        }

    def params(self, profile: Profile) -> dict[str, Any]:
        # smoke: 4 tasks of 10 ms (a stalled case takes 40 ms); quick and full: the issue's
        # 20 of 50 ms, where a stalled case takes 1 s (4 such loops: about 8 s a round).
        smoke = profile == "smoke"
        params: dict[str, Any] = {
            "cases": list(CASE_NAMES),
            "tasks": 4 if smoke else 20,
            "seconds": 0.01 if smoke else 0.05,
            "period": 0.001,
        }
        return {**params, **self._overrides}

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # Imports, the first loop and the first connection: two short tasks per case.
        return {**params, "tasks": 2, "seconds": 0.01}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "targets": targets()}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> UnwrappedState:
        if "recv" not in params["cases"]:
            return UnwrappedState(None)
        where = Path(scratch) / "unwrapped"
        where.mkdir(exist_ok=True)
        return UnwrappedState(DelayServer(where))

    def cleanup(self, state: UnwrappedState) -> None:
        if state.server is not None:
            state.server.finish()

    def measure(
        self, contender: Contender, state: UnwrappedState, params: Mapping[str, Any]
    ) -> Cases:
        tasks, seconds = int(params["tasks"]), float(params["seconds"])
        period = float(params["period"])
        port = state.server.port if state.server is not None else None
        cases: Cases = {}
        for case in params["cases"]:
            if isinstance(contender, GeventContender):
                cases[case] = gevent_case(contender, case, tasks, seconds, period, port)
            else:
                cases[case] = loop_case(contender, case, tasks, seconds, period, port)
        return cases


def targets() -> dict[str, Any]:
    """The issue's targets, as recorded in results.json (``workloads.unwrapped``)."""
    return {
        "contender": SUBJECT,
        "cases": {c.name: {"wall_ratio": c.wall_ratio, "lag_p99_ms": c.lag_p99_ms} for c in CASES},
    }
