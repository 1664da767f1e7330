"""``benchmarks.fastapi_profile`` (issue 21): py-spy's raw stacks sorted into the loop's
work, blocking calls and other threads, and a short real run (uvicorn, wrk, py-spy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import fastapi_profile
from benchmarks.contenders import BASELINE, all_contenders
from benchmarks.workloads.fastapi_uvicorn import ROUTED

RUN = "thread (7): MainThread;run (asyncio/runners.py:118);SysletEventLoop._run_once (sysletloop/_loop.py:506)"  # noqa: E501
RAW = f"""\
{RUN};Handle._run (asyncio/events.py:84);Router.__call__ (starlette/routing.py:683) 5
{RUN};SysletEventLoop._run_inline (sysletloop/_loop.py:617);CallRecord.run (sysletloop/_callrecord.py:73);json_def (benchmarks/fastapi_app.py:63) 3
thread (8): sysletloop-worker-1;Thread._bootstrap (threading.py:1030);ThreadCache._worker_main (sysletloop/_threadcache.py:331) 2
thread (9): AnyIO worker thread;Thread._bootstrap (threading.py:1030);WorkerThread.run (anyio/_backends/_asyncio.py:1113);sleep_def (benchmarks/fastapi_app.py:78) 4
{RUN};EpollSelector.select (selectors.py:468) 1
thread (7): MainThread;RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:522) 2
thread (8): sysletloop-worker-1;Thread._bootstrap (threading.py:1030);SysletEventLoop._drive (sysletloop/_loop.py:414);SysletEventLoop._run_once (sysletloop/_loop.py:506);Handle._run (asyncio/events.py:84) 1
"""  # noqa: E501


def test_stacks_are_sorted_into_loop_work_calls_and_threads() -> None:
    profile = fastapi_profile.parse(RAW.splitlines(keepends=True))
    assert profile.samples == 18
    # the loop's: through _run_once, or on the first thread (a coroutine resumed from C
    # shows no frames below it), or a syslet loop away from home on a worker thread
    assert (profile.loop, profile.call, profile.threads) == (9, 7, 2)
    assert profile.by_package == {"starlette": 5, "asyncio": 2, "uvicorn": 2}
    assert profile.by_function.most_common(1) == [("Router.__call__ (starlette/routing.py:683)", 5)]


def test_a_line_that_is_not_a_stack_is_skipped() -> None:
    assert fastapi_profile.parse(["", "garbage\n", "thread (1): x;y notanumber\n"]).samples == 0


def test_the_command_profiles_a_served_case(tmp_path: Path) -> None:
    try:
        fastapi_profile.py_spy()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    for c in all_contenders():
        if c.name in (BASELINE, ROUTED) and not c.probe().available:
            pytest.skip(f"{c.name} missing: {c.probe().reason}")
    out = tmp_path / "profile.json"
    argv = ["--servers", ROUTED, "--cases", "json", "--seconds", "1", "--json", str(out)]
    try:
        assert fastapi_profile.main(argv) == 0
    except RuntimeError as exc:
        # no right to attach, or a Python newer than py-spy knows (its layouts are per version)
        why = ("ptrace", "Permission", "Operation not permitted", "nsupported", "version")
        if any(w in str(exc) for w in why):
            pytest.skip(f"py-spy cannot profile this Python here: {exc}")
        raise
    (row,) = json.loads(out.read_text())["rows"]
    assert row["server"] == ROUTED and row["case"] == "json" and row["rps"] > 0
    assert row["cpu_us_per_req"] > 0 and 0 < row["gil_share"] <= 1.5
    assert row["loop_us_per_req"] > 0  # the loop's own work was sampled
    assert sum(row["loop_by_package_us_per_req"].values()) == pytest.approx(row["loop_us_per_req"])
