"""The aiohttp server of the ``served_unwrapped`` workload's ``aiohttp-urlopen`` case: an
``async def`` handler that calls ``urllib.request.urlopen`` straight in its body, served by
aiohttp's web server on the loop under test.

``python -m benchmarks.aiohttp_app --loop SPEC --port P --backend URL`` serves on
127.0.0.1:P until SIGTERM. ``SPEC`` is spelled as uvicorn's ``--loop`` is (the
contender's ``uvicorn_loop``): ``asyncio``, ``uvloop`` or ``module:factory``, so one
contender names one loop for both of the workload's servers.

Endpoints:

``/urlopen?seconds=S``
    ``urlopen(URL/S)``: a request to :mod:`benchmarks.delay_server` (stock asyncio, its
    own process), which answers S seconds later. Unwrapped: the handler's task step
    blocks the loop's thread in the socket's ``recv`` for S, on every loop unless it moves
    the step off it (``migrate_steps``).
``/_stats``, ``/_lag``, ``/_lag/reset``
    The loop's own counters (``syslet_stats()``, ``{}`` for a loop without them) and a
    1 ms timer's lateness, as :mod:`benchmarks.fastapi_app` serves them (both from
    :mod:`benchmarks.lag_ticker`).

Threads: the loop's (with ``migrate_steps``, whichever thread has it; the handler's
blocked step finishes on the thread it blocked on, once it has the loop back). The
SIGTERM handler runs in the main thread and only schedules the stop with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import signal
import sys
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, cast

from aiohttp import web

from benchmarks.lag_ticker import Lag

BACKEND = web.AppKey("backend", str)  # the delay server's base URL

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(spec: str) -> LoopFactory:
    """The loop factory uvicorn's ``--loop SPEC`` would use: ``asyncio`` (the selector
    loop), ``uvloop``, or ``module:attr``, a callable that returns a new loop."""
    if spec == "asyncio":
        return asyncio.SelectorEventLoop
    if spec == "uvloop":
        return cast(LoopFactory, importlib.import_module("uvloop").new_event_loop)
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"loop {spec!r}: asyncio, uvloop or module:factory")
    return cast(LoopFactory, getattr(importlib.import_module(module), attr))


lag = Lag()


async def urlopen_handler(request: web.Request) -> web.Response:
    seconds = float(request.query.get("seconds", "0.05"))
    url = f"{request.app[BACKEND]}/{seconds}"
    with urllib.request.urlopen(url, timeout=30) as reply:  # unwrapped: blocks the step
        body = reply.read()
    return web.json_response({"backend": body.decode().strip()})


async def stats_handler(request: web.Request) -> web.Response:
    stats = getattr(asyncio.get_running_loop(), "syslet_stats", None)
    found: dict[str, Any] = dataclasses.asdict(stats()) if stats is not None else {}
    return web.json_response(found)


async def lag_handler(request: web.Request) -> web.Response:
    return web.json_response(lag.report())


async def lag_reset_handler(request: web.Request) -> web.Response:
    lag.samples = []
    return web.json_response({"ok": True})


def make_app(backend: str) -> web.Application:
    app = web.Application()
    app[BACKEND] = backend.rstrip("/")
    app.router.add_get("/urlopen", urlopen_handler)
    app.router.add_get("/_stats", stats_handler)
    app.router.add_get("/_lag", lag_handler)
    app.router.add_post("/_lag/reset", lag_reset_handler)
    return app


async def serve(port: int, backend: str) -> None:
    """Serve until SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signal.signal(signal.SIGTERM, lambda *_: loop.call_soon_threadsafe(stop.set))
    runner = web.AppRunner(make_app(backend), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    ticker = asyncio.create_task(lag.run())
    try:
        await stop.wait()
    finally:
        ticker.cancel()
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.aiohttp_app")
    parser.add_argument("--loop", required=True, help="asyncio, uvloop or module:factory")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", required=True, help="the delay server's base URL")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(serve(args.port, args.backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
