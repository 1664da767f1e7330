"""The FastAPI app ``benchmarks.fastapi_serve`` puts under load, one endpoint per case
(``/async-sleep`` is the ``served_unwrapped`` workload's).

Served by a real uvicorn (``uvicorn benchmarks.fastapi_app:app --loop ...``). Besides the
endpoints, a *ticker* task sleeps 1 ms in a loop and records how late each wake-up was:
the loop's lag while the load runs. ``/_lag/reset`` starts a window, ``/_lag`` reports
its p50/p99/max in milliseconds; with ``SYSLETLOOP_BENCH_LAG_DIR`` set, each process also
writes its samples and its loop's counters there when it shuts down (several workers behind
one socket: :mod:`benchmarks.lag_ticker`). ``SYSLETLOOP_BENCH_DIR`` holds the 64 KiB file
and the SQLite database (``prepare`` writes them).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse

from benchmarks.lag_ticker import Lag

DATA_DIR = Path(os.environ.get("SYSLETLOOP_BENCH_DIR", "/var/tmp/sysletloop-fastapi"))
FILE = DATA_DIR / "64k.bin"
DATABASE = DATA_DIR / "rows.db"
ROWS = 10_000


def prepare(directory: Path = DATA_DIR) -> None:
    """Write the 64 KiB file and a 10,000-row SQLite database under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "64k.bin").write_bytes(os.urandom(64 * 1024))
    path = directory / "rows.db"
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("create table items (id integer primary key, name text, price real)")
        db.executemany(
            "insert into items values (?, ?, ?)",
            ((i, f"item {i}", i * 0.25) for i in range(ROWS)),
        )


lag = Lag()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(lag.run())
    yield
    task.cancel()
    if lag_dir := os.environ.get("SYSLETLOOP_BENCH_LAG_DIR"):
        lag.dump(Path(lag_dir), _loop_stats(), dict(served))


app = FastAPI(lifespan=lifespan)

# Requests this process served, by path: with several workers behind one socket, how the
# load was split between them (written with the lag samples at shutdown).
served: collections.Counter[str] = collections.Counter()


class CountRequests:
    """A pure ASGI middleware (no BaseHTTPMiddleware task per request): counts by path."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            served[scope["path"]] += 1
        await self.app(scope, receive, send)


app.add_middleware(CountRequests)


@app.get("/json")
def json_def() -> dict[str, Any]:
    return {"id": 1, "name": "widget", "tags": ["a", "b"], "price": 9.5}


@app.get("/async-json")
async def json_async() -> dict[str, Any]:
    return {"id": 1, "name": "widget", "tags": ["a", "b"], "price": 9.5}


@app.get("/sleep")
def sleep_def() -> dict[str, bool]:
    time.sleep(0.05)
    return {"slept": True}


@app.get("/async-sleep")
async def sleep_async(seconds: float = 0.05) -> dict[str, bool]:
    # Unwrapped (the served_unwrapped workload, issue 19): the task's step blocks the
    # loop's thread for ``seconds``, on every loop unless it moves the step off it.
    time.sleep(seconds)
    return {"slept": True}


@app.get("/sqlite")
def sqlite_def() -> dict[str, Any]:
    # A connection per request, closed at its end: which thread runs a def endpoint is
    # not fixed (anyio's pool, or a syslet loop's thread of the moment), and a sqlite3
    # connection belongs to the thread that opened it.
    with contextlib.closing(sqlite3.connect(DATABASE)) as db:
        row = db.execute(
            "select id, name, price from items where id = ?", (random.randrange(ROWS),)
        ).fetchone()
    return {"id": row[0], "name": row[1], "price": row[2]}


@app.get("/file")
def file_def() -> FileResponse:
    return FileResponse(FILE)


def _loop_stats() -> dict[str, Any]:
    stats = getattr(asyncio.get_running_loop(), "syslet_stats", None)
    return dataclasses.asdict(stats()) if stats is not None else {}


@app.get("/_stats")
async def loop_stats() -> dict[str, Any]:
    return _loop_stats()


@app.post("/_lag/reset")
async def lag_reset() -> dict[str, bool]:
    lag.samples = []
    return {"ok": True}


@app.get("/_lag")
async def lag_report() -> dict[str, float]:
    return lag.report()
