"""The other side of the ``unwrapped`` workload's ``recv`` case and of the
``served_unwrapped`` workload's ``aiohttp-urlopen`` case: a TCP server that answers each
request after the delay the request names, so that a client's plain blocking
``socket.recv`` (or ``urllib.request.urlopen``) waits that long in the kernel.

``python -m benchmarks.delay_server --port-file F`` listens on 127.0.0.1 (an ephemeral
port, written to ``F`` once it listens) until SIGTERM. A request is one line, the delay in
seconds as ASCII (``b"0.05\\n"``); its answer, :data:`ANSWER`, is sent that long after the
request arrived. A connection may carry several requests, one after another.

It speaks just enough HTTP/1.1 for ``urlopen``: a connection whose first line is
``GET /SECONDS HTTP/1.1`` gets, that long after its head arrived, a 200 whose body is
:data:`ANSWER`, and is closed (``Connection: close``, as ``urlopen`` asks); a path that
is not a delay gets a 404.

It runs on stock asyncio in a process of its own, started once per run and shared by
every contender and round: never on the loop under test, and never competing with it for
the GIL. Each request waits on its own timer, so twenty at once are all answered after the
delay, not one after another.

Threads: one, the loop's. The SIGTERM handler only schedules the stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

ANSWER = b"ok\n"
MAX_DELAY = 10.0  # seconds: a longer request is refused (the connection is closed)
HTTP_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(ANSWER), ANSWER)
)
HTTP_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def parse_delay(line: bytes) -> float | None:
    """The delay a request line asks for, or None for a line that is not one."""
    try:
        delay = float(line.strip())
    except ValueError:
        return None
    return delay if 0.0 <= delay <= MAX_DELAY else None


def ask(port: int, seconds: float) -> bytes:
    """One request, the way unwrapped code makes it: a plain blocking socket
    (``socket.create_connection``, no timeout), ``sendall``, then ``recv`` until the answer
    is whole; blocks for about ``seconds``. ``socket`` is looked up at each call, so in a
    monkey-patched interpreter (gevent) the patched one is used."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"%.6f\n" % seconds)
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(64)
            if not chunk:
                raise ConnectionError("the delay server closed the connection unanswered")
            got += chunk
    return got


def http_delay(request_line: bytes) -> float | None:
    """The delay an HTTP request line (``GET /0.05 HTTP/1.1``) asks for, or None."""
    parts = request_line.split()
    if len(parts) != 3 or parts[0] != b"GET" or not parts[1].startswith(b"/"):
        return None
    return parse_delay(parts[1][1:])


async def answer_http(
    request_line: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Read the rest of the head, wait the delay, answer; the caller closes."""
    while await reader.readline() not in (b"\r\n", b"\n", b""):
        pass  # the headers: the answer depends on none of them
    delay = http_delay(request_line)
    if delay is None:
        writer.write(HTTP_NOT_FOUND)
    else:
        await asyncio.sleep(delay)
        writer.write(HTTP_OK)
    await writer.drain()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            if line.startswith(b"GET "):
                await answer_http(line, reader, writer)
                break
            delay = parse_delay(line)
            if delay is None:
                break
            await asyncio.sleep(delay)
            writer.write(ANSWER)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def serve(port_file: Path) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
    port = int(server.sockets[0].getsockname()[1])
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(port))
    tmp.replace(port_file)  # whole or absent: the harness polls for it
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.delay_server")
    p.add_argument("--port-file", type=Path, required=True)
    args = p.parse_args(argv)
    asyncio.run(serve(args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
