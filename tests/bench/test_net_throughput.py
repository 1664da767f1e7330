"""The ``net_throughput`` workload (``benchmarks.workloads.net_throughput``), the processes
it runs (``benchmarks.net_peer``, ``benchmarks.tcp_load``) and the verdict on issue 12's
target (``benchmarks.targets``).

Functional checks with real processes and real loops, for a fraction of a second: the
minimal HTTP server's parser, the echo server and load generator on sysletloop with the
loop's counters showing that no call was submitted, the verdict's resolution, and a short
run through the harness with its table, report and figure. The numbers come from
``python -m benchmarks run --workloads net_throughput``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cli, net_peer, plots, report, tcp_load
from benchmarks.contenders import BASELINE, all_contenders
from benchmarks.loadgen import cpu_seconds
from benchmarks.runner import Settings, run
from benchmarks.schema import validate
from benchmarks.targets import Verdict
from benchmarks.workloads.net_throughput import SUBJECT, NetThroughput, PeerServer

STEPS = "sysletloop-steps"  # on demand: runs here only when --loops names it


def _available(*names: str) -> None:
    for c in all_contenders():
        if c.name in names and not c.probe().available:
            pytest.skip(f"{c.name} missing: {c.probe().reason}")


def test_the_minimal_server_answers_pipelined_requests_and_refuses_the_rest() -> None:
    async def main() -> tuple[bytes, bytes]:
        server = await asyncio.get_running_loop().create_server(
            net_peer.MinimalHttp, "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            get = b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
            writer.write(get * 2 + get[:10])  # two whole heads, a third cut short
            two = await reader.readexactly(2 * len(net_peer.RESPONSE))
            writer.write(get[10:] + b"POST / HTTP/1.1\r\n\r\n")
            rest = await reader.read()  # the third answer, then a 400 and the close
            writer.close()
            await writer.wait_closed()
            return two, rest

    two, rest = asyncio.run(main())
    assert two == net_peer.RESPONSE * 2
    assert rest == net_peer.RESPONSE + net_peer.BAD_REQUEST


def test_cpu_seconds_counts_this_process() -> None:
    before = cpu_seconds(os.getpid())
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.03  # 10 ms ticks


@pytest.mark.parametrize("loop", [BASELINE, SUBJECT, STEPS])
def test_echo_on_a_loop_under_tcp_load(tmp_path: Path, loop: str) -> None:
    _available(loop)
    server = PeerServer("echo", loop, tmp_path)
    try:
        out = tcp_load.run(server.port, 4, 64, 0.2, warmup=0.05, watch=server.pid)
    finally:
        stats = server.finish()
    assert out["messages"] > 0 and out["msg_s"] > 0
    assert 0 < out["watched_cpu_share"] <= 1.5 and 0 < out["cpu_share"] <= 1.5
    if loop in (SUBJECT, STEPS):
        assert stats is not None
        # no blocking call was submitted: the syslet machinery did nothing at all
        assert stats["inline_completions"] == 0 and stats["migrations"] == 0
        assert stats.get("claimed_steps", 0) == 0  # and no step blocked
        if loop == SUBJECT:
            assert stats["threads_started"] == 0
        # (With migrate_steps, a step that waits for the GIL at a call under this load
        # looks asleep in the kernel to the sampler, which has a spare thread started
        # ahead of a claim that need not come: a thread, no claim.)
    else:
        assert stats is None  # stock asyncio has no counters


def _verdict(ratios: list[float], target: float = 1.0) -> Verdict:
    ordered = sorted(ratios)
    median = ordered[len(ordered) // 2]
    ratio: dict[str, Any] = {"values": ratios, "median": median, "n": len(ratios)}
    ratio |= {"min": ordered[0], "max": ordered[-1]}
    return Verdict("tcp_echo", ratio, target, None, None, median >= target)


def test_a_verdict_is_resolved_only_by_enough_rounds_on_one_side() -> None:
    clear = _verdict([1.02, 1.04, 1.05, 1.06, 1.03, 1.08, 1.01, 1.05, 1.04, 0.97])
    assert clear.met and clear.resolved  # 2nd-9th smallest (98%): 1.01-1.06
    assert clear.text() == ">= 1x: met"
    noisy = _verdict([0.9, 1.1, 1.02, 0.95, 1.08, 1.03, 0.97, 1.05, 0.99, 1.04])
    assert noisy.met and not noisy.resolved
    assert "within the noise: the median's 98% interval 0.95-1.08 spans 1" in noisy.text()
    few = _verdict([1.1, 1.2, 1.3])
    assert few.met and not few.resolved and "too few rounds" in few.text()
    slower = _verdict([0.9, 0.91, 0.92, 0.93, 0.94, 0.95])
    assert slower.met is False and slower.resolved and slower.text() == ">= 1x: MISSED"


def test_full_asks_for_ten_rounds_unless_repeat_is_given() -> None:
    w = NetThroughput()
    assert w.repeats("full", 5) == 10 and w.repeats("full", 12) == 12
    assert w.repeats("quick", 3) == 3
    from benchmarks.runner import _repeats

    assert _repeats(w, Settings(profile="full", repeat=5)) == 10
    assert _repeats(w, Settings(profile="full", repeat=5, repeat_fixed=True)) == 5


def test_the_workload_runs_in_the_harness(tmp_path: Path) -> None:
    _available(BASELINE, SUBJECT)
    doc = run(
        Settings(profile="smoke", repeat=2, warmup=False, loops=[SUBJECT, "trio", "kaio"]),
        str(tmp_path),
        workloads=[NetThroughput(seconds=0.2)],
    )
    assert validate(doc) == []
    entry = doc["workloads"]["net_throughput"]
    assert entry["repeat"] == 2
    for other in ("trio", "kaio"):
        assert entry["results"][other]["status"] in ("not_applicable", "missing")
    mine = entry["results"][SUBJECT]
    assert mine["status"] == "ok", mine.get("traceback")
    for case in ("tcp_echo", "http_server", "http_client"):
        c = mine["cases"][case]
        assert c["metrics"]["rps"]["median"] > 0 and c["metrics"]["errors"]["max"] == 0
        assert c["metrics"]["rps"]["ratio"]["n"] == 2  # paired with stock asyncio, per round
        assert c["metrics"]["loop_cpu"]["median"] > 0 and c["metrics"]["peer_cpu"]["median"] > 0
        assert c["extra"]["loop_stats_end"]["inline_completions"] == 0  # syslet_stats()
    base = entry["results"][BASELINE]["cases"]
    assert base["http_client"]["extra"]["loop_stats_end"] is None
    assert base["http_server"]["extra"]["generator"] == "benchmarks.http_load (asked for)"
    table = report.terminal_table(doc)
    assert "11. Network throughput, no blocking calls (issue 12)" in table
    assert "target http_client: sysletloop req/s x" in table
    markdown = report.markdown(doc)
    assert "Targets (issue 12)" in markdown and "too few rounds" in markdown
    if plots.available() is None:
        figures = plots.render(doc, str(tmp_path))
        assert figures == {"net_throughput": ["plots/net_throughput.png"]}
        assert (tmp_path / "plots" / "net_throughput.png").read_bytes().startswith(b"\x89PNG")


def test_sysletloop_steps_runs_when_named_and_only_then(tmp_path: Path) -> None:
    _available(BASELINE, STEPS)
    w = NetThroughput(seconds=0.2, cases=["http_server"])
    unnamed = run(Settings(profile="smoke", repeat=1, warmup=False), str(tmp_path / "a"),
                  workloads=[w])  # fmt: skip
    assert unnamed["workloads"]["net_throughput"]["results"][STEPS]["status"] == "not_applicable"
    named = run(
        Settings(profile="smoke", repeat=1, warmup=False, loops=[STEPS]),
        str(tmp_path / "b"),
        workloads=[w],
    )
    assert validate(named) == []
    mine = named["workloads"]["net_throughput"]["results"][STEPS]
    assert mine["status"] == "ok", mine.get("traceback")
    c = mine["cases"]["http_server"]
    assert c["metrics"]["rps"]["median"] > 0 and c["metrics"]["rps"]["ratio"]["n"] == 1
    assert c["extra"]["loop_stats_end"]["claimed_steps"] == 0


def test_two_http_server_workers_share_a_port_each_on_its_own_loop(tmp_path: Path) -> None:
    _available(BASELINE, SUBJECT)
    with pytest.raises(ValueError, match="workers=0"):
        NetThroughput(workers=0)
    w = NetThroughput(seconds=0.5, cases=["http_server"], workers=2)
    doc = run(
        Settings(profile="smoke", repeat=1, warmup=False, loops=[SUBJECT]),
        str(tmp_path),
        workloads=[w],
    )
    assert validate(doc) == []
    entry = doc["workloads"]["net_throughput"]
    assert entry["params"]["workers"] == 2
    mine = entry["results"][SUBJECT]
    assert mine["status"] == "ok", mine.get("traceback")
    c = mine["cases"]["http_server"]
    assert c["metrics"]["rps"]["median"] > 0 and c["metrics"]["errors"]["max"] == 0
    assert c["extra"]["workers"] == 2
    per_process = c["extra"]["loop_stats_end"]
    assert len(per_process) == 2  # each process's own loop wrote its counters
    assert all(stats["inline_completions"] == 0 for stats in per_process)  # nothing submitted


def test_the_command_line_gives_the_serving_workloads_their_workers(tmp_path: Path) -> None:
    _available(BASELINE, SUBJECT)
    out = tmp_path / "out"
    argv = ["run", "--smoke", "--workloads", "net_throughput", "--loops", SUBJECT]
    argv += ["--workers", "2", "--no-warmup", "--no-plots", "--out", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["workloads"]["net_throughput"]["params"]["workers"] == 2
    assert cli.main([*argv[:-4], "--workers", "0", "--out", str(out)]) == 2  # named, refused
