"""The ``served_unwrapped`` workload (``benchmarks.workloads.served_unwrapped``, issue 19),
its aiohttp server (``benchmarks.aiohttp_app``), the delay server's HTTP answers
(``benchmarks.delay_server``), its contenders (``served``; ``sysletloop-steps``' uvicorn
loop) and its targets; and ``net_throughput`` running ``sysletloop-steps`` on demand.

Functional checks with real processes, for a fraction of a second each: the delay server
answers ``urlopen`` after the delay; the aiohttp server answers on a stock loop; the
targets are judged on the median ratio; the quick profile leaves the workload out unless
it is named; without wrk the stdlib generator is used and named; a short run through the
harness with its table, report and figure. The numbers come from ``python -m benchmarks
run --workloads served_unwrapped``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from benchmarks import aiohttp_app, findings, plots, report
from benchmarks.contenders import BASELINE, all_contenders
from benchmarks.contenders.base import ASGI, SERVED, UNWRAPPED
from benchmarks.delay_server import ANSWER, http_delay
from benchmarks.runner import Settings, left_out, run, select
from benchmarks.schema import validate
from benchmarks.workloads.fastapi_uvicorn import FastAPIServe
from benchmarks.workloads.net_throughput import NetThroughput
from benchmarks.workloads.served_unwrapped import (
    CLAIMED,
    SUBJECT,
    AiohttpServer,
    ServedUnwrapped,
    claimed,
    loop_faults,
    targets,
    verdicts,
)
from benchmarks.workloads.unwrapped import DelayServer


def _available(*names: str) -> None:
    for c in all_contenders():
        if c.name in names and not c.probe().available:
            pytest.skip(f"{c.name} missing: {c.probe().reason}")


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = DelayServer(tmp_path_factory.mktemp("backend"))
    yield s
    s.finish()


# ---------------------------------------------------------------------------------------
# The backend and the aiohttp server
# ---------------------------------------------------------------------------------------


def test_an_http_request_line_names_its_delay() -> None:
    assert http_delay(b"GET /0.05 HTTP/1.1\r\n") == 0.05
    assert http_delay(b"GET /0 HTTP/1.1\r\n") == 0.0
    for bad in (b"GET / HTTP/1.1\r\n", b"GET /soon HTTP/1.1\r\n", b"POST /0.05 HTTP/1.1\r\n",
                b"GET /3600 HTTP/1.1\r\n", b"GET 0.05 HTTP/1.1\r\n", b"GET /0.05\r\n"):  # fmt: skip
        assert http_delay(bad) is None


def test_the_delay_server_answers_urlopen_together_after_the_delay(backend: DelayServer) -> None:
    url = f"http://127.0.0.1:{backend.port}/0.1"
    got: list[bytes] = []

    def fetch() -> None:
        with urllib.request.urlopen(url, timeout=10) as reply:
            got.append(reply.read())

    threads = [threading.Thread(target=fetch) for _ in range(10)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == [ANSWER] * 10
    assert 0.1 <= time.perf_counter() - t0 < 0.9  # together: one after another takes 1 s
    with pytest.raises(urllib.error.HTTPError, match="404") as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{backend.port}/never", timeout=10)
    refused.value.close()  # 3.14+: it holds a temporary file, which warns if left open


def test_a_loop_is_named_as_uvicorn_names_it() -> None:
    assert aiohttp_app.loop_factory("asyncio") is asyncio.SelectorEventLoop
    factory = aiohttp_app.loop_factory("benchmarks.fastapi_loops:anyio_unpredicted")
    assert factory.__name__ == "anyio_unpredicted"
    for bad in ("sysletloop", "sysletloop:", ":new_event_loop"):
        with pytest.raises(ValueError, match="asyncio, uvloop or module:factory"):
            aiohttp_app.loop_factory(bad)


def test_the_aiohttp_server_blocks_in_urlopen_on_a_stock_loop(
    tmp_path: Path, backend: DelayServer
) -> None:
    server = AiohttpServer(
        "stock", "asyncio", f"http://127.0.0.1:{backend.port}", tmp_path / "aiohttp.log"
    )
    try:
        assert server.get("/_stats") == {}  # stock asyncio has no counters
        server.get("/_lag/reset", "POST")
        t0 = time.perf_counter()
        assert server.get("/urlopen?seconds=0.05") == {"backend": "ok"}
        assert time.perf_counter() - t0 >= 0.05
        lag = server.get("/_lag")
        assert lag["ticks"] > 0 and lag["max_ms"] >= 40  # the ticker waited for urlopen
    finally:
        server.stop()
    assert "Traceback" not in (tmp_path / "aiohttp.log").read_text()


def test_the_loops_survived_faults_are_read_from_the_log() -> None:
    log = (
        "INFO: started\n"
        "sysletloop: holding a claimed step failed; the loop goes on\n"
        "RuntimeError: a claimed step ran on unheld; see _steps\n"
        "sysletloop: reading the limit failed; the loop goes on\n"
    )
    assert loop_faults(log) == [
        "sysletloop: holding a claimed step failed; the loop goes on: "
        "RuntimeError: a claimed step ran on unheld; see _steps",
        "sysletloop: reading the limit failed; the loop goes on",
    ]
    assert loop_faults("INFO: started\n") == []


def test_claimed_steps_are_the_difference_where_the_counter_is() -> None:
    assert claimed({CLAIMED: 3}, {CLAIMED: 10}) == 7
    assert claimed({}, {}) is None  # stock asyncio
    assert claimed({CLAIMED: 3}, {"migrations": 1}) is None


# ---------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------


def _entry(ratios: list[float] | None) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    if ratios is not None:
        ordered = sorted(ratios)
        ratio = {"values": ratios, "median": ordered[len(ordered) // 2], "n": len(ordered)}
        ratio |= {"min": ordered[0], "max": ordered[-1]}
        for case in ("fastapi-sleep", "aiohttp-urlopen"):
            cases[case] = {"metrics": {"rps": {"median": 400.0, "ratio": ratio}}}
    return {
        "number": 13,
        "paper": "issue 19",
        "params": {"cases": ["fastapi-sleep", "aiohttp-urlopen"]},
        "targets": targets(),
        "results": {SUBJECT: {"status": "ok" if cases else "missing", "cases": cases}},
    }


def test_the_targets_are_the_issues() -> None:
    assert targets() == {
        "contender": "sysletloop-steps",
        "cases": {
            "fastapi-sleep": {"rps_ratio": 10.0, "lag_p99_ms": None},
            "aiohttp-urlopen": {"rps_ratio": 10.0, "lag_p99_ms": None},
        },
    }
    assert ServedUnwrapped().describe()["targets"] == targets()
    assert findings.judged("served_unwrapped", _entry([20.0])) == verdicts(_entry([20.0]))


def test_an_rps_ratio_of_ten_is_met_and_resolved_by_enough_rounds() -> None:
    fast, _ = verdicts(_entry([18.0, 22.0, 25.0, 19.0, 30.0, 21.0]))
    assert fast.case == "fastapi-sleep" and fast.words == "req/s"
    assert fast.met and fast.resolved and fast.text() == ">= 10x: met"
    slow, _ = verdicts(_entry([4.0, 5.0, 6.0, 5.5, 4.5, 5.2]))
    assert slow.met is False and slow.resolved and slow.text() == ">= 10x: MISSED"
    few, _ = verdicts(_entry([12.0, 30.0, 40.0]))
    assert few.met and not few.resolved and "too few rounds" in few.text()
    missing = verdicts(_entry(None))
    assert [v.met for v in missing] == [None, None]
    assert findings.missed_targets({"workloads": {"served_unwrapped": _entry(None)}}) == []


# ---------------------------------------------------------------------------------------
# Profiles and contenders
# ---------------------------------------------------------------------------------------


def test_quick_leaves_the_workload_out_unless_it_is_named() -> None:
    w = ServedUnwrapped()
    quick = w.params("quick")
    assert quick["block_s"] == 0.05 and quick["fastapi_conns"] == 64
    assert quick["aiohttp_conns"] == 32 and quick["generator"] == "auto"
    smoke = w.params("smoke")
    assert smoke["generator"] == "http_load" and smoke["seconds"] <= 0.3
    assert smoke["fastapi_conns"] * smoke["block_s"] <= 0.1  # a stalled backlog, seconds
    assert "served_unwrapped" in left_out(Settings(profile="quick"))
    named = Settings(profile="quick", workloads=["served_unwrapped"])
    assert [x.name for x in select(named)[1]] == ["served_unwrapped"]
    for profile in ("smoke", "full"):
        assert "served_unwrapped" in [x.name for x in select(Settings(profile=profile))[1]]
    with pytest.raises(ValueError, match="unknown case"):
        ServedUnwrapped(cases=["nope"])


def test_the_contenders_it_runs_on() -> None:
    w = ServedUnwrapped()
    mine = [c for c in all_contenders() if w.applies_to(c)]
    assert [c.name for c in mine] == [BASELINE, "uvloop", "sysletloop", SUBJECT]
    assert all(c.uvicorn_loop for c in mine)
    steps = next(c for c in mine if c.name == SUBJECT)
    assert steps.uvicorn_loop == "benchmarks.fastapi_loops:migrate_steps"
    assert SERVED in steps.provides and UNWRAPPED in steps.provides
    assert ASGI not in steps.provides and not FastAPIServe().applies_to(steps)


def test_net_throughput_runs_sysletloop_steps_only_when_named() -> None:
    w = NetThroughput()
    steps = next(c for c in all_contenders() if c.name == SUBJECT)
    assert w.applies_to(steps)
    assert not w.runs_on(steps, None) and not w.runs_on(steps, ["sysletloop"])
    assert w.runs_on(steps, ["sysletloop", SUBJECT])
    stock = next(c for c in all_contenders() if c.name == BASELINE)
    assert w.runs_on(stock, None)


def test_missing_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import machine
    from benchmarks.workloads import served_unwrapped

    real = machine.package_version
    monkeypatch.setattr(
        served_unwrapped, "package_version", lambda m: None if m == "aiohttp" else real(m)
    )
    assert ServedUnwrapped().missing() == (
        "aiohttp is not installed (pip install 'sysletloop[bench]')"
    )


def test_without_wrk_the_stdlib_generator_is_used_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    w = ServedUnwrapped(cases=["fastapi-sleep"])
    state = w.prepare(str(tmp_path), w.params("quick"))
    assert state.wrk is None and state.generator_note.endswith("(wrk is not on PATH)")
    assert state.backend is None  # no aiohttp case: no delay server
    with pytest.raises(RuntimeError, match="wrk is not on PATH"):
        w.prepare(str(tmp_path), {**w.params("quick"), "generator": "wrk"})


# ---------------------------------------------------------------------------------------
# In the harness
# ---------------------------------------------------------------------------------------


def test_the_workload_runs_in_the_harness(tmp_path: Path) -> None:
    _available(BASELINE, "sysletloop")
    loops = ["sysletloop", SUBJECT]
    doc = run(
        Settings(profile="smoke", repeat=2, warmup=False, loops=[*loops, "trio"]),
        str(tmp_path),
        workloads=[ServedUnwrapped(seconds=0.3)],
    )
    assert validate(doc) == []
    entry = doc["workloads"]["served_unwrapped"]
    assert entry["repeat"] == 2
    assert entry["results"]["trio"]["status"] in ("not_applicable", "missing")
    for name in (BASELINE, *loops):
        r = entry["results"][name]
        if doc["contenders"][name]["status"] == "missing":
            assert r["status"] == "missing" and r["error"]
            continue
        assert r["status"] == "ok", r.get("traceback")
        for case in ("fastapi-sleep", "aiohttp-urlopen"):
            c = r["cases"][case]
            assert c["metrics"]["rps"]["median"] > 0 and c["metrics"]["errors"]["max"] == 0
            assert c["metrics"]["rps"]["ratio"]["n"] == 2  # paired with stock, per round
            assert c["extra"]["generator"] == "benchmarks.http_load (asked for)"
            assert isinstance(c["extra"]["loop_faults"], list)
            if name == SUBJECT:
                assert c["extra"][CLAIMED] > 0  # the blocked steps were moved
            elif name == BASELINE:
                assert c["extra"][CLAIMED] is None and c["extra"]["loop_stats_end"] is None
            else:
                assert c["extra"][CLAIMED] == 0  # sysletloop by default stalls as stock
    table = report.terminal_table(doc)
    assert "13. A served handler that blocks unwrapped (issue 19)" in table
    if doc["contenders"][SUBJECT]["status"] != "missing":  # 3.11: no migrate_steps
        assert "target fastapi-sleep: sysletloop-steps req/s x" in table
    assert "load generator: benchmarks.http_load" in table
    markdown = report.markdown(doc)
    assert "Targets (issue 19)" in markdown
    if plots.available() is None:
        figures = plots.render(doc, str(tmp_path))
        assert figures == {"served_unwrapped": ["plots/served_unwrapped.png"]}
        assert (tmp_path / "plots" / "served_unwrapped.png").read_bytes().startswith(b"\x89PNG")
