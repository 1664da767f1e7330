"""The ``fastapi`` workload (``benchmarks.workloads.fastapi_uvicorn``), its front end
``benchmarks.fastapi_serve`` and the stdlib load generator ``benchmarks.http_load``.

Functional checks: wrk's output parsed, the issue's targets judged from a results entry,
the stdlib load generator against a tiny server, the fallback when wrk is absent, and
short real runs (real uvicorn, real FastAPI, the stdlib generator) through the harness
and through the standalone command. The numbers come from ``python -m benchmarks run
--workloads fastapi`` or ``python -m benchmarks.fastapi_serve``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import fastapi_serve, http_load, plots, report
from benchmarks.contenders import BASELINE, all_contenders
from benchmarks.lag_ticker import window_report
from benchmarks.loadgen import load
from benchmarks.runner import Settings, run
from benchmarks.schema import validate
from benchmarks.workloads.fastapi_uvicorn import (
    ROUTED,
    FastAPIServe,
    server_argv,
    targets,
    verdicts,
)

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


def test_wrk_output_is_parsed(tmp_path: Path) -> None:
    # A stand-in for wrk that prints wrk's output: the parser is what is under test.
    wrk = tmp_path / "wrk"
    wrk.write_text(f"#!/bin/sh\ncat <<'EOF'\n{WRK_OUTPUT}EOF\n")
    wrk.chmod(0o755)
    result = load(str(wrk), "http://127.0.0.1:1/json", 32, 3)
    assert result == {"rps": 3333.33, "p50_ms": 8.2, "p99_ms": 1200.0, "errors": 3.0}


def _entry(ratios: dict[str, float], lag_ms: float, cases: list[str]) -> dict[str, Any]:
    def metrics(case: str) -> dict[str, Any]:
        r = ratios[case]
        return {
            "rps": {"median": 100 * r, "ratio": {"median": r, "min": r, "max": r, "n": 1}},
            "lag_p99_ms": {"median": lag_ms, "ratio": None},
        }

    return {
        "params": {"cases": cases},
        "targets": targets(),
        "results": {ROUTED: {"cases": {c: {"metrics": metrics(c)} for c in ratios}}},
    }


def test_targets_are_judged_on_the_median_ratio_and_the_lag() -> None:
    cases = ["json", "sleep", "sqlite", "file", "async-json"]
    fast = _entry({c: 3.5 for c in cases}, lag_ms=4.0, cases=cases)
    assert [v.met for v in verdicts(fast)] == [True] * 5
    lagging = _entry({c: 3.5 for c in cases}, lag_ms=6.0, cases=cases)
    met = {v.case: v.met for v in verdicts(lagging)}
    assert met == {"json": True, "sleep": False, "sqlite": True, "file": True, "async-json": True}
    short = _entry({"json": 1.2, "sleep": 3.5}, lag_ms=1.0, cases=["json", "sleep", "file"])
    judged = {v.case: v for v in verdicts(short)}
    assert set(judged) == {"json", "sleep", "file"}  # only the cases that were run
    assert judged["json"].met is False and "MISSED" in judged["json"].text()
    assert judged["file"].met is None and "not measured" in judged["file"].text()
    section = "\n".join(report._md_targets("fastapi", short))  # a case with no ratio renders too
    assert "| `file` |  |  |  | >= 1.5x: not measured |" in section


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


def test_without_wrk_the_stdlib_generator_is_used_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    w = FastAPIServe()
    state = w.prepare(str(tmp_path), w.params("quick"))
    assert state.wrk is None and state.generator_note.endswith("(wrk is not on PATH)")
    with pytest.raises(RuntimeError, match="wrk is not on PATH"):
        w.prepare(str(tmp_path), {**w.params("quick"), "generator": "wrk"})


def _available(*names: str) -> None:
    for c in all_contenders():
        if c.name in names and not c.probe().available:
            pytest.skip(f"{c.name} missing: {c.probe().reason}")


def test_the_workload_runs_in_the_harness(tmp_path: Path) -> None:
    _available(BASELINE, ROUTED)
    w = FastAPIServe(cases=["json", "async-json"])
    doc = run(
        Settings(profile="smoke", repeat=2, warmup=False, loops=[ROUTED, "trio"]),
        str(tmp_path),
        workloads=[w],
    )
    assert validate(doc) == []
    entry = doc["workloads"]["fastapi"]
    assert entry["results"].get("trio", {}).get("status") in (None, "not_applicable", "missing")
    routed = entry["results"][ROUTED]
    assert routed["status"] == "ok", routed.get("traceback")
    for case in ("json", "async-json"):
        c = routed["cases"][case]
        assert c["metrics"]["rps"]["median"] > 0 and c["metrics"]["errors"]["max"] == 0
        assert c["metrics"]["rps"]["ratio"]["n"] == 2  # paired with stock asyncio, per repeat
        assert c["metrics"]["lag_p99_ms"]["median"] >= 0
        assert c["extra"]["generator"] == "benchmarks.http_load (asked for)"
        assert c["extra"]["loop_stats_end"]["inline_completions"] >= 0  # syslet_stats()
    assert entry["results"][BASELINE]["cases"]["json"]["extra"]["loop_stats_end"] is None
    table = report.terminal_table(doc)
    assert "target json: sysletloop-anyio req/s x" in table
    assert "target sleep" not in table  # not run, not judged
    markdown = report.markdown(doc)
    assert "Targets (issue 11)" in markdown and "benchmarks.http_load" in markdown
    if plots.available() is None:
        figures = plots.render(doc, str(tmp_path))
        assert figures == {"fastapi": ["plots/fastapi.png"]}
        assert (tmp_path / "plots" / "fastapi.png").read_bytes().startswith(b"\x89PNG")


def test_the_standalone_command_is_the_workload(tmp_path: Path) -> None:
    _available(BASELINE, ROUTED)
    out = tmp_path / "fastapi.json"
    argv = ["--servers", "sysletloop-anyio", "--cases", "json", "--rounds", "1"]
    argv += ["--seconds", "0.5", "--no-wrk", "--json", str(out)]
    assert fastapi_serve.main(argv) == 0
    doc = json.loads(out.read_text())
    assert validate(doc) == []
    assert doc["settings"]["loops"] == [BASELINE, ROUTED]
    entry = doc["workloads"]["fastapi"]
    assert entry["params"]["seconds"] == 0.5 and entry["params"]["cases"] == ["json"]
    (rps,) = entry["results"][ROUTED]["cases"]["json"]["metrics"]["rps"]["values"]
    assert rps > 0


# ---------------------------------------------------------------------------------------
# Several worker processes (issue 21): uvicorn --workers, gunicorn's uvicorn worker
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers=0"),
        ({"workers": True}, "workers=True"),
        ({"workers": 1.5}, "workers=1.5"),
        ({"server": "hypercorn"}, "server 'hypercorn'"),
    ],
)
def test_a_bad_workers_or_server_is_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FastAPIServe(**kwargs)


def test_the_server_command_lines() -> None:
    one = server_argv("uvicorn", "sysletloop:new_anyio_event_loop", 8000, 1)
    assert "--workers" not in one and one[one.index("--loop") + 1].startswith("sysletloop:")
    two = server_argv("uvicorn", "asyncio", 8000, 2)
    assert two[two.index("--workers") + 1] == "2"
    gunicorn = server_argv("gunicorn", "uvloop", 8000, 2)
    assert gunicorn[gunicorn.index("-w") + 1] == "2"
    assert gunicorn[gunicorn.index("-k") + 1] == "benchmarks.gunicorn_workers.LoopWorker"
    with pytest.raises(ValueError, match="one of uvicorn, gunicorn"):
        server_argv("daphne", "asyncio", 8000, 1)


def test_a_window_takes_each_workers_samples_in_it_and_the_worst_p99() -> None:
    dumps = [
        {"pid": 1, "stamped": [(10.0, 0.001), (11.0, 0.002), (12.5, 0.5)]},
        {"pid": 2, "stamped": [(10.5, 0.004), (11.5, 0.003), (9.0, 0.9)]},
    ]
    lag = window_report(dumps, 10.0, 12.0)  # leaves out 12.5 (pid 1) and 9.0 (pid 2)
    assert [w["ticks"] for w in lag["workers"]] == [2, 2]
    assert lag["p99_ms"] == pytest.approx(4.0) and lag["max_ms"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="no worker"):
        window_report([], 0.0, 1.0)


def test_the_scaling_table_divides_the_most_workers_by_the_fewest() -> None:
    def doc(rps: float, ratio: float, cpu: float) -> dict[str, Any]:
        rps_metric = {"median": rps, "ratio": {"median": ratio}}
        extra = {"served_by_worker": [300, 100]}
        case = {"metrics": {"rps": rps_metric, "server_cpu": {"median": cpu}}, "extra": extra}
        return {"workloads": {"fastapi": {"results": {ROUTED: {"cases": {"sleep": case}}}}}}

    table = fastapi_serve.scaling_table({1: doc(2000.0, 3.0, 0.75), 2: doc(3000.0, 2.0, 1.0)})
    header, row = table.splitlines()
    assert header.split() == [
        "server", "case", "req/s", "w1", "req/s", "w2", "x", "stock", "w1", "x", "stock",
        "w2", "cpu", "w1", "cpu", "w2", "scaling", "w2/w1", "split", "w2",
    ]  # fmt: skip
    cells = [ROUTED, "sleep", "2,000", "3,000", "3.00", "2.00", "0.75", "1.00", "1.50", "25/75"]
    assert row.split() == cells


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_two_workers_serve_and_each_reports_its_lag(tmp_path: Path, server: str) -> None:
    _available(BASELINE, ROUTED)
    w = FastAPIServe(cases=["json"], workers=2, server=server, seconds=0.5)
    assert w.missing() is None
    doc = run(
        Settings(profile="smoke", repeat=1, warmup=False, loops=[ROUTED]),
        str(tmp_path),
        workloads=[w],
    )
    assert validate(doc) == []
    entry = doc["workloads"]["fastapi"]
    assert entry["params"]["workers"] == 2 and entry["params"]["server"] == server
    for name in (BASELINE, ROUTED):
        result = entry["results"][name]
        assert result["status"] == "ok", result.get("traceback")
        case = result["cases"]["json"]
        assert case["metrics"]["rps"]["median"] > 0 and case["metrics"]["errors"]["max"] == 0
        workers = case["extra"]["lag_workers"]
        assert len({worker["pid"] for worker in workers}) == 2  # each worker has its own loop
        assert all(worker["ticks"] > 0 for worker in workers)
        worst = max(worker["p99_ms"] for worker in workers)
        assert case["metrics"]["lag_p99_ms"]["median"] == worst
        assert case["metrics"]["server_cpu"]["median"] > 0  # both workers and the master
        served = case["extra"]["served_by_worker"]  # every request counted by its worker
        assert len(served) == 2 and sum(served) > 0
