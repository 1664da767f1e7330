"""A small HTTP/1.1 load generator, for when wrk is not installed.

``python -m benchmarks.http_load URL --conns N --seconds S`` keeps ``N`` keep-alive
connections busy with ``GET`` requests for ``S`` seconds (closed loop: each connection
sends its next request when the previous answer is in) and prints one JSON object:
requests answered, requests per second, latency p50/p99 in ms, errors. Stdlib asyncio
only. It costs far more CPU per request than wrk, so on a small machine it caps the
request rate it can measure: the harness says which generator it used.
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
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            latencies.append(time.perf_counter() - t0)
    finally:
        writer.close()
    return errors


async def run(url: str, conns: int, seconds: float) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
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

    def at(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.conns, args.seconds))))


if __name__ == "__main__":
    main()
