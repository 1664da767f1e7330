"""The ``unwrapped`` workload (``benchmarks.workloads.unwrapped``, issue 19), the processes
it runs (``benchmarks.delay_server``, ``benchmarks.gevent_unwrapped``), its contenders
(``sysletloop-steps``, ``gevent``) and the verdict on its targets (``benchmarks.targets``,
whose ratio may now have to be at most the target).

Functional checks with real loops and processes, for a fraction of a second each: the
delay server answers twenty requests together after the delay; stock asyncio stalls on an
unwrapped call and gevent does not; gevent is patched in its child and never imported by
the harness; ``sysletloop-steps`` is missing with the loop's own error while the loop
refuses ``migrate_steps``; the quick profile leaves the workload out unless it is named;
a short run through the harness with its table, report and figure. The numbers come from
``python -m benchmarks run --workloads unwrapped``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import findings, plots, report
from benchmarks.contenders import BASELINE, all_contenders
from benchmarks.contenders.asyncio_family import SysletCountersApi, SysletStepsContender
from benchmarks.contenders.base import UNWRAPPED, Contender
from benchmarks.contenders.gevent import GeventContender
from benchmarks.delay_server import ANSWER, ask, parse_delay
from benchmarks.runner import Settings, left_out, run, select
from benchmarks.schema import validate
from benchmarks.targets import Verdict, verdicts
from benchmarks.workloads import all_workloads
from benchmarks.workloads.unwrapped import (
    CLAIMED,
    SUBJECT,
    DelayServer,
    Unwrapped,
    loop_case,
    targets,
)

from .conftest import ROOT


def _contender(name: str) -> Contender:
    found = next(c for c in all_contenders() if c.name == name)
    if not found.probe().available:
        pytest.skip(f"{name} missing: {found.probe().reason}")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = DelayServer(tmp_path_factory.mktemp("delay"))
    yield s
    s.finish()


# ---------------------------------------------------------------------------------------
# The delay server
# ---------------------------------------------------------------------------------------


def test_a_request_line_names_its_delay() -> None:
    assert parse_delay(b"0.05\n") == 0.05
    assert parse_delay(b"0\r\n") == 0.0
    for bad in (b"soon\n", b"-1\n", b"3600\n", b"\n"):
        assert parse_delay(bad) is None


def test_the_delay_server_answers_twenty_requests_together_after_the_delay(
    server: DelayServer,
) -> None:
    got: list[bytes] = []
    t0 = time.perf_counter()
    threads = [
        threading.Thread(target=lambda: got.append(ask(server.port, 0.1))) for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    wall = time.perf_counter() - t0
    assert got == [ANSWER] * 20
    assert 0.1 <= wall < 1.0  # together: one after another would take 2 s


# ---------------------------------------------------------------------------------------
# The loops and gevent
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["sleep", "recv"])
def test_stock_asyncio_stalls_on_an_unwrapped_call(server: DelayServer, case: str) -> None:
    stock = _contender(BASELINE)
    result = loop_case(stock, case, 3, 0.03, 0.001, server.port)
    assert result.metrics["wall_s"] >= 3 * 0.03  # one task after another
    assert result.metrics["lag_max_ms"] >= 3 * 30 * 0.9  # the ticker waited for all three
    assert result.extra[CLAIMED] is None and result.extra["loop_stats_end"] is None
    assert result.extra["ticks"] == len(result.samples["lag_ms"])


def test_sysletloop_records_its_claimed_steps_when_it_has_the_counter(
    server: DelayServer,
) -> None:
    loop = _contender("sysletloop")
    result = loop_case(loop, "sleep", 2, 0.01, 0.001, server.port)
    stats = result.extra["loop_stats_end"]
    assert isinstance(stats, dict) and "migrations" in stats
    if CLAIMED in stats:  # the counter exists: the case's own count, an int
        assert isinstance(result.extra[CLAIMED], int)
    else:
        assert result.extra[CLAIMED] is None


def test_a_counter_is_read_with_getattr_and_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stats:
        claimed_steps = 7
        migrations = "not an int"

    class Loop:
        def syslet_stats(self) -> Stats:
            return Stats()

    monkeypatch.setattr(asyncio, "get_running_loop", Loop)
    api = SysletCountersApi("x", frozenset({UNWRAPPED}))
    assert api.counter("claimed_steps") == 7
    assert api.counter("migrations") is None
    assert api.counter("no_such_counter") is None


@pytest.mark.parametrize("case", ["sleep", "recv"])
def test_gevent_runs_patched_in_its_child_and_does_not_stall(
    server: DelayServer, case: str
) -> None:
    gevent = _contender("gevent")
    assert isinstance(gevent, GeventContender)
    out = gevent.unwrapped(case, 10, 0.05, 0.001, server.port if case == "recv" else None)
    assert out["patched"] is True
    assert 0.05 <= out["wall_s"] < 0.4  # together: one after another would take 0.5 s
    assert len(out["times"]) == len(out["lateness"]) > 10
    assert "gevent" not in sys.modules  # the harness process never imports it


def test_gevent_is_not_an_asyncio_loop() -> None:
    async def main(api: Any) -> None:
        return None

    with pytest.raises(TypeError, match="not an asyncio loop"):
        GeventContender().run(main)


# ---------------------------------------------------------------------------------------
# sysletloop-steps: missing while the loop refuses migrate_steps
# ---------------------------------------------------------------------------------------


def _steps() -> SysletStepsContender:
    found = next(c for c in all_contenders() if c.name == SUBJECT)
    assert isinstance(found, SysletStepsContender)
    return found


@pytest.mark.parametrize("error", [TypeError, ValueError])
def test_steps_is_missing_with_the_loops_own_error(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    import sysletloop

    def refuse(**options: Any) -> None:
        raise error(f"no {', '.join(options)} here")

    monkeypatch.setattr(sysletloop, "new_event_loop", refuse)
    found = _steps().probe()
    assert not found.available
    assert found.reason == (
        f"sysletloop.new_event_loop(migrate_steps=True) raised {error.__name__}: "
        "no migrate_steps here"
    )


def test_steps_is_available_where_the_loop_takes_the_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sysletloop

    made: list[dict[str, Any]] = []
    real = sysletloop.new_event_loop

    def accept(**options: Any) -> asyncio.AbstractEventLoop:
        made.append(options)
        return real()

    monkeypatch.setattr(sysletloop, "new_event_loop", accept)
    assert _steps().probe().available
    assert made == [{"migrate_steps": True}]


def test_steps_on_the_installed_sysletloop_is_available_or_says_why() -> None:
    found = _steps().probe()
    if not found.available:
        assert found.reason is not None
        assert "new_event_loop(migrate_steps=True) raised" in found.reason
        assert "TypeError" in found.reason or "ValueError" in found.reason
    assert UNWRAPPED in _steps().provides and "call" not in _steps().provides


# ---------------------------------------------------------------------------------------
# Targets: a ratio that must be at most the target
# ---------------------------------------------------------------------------------------


def _entry(wall_ratios: list[float] | None, lag_p99_ms: float = 1.0) -> dict[str, Any]:
    """A results entry of the workload, as the runner writes it, for the subject."""
    cases: dict[str, Any] = {}
    if wall_ratios is not None:
        ordered = sorted(wall_ratios)
        ratio = {"values": wall_ratios, "median": ordered[len(ordered) // 2], "n": len(ordered)}
        ratio |= {"min": ordered[0], "max": ordered[-1]}
        for case in ("sleep", "recv"):
            cases[case] = {
                "metrics": {
                    "wall_s": {"median": 0.07, "ratio": ratio},
                    "lag_p99_ms": {"median": lag_p99_ms, "ratio": None},
                }
            }
    return {
        "number": 12,
        "paper": "issue 19",
        "params": {"cases": ["sleep", "recv"]},
        "targets": targets(),
        "results": {SUBJECT: {"status": "ok" if cases else "missing", "cases": cases}},
    }


def test_the_targets_are_the_issues() -> None:
    assert targets() == {
        "contender": "sysletloop-steps",
        "cases": {
            "sleep": {"wall_ratio": 0.15, "lag_p99_ms": 5.0},
            "recv": {"wall_ratio": 0.15, "lag_p99_ms": 5.0},
        },
    }
    assert Unwrapped().describe()["targets"] == targets()


def test_a_wall_ratio_is_met_at_or_below_the_target_and_resolved_by_enough_rounds() -> None:
    ten = [0.06, 0.07, 0.08, 0.07, 0.065, 0.075, 0.07, 0.08, 0.09, 0.2]
    sleep, recv = verdicts(_entry(ten))
    assert sleep.case == "sleep" and recv.case == "recv"
    assert sleep.metric == "wall_s" and sleep.better == "lower" and sleep.words == "wall time"
    assert sleep.met and sleep.resolved  # 2nd-9th smallest: 0.065-0.09, all below 0.15
    assert sleep.text() == "<= 0.15x, lag p99 <= 5 ms: met"
    slow = verdicts(_entry([0.2, 0.3, 0.25, 0.22, 0.21, 0.24]))[0]
    assert slow.met is False and slow.resolved
    assert slow.text() == "<= 0.15x, lag p99 <= 5 ms: MISSED"
    few = verdicts(_entry([0.05, 0.06, 0.07]))[0]
    assert few.met and not few.resolved and "too few rounds" in few.text()
    laggy = verdicts(_entry([0.05, 0.06, 0.07], lag_p99_ms=12.0))[0]
    assert laggy.met is False  # the wall time is met, the timer's lag is not


def test_a_missing_subject_is_not_measured_and_not_missed() -> None:
    entry = _entry(None)
    found = verdicts(entry)
    assert [v.met for v in found] == [None, None]
    assert found[0].text() == "<= 0.15x, lag p99 <= 5 ms: not measured"
    doc = {"workloads": {"unwrapped": entry}}
    assert findings.missed_targets(doc) == []


def test_an_rps_target_still_reads_as_before() -> None:
    v = Verdict("json", {"values": [1.3] * 5, "median": 1.3, "n": 5}, 1.25, None, None, True)
    assert v.metric == "rps" and v.better == "higher" and v.words == "req/s"
    assert v.text() == ">= 1.25x: met"
    entry = {
        "params": {"cases": ["json"]},
        "targets": {"contender": "x", "cases": {"json": {"rps_ratio": 1.25, "lag_p99_ms": None}}},
        "results": {"x": {"cases": {"json": {"metrics": {"rps": {"ratio": v.ratio}}}}}},
    }
    assert verdicts(entry) == [v]


# ---------------------------------------------------------------------------------------
# Profiles, and the workload in the harness
# ---------------------------------------------------------------------------------------


def test_quick_leaves_the_workload_out_unless_it_is_named() -> None:
    w = Unwrapped()
    assert w.params("quick")["tasks"] == 20 and w.params("quick")["seconds"] == 0.05
    assert w.params("full") == w.params("quick")
    assert w.params("smoke")["tasks"] * w.params("smoke")["seconds"] <= 0.05
    quick = Settings(profile="quick")
    assert "unwrapped" not in [x.name for x in select(quick)[1]]
    assert left_out(quick) == ["unwrapped", "served_unwrapped"]
    named = Settings(profile="quick", workloads=["unwrapped"])
    assert [x.name for x in select(named)[1]] == ["unwrapped"] and left_out(named) == []
    for profile in ("smoke", "full"):
        assert "unwrapped" in [x.name for x in select(Settings(profile=profile))[1]]
        assert left_out(Settings(profile=profile)) == []
    names = [x.name for x in all_workloads()]
    assert names[names.index("unwrapped") :][:2] == ["unwrapped", "served_unwrapped"]


def test_the_contenders_it_runs_on() -> None:
    w = Unwrapped()
    mine = [c.name for c in all_contenders() if w.applies_to(c)]
    assert mine == [BASELINE, "uvloop", "rloop", "sysletloop", SUBJECT, "gevent"]


def test_the_workload_runs_in_the_harness(tmp_path: Path) -> None:
    loops = ["sysletloop", SUBJECT, "gevent"]
    doc = run(
        Settings(profile="smoke", repeat=2, warmup=False, loops=[*loops, "trio"]),
        str(tmp_path),
        workloads=[Unwrapped(tasks=3, seconds=0.02)],
    )
    assert validate(doc) == []
    assert doc["settings"]["left_out"] == []
    entry = doc["workloads"]["unwrapped"]
    assert entry["repeat"] == 2 and entry["params"]["tasks"] == 3
    assert entry["results"]["trio"]["status"] in ("not_applicable", "missing")
    for name in (BASELINE, *loops):
        r = entry["results"][name]
        if doc["contenders"][name]["status"] == "missing":
            assert r["status"] == "missing" and r["error"]
            continue
        assert r["status"] == "ok", r.get("traceback")
        for case in ("sleep", "recv"):
            c = r["cases"][case]
            assert c["metrics"]["wall_s"]["ratio"]["n"] == 2  # paired per round
            assert c["metrics"]["lag_p99_ms"]["median"] >= 0
            assert CLAIMED in c["extra"] or name == "gevent"
    stock = entry["results"][BASELINE]["cases"]["sleep"]["metrics"]
    assert stock["wall_s"]["median"] >= 3 * 0.02
    table = report.terminal_table(doc)
    assert "12. Blocking calls written straight in a coroutine (issue 19)" in table
    assert "target sleep: sysletloop-steps wall time" in table
    assert "load generator" not in table
    markdown = report.markdown(doc)
    assert "Targets (issue 19)" in markdown and "wall time ratio" in markdown
    if plots.available() is None:
        import matplotlib.pyplot as plt

        figures = plots.render(doc, str(tmp_path))
        assert figures == {"unwrapped": ["plots/unwrapped.png"]}
        assert (tmp_path / "plots" / "unwrapped.png").read_bytes().startswith(b"\x89PNG")
        ((_, fig),) = plots.DRAWERS["unwrapped"](entry)
        assert "?" in fig.get_suptitle()
        assert all(ax.get_legend() is None for ax in fig.axes)
        labels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
        assert labels and not any("_" in label for label in labels)
        plt.close(fig)


def test_a_quick_run_says_what_it_left_out() -> None:
    doc: dict[str, Any] = {"settings": {"profile": "quick", "left_out": ["unwrapped"]}}
    assert report._left_out(doc) == (
        "not in the quick profile: unwrapped (run with --workloads unwrapped)"
    )
    assert report._left_out({"settings": {"profile": "smoke"}}) is None


def test_the_children_run_as_modules() -> None:
    for module in ("benchmarks.delay_server", "benchmarks.gevent_unwrapped"):
        out = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "usage" in out.stdout
