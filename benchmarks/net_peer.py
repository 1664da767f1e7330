"""The processes of the ``net_throughput`` workload that run on an event loop: a server or
a client on one contender's loop, each in a fresh interpreter.

``python -m benchmarks.net_peer serve --kind echo|http --contender NAME --port-file F
--stats-file S [--port P --reuse-port]`` serves on 127.0.0.1 (an ephemeral port, or
``P``; written to ``F`` once it listens) until SIGTERM, then writes the loop's own
counters to ``S`` (JSON, null for a loop with none). With ``--reuse-port`` (``http``
only) several such processes listen on one port (``SO_REUSEPORT``: the kernel spreads
the connections over them), one loop each: the ``net_throughput`` workload's
``workers``. ``python -m benchmarks.net_peer client --contender NAME --url URL
--conns N --seconds T [--warmup W] --server-pid P`` loads ``URL`` from the contender's
loop and prints one JSON object: requests, req/s, latency p50/p99 (ms), errors, its CPU
share and the server's over the window (1.0: one core) and the loop's counters.

The servers, and why each is what it is:

echo
    The harness's asyncio streams echo server (:meth:`AsyncioApi.serve_echo`, the one
    the ``echo`` workload serves): per message a ``data_received``, a wake-up of the
    handler task through its future, a ``read``, a ``write`` and a ``drain``. It
    exercises the loop's ready queue, futures and tasks, as most asyncio code does.
http
    A :class:`asyncio.Protocol` with a minimal hand-written HTTP/1.1 parser
    (:class:`MinimalHttp`): per request the loop's selector wake-up, one
    ``data_received`` and one ``transport.write`` of a response built once. Chosen over
    uvicorn and a bare ASGI app because uvicorn's per-request Python (httptools'
    callbacks, the ASGI scope, two ``send`` events, the app's coroutine) would make most
    of the cost the server's, not the loop's, and the ``fastapi`` workload already
    measures uvicorn (its ``async-json`` case). Here the loop's transport path, the one
    every protocol library sits on, is nearly all there is.

The client is :func:`benchmarks.http_load.run` (asyncio streams, keep-alive, one request
in flight per connection) run on the contender's loop instead of stock asyncio's.

Threads: one, the loop's. The SIGTERM handler runs in the main thread and only schedules
the stop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, cast

from benchmarks import http_load
from benchmarks.contenders import Api, Contender, all_contenders
from benchmarks.loadgen import cpu_seconds

BODY = b'{"message":"Hello, World!"}'  # the TechEmpower JSON test's body, serialised once
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
RESPONSE = HEAD % len(BODY) + BODY
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 65536  # bytes of an unfinished request head before the connection is refused


class MinimalHttp(asyncio.Protocol):
    """HTTP/1.1 keep-alive, ``GET`` only, no request body: every request head (up to
    ``\\r\\n\\r\\n``) gets :data:`RESPONSE`; pipelined heads get their answers in one write.
    Anything else gets a 400 after the answers to the requests before it, and the
    connection is closed."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's and rloop's TCP transports are not asyncio.Transport subclasses
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        heads = (self.buffer + data).split(b"\r\n\r\n")
        self.buffer = heads.pop()  # the unfinished head after the last blank line
        good = 0
        while good < len(heads) and heads[good].startswith(b"GET "):
            good += 1
        if good == len(heads) and len(self.buffer) <= MAX_HEAD:
            if good:
                self.transport.write(RESPONSE * good)
            return
        # the answers to the requests before the first bad one, then the refusal
        self.transport.write(RESPONSE * good + BAD_REQUEST)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def contender(name: str) -> Contender:
    for c in all_contenders():
        if c.name == name:
            if not c.probe().available:
                raise RuntimeError(f"{name} is missing here: {c.probe().reason}")
            return c
    raise ValueError(f"unknown contender {name!r}")


async def serve(
    api: Api, kind: str, port_file: Path, port: int = 0, reuse_port: bool = False
) -> dict[str, Any] | None:
    """Serve until SIGTERM; the loop's counters then."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signal.signal(signal.SIGTERM, lambda *_: loop.call_soon_threadsafe(stop.set))

    async def until_stopped(port: int) -> None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(port_file)  # whole or absent: the harness polls for it
        await stop.wait()

    if kind == "echo":
        if port or reuse_port:
            raise ValueError("the echo server listens on an ephemeral port of its own")
        await api.serve_echo(until_stopped)
    else:
        server = await loop.create_server(
            MinimalHttp, "127.0.0.1", port, reuse_port=reuse_port or None
        )
        async with server:
            await until_stopped(int(server.sockets[0].getsockname()[1]))
    return api.stats()


async def client(
    api: Api, url: str, conns: int, seconds: float, warmup: float, watch: int
) -> dict[str, Any]:
    """The load, after ``warmup`` seconds of it; with this process's CPU share over the
    window, the server's (``watch``, its pid) and the loop's counters."""
    if warmup > 0:
        await http_load.run(url, conns, warmup)
    cpu0, server0 = time.process_time(), cpu_seconds(watch)
    t0 = time.perf_counter()
    result: dict[str, Any] = dict(await http_load.run(url, conns, seconds))
    window = time.perf_counter() - t0
    result["cpu_share"] = (time.process_time() - cpu0) / window
    result["server_cpu_share"] = (cpu_seconds(watch) - server0) / window
    result["loop_stats"] = api.stats()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--kind", choices=("echo", "http"), required=True)
    s.add_argument("--contender", required=True)
    s.add_argument("--port-file", type=Path, required=True)
    s.add_argument("--stats-file", type=Path, required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--reuse-port", action="store_true")
    c = sub.add_parser("client")
    c.add_argument("--contender", required=True)
    c.add_argument("--url", required=True)
    c.add_argument("--conns", type=int, default=16)
    c.add_argument("--seconds", type=float, default=1.0)
    c.add_argument("--warmup", type=float, default=0.0)
    c.add_argument("--server-pid", type=int, required=True, help="its CPU share is reported")
    args = parser.parse_args(argv)
    on = contender(args.contender)
    if args.role == "serve":
        stats = on.run(
            lambda api: serve(api, args.kind, args.port_file, args.port, args.reuse_port)
        )
        args.stats_file.write_text(json.dumps(stats))
    else:
        result = on.run(
            lambda api: client(
                api, args.url, args.conns, args.seconds, args.warmup, args.server_pid
            )
        )
        json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
