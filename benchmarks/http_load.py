"""A small HTTP/1.1 load generator, for when wrk is not installed.

``python -m benchmarks.http_load URL --conns N --seconds S`` keeps ``N`` keep-alive
connections busy with ``GET`` requests for ``S`` seconds (closed loop: each connection
sends its next request when the previous answer is in) and prints one JSON object:
requests answered, requests per second, latency p50/p99 in ms, errors. Stdlib asyncio
only. It costs far more CPU per request than wrk, so on a small machine it caps the
request rate it can measure: the harness says which generator it used.

``--rate R`` makes it an open loop at a constant offered rate, as wrk2 does: request ``i``
is due at ``start + i / R`` whether or not earlier answers are in, goes out on the first of
the ``N`` connections that is free, and its latency counts from when it was due, not from
when it was sent, so a server that falls behind is charged for the wait (no coordinated
omission). Requests still unanswered 10 s after the window count as errors. The output
adds ``offered_rps`` and ``late_ms_p99``, how late the generator itself sent (its own
lag: a number near the latencies means the generator, not the server, fell behind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


async def _connection(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float]
) -> int:
    errors = 0
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            if not await _exchange(reader, writer, request):
                errors += 1
            latencies.append(time.perf_counter() - t0)
    finally:
        writer.close()
    return errors


def _request(url: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    return host, port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bool:
    """One request and its whole answer on a keep-alive connection; True if a 200."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    chunked = False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200")


def _at(latencies: list[float], q: float) -> float:
    if not latencies:
        return 0.0
    return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3


async def run(url: str, conns: int, seconds: float) -> dict[str, float]:
    host, port, request = _request(url)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    outcomes = await asyncio.gather(
        *(_connection(host, port, request, deadline, latencies) for _ in range(conns)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - start
    errors = sum(o if isinstance(o, int) else 1 for o in outcomes)
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": _at(latencies, 0.50),
        "p99_ms": _at(latencies, 0.99),
        "errors": errors,
    }


GRACE = 10.0  # seconds after the window for the last answers of an open-loop run


async def run_at_rate(url: str, conns: int, seconds: float, rate: float) -> dict[str, float]:
    """Open loop: ``rate`` requests per second for ``seconds``, on up to ``conns``
    connections, latency from each request's due time (the module's docstring)."""
    if not rate > 0:
        raise ValueError(f"rate={rate!r}: requests per second, more than 0")
    host, port, request = _request(url)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    opened = [await asyncio.open_connection(host, port) for _ in range(conns)]
    for pair in opened:
        idle.put_nowait(pair)
    latencies: list[float] = []
    late: list[float] = []
    errors = 0
    last = 0.0  # when the last answer came in

    async def one(due: float) -> None:
        nonlocal errors, last
        reader, writer = await idle.get()
        try:
            ok = await _exchange(reader, writer, request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
        else:
            errors += not ok
            last = time.perf_counter()
            latencies.append(last - due)
        idle.put_nowait((reader, writer))

    start = time.perf_counter()
    total = int(seconds * rate)
    tasks = []
    for i in range(total):
        due = start + i / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        late.append(max(0.0, time.perf_counter() - due))
        tasks.append(asyncio.create_task(one(due)))
    _, pending = await asyncio.wait(tasks, timeout=GRACE) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    elapsed = max(seconds, last - start)
    for _, writer in opened:
        writer.close()
    latencies.sort()
    late.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "offered_rps": rate,
        "p50_ms": _at(latencies, 0.50),
        "p99_ms": _at(latencies, 0.99),
        "late_ms_p99": _at(late, 0.99),
        "errors": errors + len(pending),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, help="open loop: requests per second")
    args = parser.parse_args()
    if args.rate is None:
        print(json.dumps(asyncio.run(run(args.url, args.conns, args.seconds))))
    else:
        print(json.dumps(asyncio.run(run_at_rate(args.url, args.conns, args.seconds, args.rate))))


if __name__ == "__main__":
    main()
