"""``benchmarks.fastapi_serve`` and ``benchmarks.http_load``: the FastAPI-under-uvicorn
comparison.

Functional checks only: wrk's output parsed, ratios paired by round, the stdlib load
generator against a tiny server, and one short real round (one server, one case, one
second, the stdlib generator). The numbers come from ``python -m benchmarks.fastapi_serve``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks import fastapi_serve, http_load

WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:8000/json
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.12ms    4.01ms  60.00ms   80.00%
  Latency Distribution
     50%    8.20ms
     75%   10.00ms
     90%   14.00ms
     99%    1.20s
  10000 requests in 3.00s, 1.50MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:   3333.33
Transfer/sec:    500.00KB
"""


def test_wrk_output_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        stdout = WRK_OUTPUT

    monkeypatch.setattr(fastapi_serve.subprocess, "run", lambda *a, **k: Done())
    result = fastapi_serve.load("/usr/bin/wrk", "http://127.0.0.1:1/json", 32, 3)
    assert result == {"rps": 3333.33, "p50_ms": 8.2, "p99_ms": 1200.0, "errors": 3.0}


def test_ratios_are_taken_within_each_round() -> None:
    def m(rps: float) -> dict[str, float]:
        return {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "lag_p99_ms": 0.5}

    results = {
        "asyncio": {"json": [m(100), m(200), m(100)]},
        "sysletloop-anyio": {"json": [m(150), m(200), m(300)]},
    }
    case = fastapi_serve.Case("json", "/json", 32, 1.25)
    rows = fastapi_serve.summarize(results, [case])
    routed = rows[1]
    assert routed["ratio"] == {"median": 1.5, "min": 1.0, "max": 3.0, "n": 3}
    assert routed["met"] is True
    assert "MISSED" not in fastapi_serve.render(rows, "wrk")


def test_the_stdlib_load_generator_counts_answers() -> None:
    body = b'{"ok": true}'
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def main() -> dict[str, float]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while await reader.readuntil(b"\r\n\r\n"):
                    writer.write(reply)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await http_load.run(f"http://127.0.0.1:{port}/x", 4, 0.2)

    result = asyncio.run(main())
    assert result["requests"] > 0 and result["errors"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]


def test_one_short_real_round(tmp_path: Path) -> None:
    fastapi_serve.fastapi_app.prepare(tmp_path)
    servers = [s for s in fastapi_serve.SERVERS if s.name == "sysletloop-anyio"]
    cases = [c for c in fastapi_serve.CASES if c.name == "json"]
    results = fastapi_serve.measure(
        servers, cases, 1, 1.0, None, tmp_path, tmp_path / "uvicorn.log"
    )
    (metrics,) = results["sysletloop-anyio"]["json"]
    assert metrics["rps"] > 0 and metrics["errors"] == 0
    assert metrics["lag_p99_ms"] >= 0
