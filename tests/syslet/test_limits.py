"""When threads run out, the loop must not hang (issue 15).

Three ways to run out, each checked for "every call resolves exactly once, and the run
ends": a real cgroup with a small ``pids.max`` and RLIMIT_NPROC as a non-root user (both
in a child process, through ``scripts/pids-limit``, the issue's reproduction), and fault
injection in this process: thread starts failing from the Nth start on (and only the
Nth), for every N a clean run reaches; the watchdog failing to start or dying;
MemoryError and other exceptions at each point of the hand-over that can be reached from
Python. No timing is asserted: "does not hang" is a generous bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sysletloop
import sysletloop._shortage as shortage_module
from sysletloop import _watchdog
from sysletloop._limits import ThreadLimit, cap_for, read_thread_limit
from sysletloop._loop import SysletEventLoop
from sysletloop._profile import Profile
from sysletloop._pywatchdog import PythonWatchdog
from sysletloop._threadcache import ThreadCache
from sysletloop._threadstate import OwnerThreadState

from .helpers import wait_until

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pids-limit"
HANG_BOUND = 60.0  # seconds: a run that takes longer counts as hung


# ------------------------------------------------------------ in a child process


def run_limited(*args: str) -> dict[str, Any]:
    """Run scripts/pids-limit with this interpreter; skip if it cannot confine a child."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--timeout", str(HANG_BOUND), *args],
        capture_output=True,
        text=True,
        timeout=HANG_BOUND + 30,
    )
    if proc.returncode == 3:
        pytest.skip(f"cannot confine a child here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def assert_all_done(report: dict[str, Any]) -> None:
    assert not report["hung"], report["stderr"]
    assert report["returncode"] == 0, report["stderr"]
    assert report["ok"] == report["calls"], report
    assert report["errors"] == []
    assert "Traceback" not in report["stderr"], report["stderr"]


@pytest.mark.parametrize("app_threads", [0, 5])
@pytest.mark.parametrize("api", ["to_thread", "call", "call_eager", "aiofiles"])
def test_many_blocking_calls_in_a_cgroup_with_a_small_pids_max_all_complete(
    api: str, app_threads: int
) -> None:
    # pids.max 12 as in the issue; with app_threads the application takes 5 of them
    # after the loop read the limits, so the loop's own starts fail as well.
    report = run_limited(
        "--pids-max", "12", "--calls", "30", "--sleep", "0.05", "--api", api,
        "--app-threads", str(app_threads),
    )
    assert_all_done(report)
    stats = report["stats"]
    assert stats["completions_drained"] + stats["inline_completions"] >= 30
    assert stats["max_blocked_now"] < 12  # the cgroup's limit was found and respected
    if stats["thread_start_failures"]:
        # Logged once, naming the limit it found.
        assert report["stderr"].count("calls now wait in the queue") == 1, report["stderr"]
        assert "pids.max=12" in report["stderr"]


def test_a_pids_max_below_what_the_loop_would_like_still_completes_every_call() -> None:
    # 5 tasks: the main thread, the watchdog and three more; the cap drops to 1.
    report = run_limited("--pids-max", "5", "--calls", "10", "--sleep", "0.02",
                         "--api", "call")
    assert_all_done(report)
    assert report["stats"]["max_blocked_now"] == 1


def test_rlimit_nproc_as_a_non_root_user() -> None:
    if os.geteuid() != 0:
        pytest.skip("dropping to another uid needs root")
    # A uid nobody uses, so RLIMIT_NPROC counts this child's threads only.
    uid = 50000 + os.getpid() % 10000
    report = run_limited("--rlimit-nproc", "10", "--uid", str(uid), "--calls", "30",
                         "--sleep", "0.05", "--api", "call", "--app-threads", "3")
    assert_all_done(report)
    assert report["stats"]["max_blocked_now"] < 10


# ------------------------------------------------------------ the limits module


def test_cap_for_leaves_room_for_the_machinery_and_the_application() -> None:
    assert cap_for(None, configured=1024, blocked_now=0, machinery_to_start=3) == 1024
    limit = ThreadLimit(11, "test")  # pids.max 12, the main thread running
    # 11 - 3 machinery - 1 head-room
    assert cap_for(limit, configured=1024, blocked_now=0, machinery_to_start=3) == 7
    assert cap_for(limit, configured=4, blocked_now=0, machinery_to_start=3) == 4
    assert cap_for(ThreadLimit(0, "t"), configured=9, blocked_now=0, machinery_to_start=3) == 1
    # Calls already blocked are inside the count the limit was read against.
    assert cap_for(ThreadLimit(2, "t"), configured=99, blocked_now=5, machinery_to_start=1) == 5


def test_read_thread_limit_finds_the_kernel_threads_max_at_least() -> None:
    limit = read_thread_limit()
    if limit is None:
        pytest.skip("no readable thread limit here")
    assert limit.available >= 0
    assert str(limit.available) in str(limit)


# ------------------------------------------------------------ fault injection


def blocking_workload(calls: int = 12, **options: Any) -> sysletloop.SysletStats:
    """Blocking and quick calls through every API; checks each ran exactly once and
    each awaiting task got its own result."""
    ran: Counter[int] = Counter()
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            ran[i] += 1
        if i % 3:
            time.sleep(0.01)  # blocks past the threshold
        return i

    async def one(i: int) -> int:
        kind = i % 4
        if kind == 0:
            return await sysletloop.call(work, i)
        if kind == 1:
            return await asyncio.to_thread(work, i)
        if kind == 2:
            return await sysletloop.call_eager(work, i)
        return await asyncio.get_running_loop().run_in_executor(None, work, i)

    async def main() -> sysletloop.SysletStats:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, SysletEventLoop)
        results = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(calls))), HANG_BOUND
        )
        assert results == list(range(calls))
        # The loop is alive: timers still fire.
        await asyncio.sleep(0.001)
        return loop.syslet_stats()

    options.setdefault("block_threshold", 0.002)
    stats = sysletloop.run(main(), **options)
    assert sorted(ran) == list(range(calls))
    assert set(ran.values()) == {1}, ran
    return stats


