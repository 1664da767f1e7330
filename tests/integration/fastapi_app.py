"""A FastAPI app (with a mounted Starlette app) whose thread work all goes through
``anyio.to_thread.run_sync``: the app the FastAPI/Starlette tests drive, in process through
``httpx.ASGITransport`` and out of process under uvicorn
(``uvicorn tests.integration.fastapi_app:app --loop sysletloop:new_anyio_event_loop``).

``FILES_DIR`` (environment variable ``SYSLETLOOP_TEST_FILES``) holds the files that
``/file`` and ``/static`` serve; :func:`make_files` writes them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, StreamingResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles


def _files_dir() -> Path:
    """The served files' directory: the test's (``SYSLETLOOP_TEST_FILES``, for a server
    process), else one of this process's own, removed when the process exits."""
    given = os.environ.get("SYSLETLOOP_TEST_FILES")
    if given:
        return Path(given)
    made = tempfile.mkdtemp(prefix="sl-app-")
    atexit.register(shutil.rmtree, made, ignore_errors=True)
    return Path(made)


FILES_DIR = _files_dir()
FILE_BYTES = bytes(range(256)) * 256  # 64 KiB


def make_files(directory: Path = FILES_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data.bin").write_bytes(FILE_BYTES)
    (directory / "hello.txt").write_text("hello, static\n")
    return directory


make_files()

# What happened on the server side, for the tests to read (/events).
events: list[str] = []
events_lock = threading.Lock()
seen_ids: list[int] = []
produced: dict[int, int] = {}  # /stream?chunks=N: how many chunks its generator made


def note(event: str) -> None:
    with events_lock:
        events.append(event)


def loop_info() -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    options = getattr(loop, "syslet_options", None)
    return {
        "loop": type(loop).__name__,
        "route_anyio": bool(options and options.route_anyio),
        "pid": os.getpid(),
        "loop_thread": threading.get_ident(),
    }


app = FastAPI()


@app.get("/info")
async def info() -> dict[str, Any]:
    return loop_info()


@app.get("/async-json")
async def async_json() -> dict[str, Any]:
    return {"ok": True, "n": 1}


@app.get("/fast")
def fast() -> dict[str, Any]:
    return {"thread": threading.get_ident(), "name": threading.current_thread().name}


@app.get("/sleep")
def sleep(s: float = 0.05, i: int = 0) -> dict[str, Any]:
    time.sleep(s)
    with events_lock:
        seen_ids.append(i)
    return {"i": i, "thread": threading.get_ident()}


@app.get("/raise")
def boom() -> None:
    raise ValueError("raised in a def endpoint")


@app.get("/http-error")
def http_error() -> None:
    raise HTTPException(status_code=418, detail="teapot")


def resource() -> Iterator[str]:
    note("dependency enter")
    try:
        yield "resource"
    finally:
        note("dependency exit")


@app.get("/dep")
def with_dependency(value: str = Depends(resource)) -> dict[str, str]:
    note("endpoint")
    return {"value": value}


@app.get("/stream")
def stream(chunks: int = 5, delay: float = 0.0) -> StreamingResponse:
    def generate() -> Iterator[bytes]:
        try:
            for i in range(chunks):
                if delay:
                    time.sleep(delay)
                with events_lock:
                    produced[chunks] = i + 1
                yield f"chunk {i}\n".encode()
        finally:
            note(f"stream closed after {chunks}")

    return StreamingResponse(generate(), media_type="text/plain")


@app.get("/file")
def file() -> FileResponse:
    return FileResponse(FILES_DIR / "data.bin")


@app.get("/background")
def background(tasks: BackgroundTasks, tag: str = "x") -> dict[str, str]:
    def later() -> None:
        time.sleep(0.01)
        note(f"background {tag}")

    tasks.add_task(later)
    return {"queued": tag}


async def loop_side(x: int) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"x": x, "loop_thread": threading.get_ident()}


@app.get("/from-thread")
def from_thread(x: int = 1) -> dict[str, Any]:
    got = anyio.from_thread.run(loop_side, x)
    tick = anyio.from_thread.run_sync(time.monotonic)
    return {"got": got, "caller": threading.get_ident(), "tick": tick}


@app.get("/events")
async def get_events() -> dict[str, Any]:
    with events_lock:
        return {"events": list(events), "seen_ids": list(seen_ids), "produced": dict(produced)}


@app.post("/reset")
async def reset() -> dict[str, bool]:
    with events_lock:
        events.clear()
        seen_ids.clear()
        produced.clear()
    return {"ok": True}


@app.get("/sqlite")
def sqlite_row(key: int = 1) -> dict[str, Any]:
    # One connection per request: a connection must stay on the thread that opened it,
    # and which thread runs a routed call depends on timing (docs/migrating.rst).
    with contextlib.closing(sqlite3.connect(FILES_DIR / "rows.db")) as db, db:
        db.execute("create table if not exists t (k integer primary key, v text)")
        db.execute("insert or ignore into t values (?, ?)", (key, f"value {key}"))
        row = db.execute("select v from t where k = ?", (key,)).fetchone()
    return {"v": row[0]}


# A plain Starlette app beside it: run_in_threadpool and StaticFiles.


async def starlette_threadpool(request: Request) -> JSONResponse:
    n = int(request.query_params.get("n", "3"))
    total = await run_in_threadpool(sum, range(n))
    return JSONResponse({"sum": total, "thread": await run_in_threadpool(threading.get_ident)})


starlette_app = Starlette(routes=[Route("/threadpool", starlette_threadpool)])
app.mount("/starlette", starlette_app)
app.mount("/static", StaticFiles(directory=FILES_DIR), name="static")
