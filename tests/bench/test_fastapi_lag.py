"""The open-loop load generator (``benchmarks.http_load --rate``) and the lag-at-a-fixed-
rate command ``benchmarks.fastapi_lag`` (issue 21): a tiny server under a constant offered
rate, and a short real run of the command (real uvicorn, real FastAPI)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from benchmarks import fastapi_lag, http_load
from benchmarks.contenders import BASELINE, all_contenders
from benchmarks.workloads.fastapi_uvicorn import ROUTED

REPLY_AFTER = 0.02  # seconds the tiny server takes per request


async def _serve_slowly(run: object) -> dict[str, float]:
    body = b'{"ok": true}'
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(REPLY_AFTER)
                writer.write(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result: dict[str, float] = await run(f"http://127.0.0.1:{port}/x")  # type: ignore[operator]
        return result


def test_the_open_loop_sends_every_due_request_and_counts_latency_from_its_due_time() -> None:
    result = asyncio.run(
        _serve_slowly(lambda url: http_load.run_at_rate(url, conns=8, seconds=0.5, rate=100))
    )
    assert result["requests"] == 50 and result["errors"] == 0  # 0.5 s at 100/s, all answered
    assert result["offered_rps"] == 100
    assert result["p50_ms"] >= REPLY_AFTER * 1e3  # the server's own delay is in every one


def test_too_few_connections_are_charged_to_the_server_not_hidden() -> None:
    # One connection, one answer per 20 ms: 100 requests/s cannot be kept, so requests
    # wait for the connection and their latency from the due time grows past the delay
    # (a closed-loop generator would have sent them late and measured 20 ms each).
    result = asyncio.run(
        _serve_slowly(lambda url: http_load.run_at_rate(url, conns=1, seconds=0.5, rate=100))
    )
    assert result["requests"] == 50
    assert result["p99_ms"] >= 400  # the last, due at 490 ms, is answered at about 1 s


def test_a_rate_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="rate=0"):
        asyncio.run(http_load.run_at_rate("http://127.0.0.1:9/", 1, 1.0, 0))


def test_an_unknown_server_is_named() -> None:
    with pytest.raises(ValueError, match="no uvicorn loop for trio"):
        fastapi_lag.uvicorn_loops(["trio"])


def test_the_command_measures_both_modes_at_stocks_rate(tmp_path: Path) -> None:
    for c in all_contenders():
        if c.name in (BASELINE, ROUTED) and not c.probe().available:
            pytest.skip(f"{c.name} missing: {c.probe().reason}")
    out = tmp_path / "lag.json"
    argv = ["--rounds", "1", "--seconds", "0.5", "--case", "json", "--no-wrk"]
    argv += ["--servers", BASELINE, ROUTED, "--json", str(out)]
    assert fastapi_lag.main(argv) == 0
    doc = json.loads(out.read_text())
    (round_,) = doc["rounds"]
    assert round_["rate"] == round_["stock_max"]["full"]["rps"] > 0
    assert set(round_["servers"]) == {BASELINE, ROUTED}
    for server in round_["servers"].values():
        at_rate = server["at_rate"]
        assert at_rate["offered_rps"] == round_["rate"] and at_rate["requests"] > 0
        assert server["full"]["lag_p99_ms"] >= 0 and at_rate["lag_p99_ms"] >= 0
    rows = {row["server"]: row for row in doc["summary"]}
    assert rows[BASELINE]["lag_ratio_to_stock"] == 1.0


def test_an_extra_server_is_a_name_and_a_loop() -> None:
    loops = fastapi_lag.uvicorn_loops([BASELINE], ["fast=benchmarks.fastapi_loops:x"])
    assert loops == {BASELINE: "asyncio", "fast": "benchmarks.fastapi_loops:x"}
    for spec in ("fast", "=x", "fast=", f"{BASELINE}=x"):
        with pytest.raises(ValueError, match="NAME=LOOP"):
            fastapi_lag.uvicorn_loops([BASELINE], [spec])