class FailingStarts:
    """Make ``threading.Thread.start`` raise as at a PID limit: on starts number
    ``first`` and after (``only=False``), or on that start only."""

    def __init__(self, first: int, *, only: bool = False) -> None:
        self.first = first
        self.only = only
        self.count = 0
        self.failed = 0
        self._real = threading.Thread.start

    @contextlib.contextmanager
    def installed(self) -> Iterator[FailingStarts]:
        real = self._real
        me = self

        def start(thread: threading.Thread) -> None:
            n = me.count
            me.count += 1
            if n == me.first or (n > me.first and not me.only):
                me.failed += 1
                raise RuntimeError("can't start new thread")
            real(thread)

        threading.Thread.start = start  # type: ignore[method-assign]
        try:
            yield self
        finally:
            threading.Thread.start = real  # type: ignore[method-assign]


@pytest.fixture
def python_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python watchdog starts with threading.Thread.start, so it fails too."""
    monkeypatch.setenv("SYSLETLOOP_WATCHDOG", "python")


def starts_in_a_clean_run() -> int:
    with FailingStarts(10**9).installed() as counter:
        blocking_workload()
    return counter.count


@pytest.mark.parametrize("only", [False, True], ids=["from-nth-on", "nth-only"])
@pytest.mark.parametrize("watchdog", ["c", "python"])
def test_thread_start_failing_at_every_n_never_hangs_or_loses_a_call(
    only: bool, watchdog: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if watchdog == "c" and _watchdog._c_factory() is None:
        pytest.skip("the C watchdog is not built")
    monkeypatch.setenv("SYSLETLOOP_WATCHDOG", watchdog)
    total = starts_in_a_clean_run()
    assert total > 0
    for n in range(total + 1):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="asyncio"), \
                FailingStarts(n, only=only).installed() as starts:
            stats = blocking_workload()
        if starts.failed:
            assert stats.thread_start_failures >= 1, (n, stats)
            warnings = [r for r in caplog.records if "sysletloop:" in r.getMessage()
                        and "failed" in r.getMessage()]
            assert 1 <= len(warnings) <= 2, [r.getMessage() for r in warnings]
            assert "can't start new thread" in warnings[0].getMessage()


def test_no_thread_at_all_means_no_watchdog_and_calls_run_inline_to_the_end(
    python_watchdog: None,
) -> None:
    with FailingStarts(0).installed():
        stats = blocking_workload()
    assert stats.watchdog == "none"
    assert stats.migrations == 0


def test_threads_coming_back_resume_everything_by_themselves(python_watchdog: None) -> None:
    """Starts fail for a while (the first 3 after the first 2), then work again: the
    watchdog and the workers come back; later calls migrate again."""

    async def main() -> sysletloop.SysletStats:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, SysletEventLoop)
        failing = FailingStarts(0)
        with failing.installed():
            await asyncio.gather(*(sysletloop.call(time.sleep, 0.01) for _ in range(4)))
        # Threads can be started again: blocking calls move the loop again.
        before = loop.syslet_stats().migrations
        await asyncio.gather(*(sysletloop.call(time.sleep, 0.02) for _ in range(4)))
        for _ in range(200):
            if loop.syslet_stats().migrations > before:
                break
            await sysletloop.call(time.sleep, 0.02)
        stats = loop.syslet_stats()
        assert stats.migrations > before, stats
        assert stats.watchdog == "python"
        return stats

    stats = sysletloop.run(main(), block_threshold=0.002, predict_blocking=False)
    assert stats.thread_start_failures >= 1


def test_the_c_watchdog_failing_to_start_falls_back_to_the_python_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_c_thread(*args: object, **kwargs: object) -> _watchdog.Watchdog:
        raise RuntimeError("pthread_create: Resource temporarily unavailable")

    monkeypatch.setattr(_watchdog, "_choose", lambda: no_c_thread)
    stats = blocking_workload()
    assert stats.watchdog == "python"
    assert stats.migrations > 0


def test_a_watchdog_that_dies_is_replaced(
    python_watchdog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    deaths = [1]  # the first watchdog's thread ends at once
    real_main = PythonWatchdog._main

    def short_lived(self: PythonWatchdog) -> None:
        if deaths:
            deaths.pop()
            return
        real_main(self)

    monkeypatch.setattr(PythonWatchdog, "_main", short_lived)

    async def main() -> sysletloop.SysletStats:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, SysletEventLoop)
        await sysletloop.call(time.sleep, 0.1)  # stalls: nobody watches; noticed after
        for _ in range(200):
            await sysletloop.call(time.sleep, 0.02)
            if loop.syslet_stats().migrations:
                break
        return loop.syslet_stats()

    stats = sysletloop.run(main(), block_threshold=0.002, predict_blocking=False)
    assert stats.stalled_calls >= 1
    assert stats.migrations >= 1


def test_a_fault_inside_the_python_watchdog_thread_does_not_end_it(
    python_watchdog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = [MemoryError()]
    real_watch = PythonWatchdog._watch

    def faulty(self: PythonWatchdog) -> None:
        if faults:
            raise faults.pop()
        real_watch(self)

    monkeypatch.setattr(PythonWatchdog, "_watch", faulty)
    stats = blocking_workload()
    assert stats.watchdog == "python"


# Each entry: where to inject, and what to raise. Every point is on the hand-over path
# (the claim, the successor, the spare, the starter, sending away) and reachable by
# replacing a Python-level function for the nth call.
INJECTION_POINTS: dict[str, tuple[Any, str, BaseException]] = {  # owner, name, raised
    "submit-successor": (ThreadCache, "submit", MemoryError()),
    "ensure-spare": (ThreadCache, "ensure_spare", MemoryError()),
    "submit-soon": (ThreadCache, "submit_soon", MemoryError()),
    "start-spare": (ThreadCache, "start_spare", MemoryError()),
    "successor-state": (OwnerThreadState, "__init__", MemoryError()),
    "note-migration": (SysletEventLoop, "_note_migration_of", MemoryError()),
    "profile-migration": (Profile, "note_migration", MemoryError()),
    "claim": (SysletEventLoop, "_claim_and_hand_over", RuntimeError("bug in the claim")),
    "read-limits": (shortage_module, "read_thread_limit", MemoryError()),
}


@contextlib.contextmanager
def fail_nth(owner: Any, name: str, exc: BaseException, nth: int) -> Iterator[list[int]]:
    """Raise ``exc`` from the nth call of ``owner.name`` made off the main thread (on
    the main thread, run_forever's own setup raising is the caller's error, as stock)."""
    real: Callable[..., Any] = getattr(owner, name)
    hits = [0]
    main = threading.main_thread()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if owner is OwnerThreadState and threading.current_thread() is main:
            return real(*args, **kwargs)
        hits[0] += 1
        if hits[0] - 1 == nth:
            raise exc
        return real(*args, **kwargs)

    setattr(owner, name, wrapper)
    try:
        yield hits
    finally:
        setattr(owner, name, real)


@pytest.mark.parametrize("point", sorted(INJECTION_POINTS))
def test_an_exception_at_each_hand_over_point_loses_no_call(point: str) -> None:
    owner, name, exc = INJECTION_POINTS[point]
    reached = 0
    for predict in (False, True):  # without the predictor, every blocking call moves
        for nth in range(4):
            with fail_nth(owner, name, exc, nth) as hits:
                blocking_workload(predict_blocking=predict)
            reached = max(reached, hits[0])
            if hits[0] <= nth:
                break  # this run never got as far as the nth hit
    if point not in ("start-spare", "read-limits", "submit-soon"):
        assert reached > 0, f"{point} was never reached"


def test_the_starter_gives_back_jobs_it_cannot_start_a_thread_for() -> None:
    stranded: list[Callable[[], None]] = []
    failures: list[BaseException] = []
    cache = ThreadCache(
        idle_timeout=10, name="sysletloop-test",
        on_stranded=stranded.append, on_start_failed=failures.append,
    )
    ran: list[int] = []
    try:
        # The starter thread itself starts; the worker it would start does not.
        with FailingStarts(1).installed():
            cache.submit_soon(lambda: ran.append(1))
            assert wait_until(lambda: bool(stranded))
        assert len(failures) >= 1
        assert ran == []
        stranded[0]()  # given back exactly once: its owner runs it (here, now)
        assert ran == [1]
        # The starter is still there, waiting: the next job gets a worker.
        cache.submit_soon(lambda: ran.append(2))
        assert wait_until(lambda: ran == [1, 2])
    finally:
        cache.close()


def test_submit_soon_takes_the_job_back_when_the_starter_cannot_start() -> None:
    cache = ThreadCache(idle_timeout=10, name="sysletloop-test")
    try:
        with FailingStarts(0).installed(), pytest.raises(RuntimeError):
            cache.submit_soon(lambda: None)
        assert not cache._backlog
        assert cache._starter is None
    finally:
        cache.close()
