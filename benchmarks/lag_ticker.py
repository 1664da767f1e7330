"""The servers' own timer lag: a task sleeps 1 ms in a loop and records how late each
wake-up was. Shared by the served apps (:mod:`benchmarks.fastapi_app`,
:mod:`benchmarks.aiohttp_app`).

Two ways to read it. Over HTTP, per window: ``/_lag/reset`` starts one, ``/_lag`` reports
it; that reaches one process only. With several worker processes behind one socket
(``uvicorn --workers``, gunicorn), a request cannot choose its worker, so each worker
instead writes every sample, stamped with the wall clock, to ``DIR/lag-PID.json`` when it
shuts down (:meth:`Lag.dump`, when the app is given a directory), and the harness takes
each measured window out of those files afterwards (:func:`window_report`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TICK", "Lag", "read_dumps", "report", "window_report"]

TICK = 0.001  # seconds: the ticker's period


class Lag:
    """Lateness of a 1 ms timer (owner: the loop, whichever thread runs it). ``samples``
    is the current window's; ``stamped`` keeps every (wall clock, lateness) pair."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stamped: list[tuple[float, float]] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            late = max(0.0, loop.time() - before - TICK)
            self.samples.append(late)
            self.stamped.append((time.time(), late))

    def report(self) -> dict[str, float]:
        return report(self.samples)

    def dump(
        self, directory: Path, stats: dict[str, Any] | None, served: dict[str, int] | None = None
    ) -> None:
        """Write this process's samples, the loop's final counters and the requests it
        served by path to ``directory/lag-PID.json`` (at the app's shutdown)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"lag-{os.getpid()}.json"
        doc = {"pid": os.getpid(), "stamped": self.stamped, "stats": stats, "served": served}
        path.write_text(json.dumps(doc))


def report(lateness: Iterable[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds, and the number of ticks."""
    samples = sorted(lateness)
    if not samples:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "ticks": 0}

    def at(q: float) -> float:
        return samples[min(len(samples) - 1, int(q * len(samples)))] * 1e3

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": samples[-1] * 1e3,
            "ticks": len(samples)}  # fmt: skip


def read_dumps(directory: Path) -> list[dict[str, Any]]:
    """Every worker's dump in ``directory`` (what :meth:`Lag.dump` wrote), by pid."""
    dumps = [json.loads(p.read_text()) for p in sorted(directory.glob("lag-*.json"))]
    return sorted(dumps, key=lambda d: int(d["pid"]))


def window_report(dumps: Sequence[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """The lag of the window [start, end) (wall clock): per worker, and over all of them
    (``p99_ms`` is the worst worker's p99: each worker's loop is a loop of its own)."""
    workers = []
    for dump in dumps:
        lateness = [late for at, late in dump["stamped"] if start <= at < end]
        workers.append({"pid": dump["pid"], **report(lateness)})
    if not workers:
        raise ValueError("no worker wrote its lag samples")
    return {
        "p99_ms": max(w["p99_ms"] for w in workers),
        "max_ms": max(w["max_ms"] for w in workers),
        "workers": workers,
    }
