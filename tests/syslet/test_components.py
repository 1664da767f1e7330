"""The low-level pieces on their own: completion ring, thread cache, watchdog."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysletloop._pywatchdog import PythonWatchdog as Watchdog
from sysletloop._ring import CompletionRing
from sysletloop._threadcache import ThreadCache

from .helpers import wait_until

# -- completion ring ----------------------------------------------------------------


@given(st.lists(st.integers()))
def test_ring_drains_in_posting_order(items: list[int]) -> None:
    ring: CompletionRing[int] = CompletionRing(lambda: None)
    for item in items:
        ring.post(item)
    assert len(ring) == len(items)
    assert ring.drain() == items
    assert not ring


def test_ring_wakes_its_consumer_on_every_post() -> None:
    wakes: list[str] = []
    ring: CompletionRing[str] = CompletionRing(lambda: wakes.append("wake"))
    ring.post("a")
    assert wakes == ["wake"] and list(ring.items) == ["a"]  # in the ring before the wake
    ring.post("b")
    assert wakes == ["wake", "wake"]
    assert ring.drain() == ["a", "b"]


def test_ring_posts_from_many_threads_are_all_drained() -> None:
    ring: CompletionRing[tuple[int, int]] = CompletionRing(lambda: None)

    def poster(t: int) -> None:
        for i in range(1000):
            ring.post((t, i))

    threads = [threading.Thread(target=poster, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    got: list[tuple[int, int]] = []
    while any(th.is_alive() for th in threads) or ring:
        got.extend(ring.drain())
    for th in threads:
        th.join()
    assert sorted(got) == [(t, i) for t in range(4) for i in range(1000)]
    for t in range(4):  # each poster's items in its own order
        assert [i for tt, i in got if tt == t] == list(range(1000))


# -- thread cache -------------------------------------------------------------------


def test_cache_reuses_an_idle_thread() -> None:
    cache = ThreadCache(idle_timeout=10, name="sysletloop-test")
    seen: list[int] = []
    done = threading.Event()

    def job() -> None:
        seen.append(threading.get_ident())
        done.set()

    try:
        cache.submit(job)
        assert done.wait(10)
        assert wait_until(lambda: cache.idle_count() == 1)
        done.clear()
        cache.submit(job)
        assert done.wait(10)
        assert seen[0] == seen[1]
        assert (cache.started, cache.reused) == (1, 1)
    finally:
        cache.close()
    assert wait_until(lambda: not cache.threads())


def test_cache_starts_a_new_thread_when_all_are_busy() -> None:
    cache = ThreadCache(idle_timeout=10, name="sysletloop-test")
    release = threading.Event()
    running = threading.Semaphore(0)

    def busy() -> None:
        running.release()
        release.wait(10)

    try:
        for _ in range(3):
            cache.submit(busy)
        for _ in range(3):
            assert running.acquire(timeout=10)
        assert cache.started == 3
        assert len(cache.threads()) == 3
    finally:
        release.set()
        cache.close()
    assert wait_until(lambda: not cache.threads())


def test_idle_threads_time_out() -> None:
    cache = ThreadCache(idle_timeout=0.02, name="sysletloop-test")
    try:
        cache.ensure_spare()
        assert cache.started == 1
        assert wait_until(lambda: not cache.threads())
        assert cache.idle_count() == 0
    finally:
        cache.close()


def test_closed_cache_refuses_work_and_busy_threads_exit_after_their_job() -> None:
    cache = ThreadCache(idle_timeout=10, name="sysletloop-test")
    release = threading.Event()
    cache.submit(lambda: release.wait(10) and None)
    cache.close()
    with pytest.raises(RuntimeError, match="closed"):
        cache.submit(lambda: None)
    assert len(cache.threads()) == 1
    release.set()
    assert wait_until(lambda: not cache.threads())


# -- watchdog -----------------------------------------------------------------------


def test_watchdog_reports_a_token_armed_past_the_threshold_once() -> None:
    reports: list[object] = []
    dog = Watchdog(0.01, reports.append, name="sysletloop-test-watchdog")
    try:
        token = object()
        dog.arm(token)
        assert wait_until(lambda: reports == [token])
        time.sleep(0.05)
        assert reports == [token]  # once per arming
        other = object()
        dog.arm(other)
        assert wait_until(lambda: reports == [token, other])
    finally:
        dog.close()
    assert not dog.is_alive()


def test_watchdog_ignores_a_token_disarmed_in_time() -> None:
    reports: list[object] = []
    dog = Watchdog(5.0, reports.append, name="sysletloop-test-watchdog")
    try:
        for _ in range(1000):
            dog.arm(object())
            dog.disarm()
        time.sleep(0.05)
        assert reports == []
    finally:
        dog.close()


def test_watchdog_parks_and_is_kicked_by_the_next_arm() -> None:
    reports: list[object] = []
    dog = Watchdog(0.005, reports.append, name="sysletloop-test-watchdog")
    try:
        dog.arm(object())
        dog.disarm()
        time.sleep(0.1)  # long enough to poll once more, see nothing, and park
        token = object()
        dog.arm(token)
        assert wait_until(lambda: reports == [token])
    finally:
        dog.close()


def test_submit_soon_never_waits_and_every_job_runs_once() -> None:
    cache = ThreadCache(idle_timeout=10, name="sysletloop-test")
    release = threading.Event()
    ran: list[int] = []
    lock = threading.Lock()

    def job(i: int) -> None:
        release.wait(10)
        with lock:
            ran.append(i)

    try:
        for i in range(20):
            cache.submit_soon(lambda i=i: job(i))  # type: ignore[misc]
        assert wait_until(lambda: len(cache.threads()) == 20)  # started by the starter
        release.set()
        assert wait_until(lambda: len(ran) == 20)
        assert sorted(ran) == list(range(20))
        # Now idle: the next job is handed over, not queued.
        done = threading.Event()
        started_before = cache.started
        cache.submit_soon(done.set)
        assert done.wait(10)
        assert cache.started == started_before
    finally:
        cache.close()
    assert wait_until(lambda: not cache.threads())


def test_backlogged_jobs_still_run_after_close() -> None:
    cache = ThreadCache(idle_timeout=10, name="sysletloop-test")
    ran = threading.Semaphore(0)
    for _ in range(5):
        cache.submit_soon(ran.release)
    cache.close()
    for _ in range(5):
        assert ran.acquire(timeout=10)
    assert wait_until(lambda: not cache.threads())
