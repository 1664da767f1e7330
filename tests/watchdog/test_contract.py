"""The watchdog contract (``sysletloop._watchdog``), on both implementations.

Every test here runs against the pure-Python watchdog and the C one (``kind``); a C case
is skipped where the extension is not built (``test_c_watchdog_is_built`` then fails on
Linux, where it must be). Timing is asserted only with generous bounds: the suite runs on
small shared machines.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator

import pytest

from sysletloop._watchdog import Watchdog

from ._support import (
    C_BUILT,
    KINDS,
    Reports,
    WatchdogClass,
    implementation,
    needs_c,
    thread_exists,
    wait_until,
)

NAME = "sysletloop-test-watchdog"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(kind: str) -> Iterator[WatchdogClass]:
    """The implementation under test; every watchdog it made is closed afterwards."""
    cls = implementation(kind)
    made: list[Watchdog] = []

    def factory(*args: object, **kwargs: object) -> Watchdog:
        dog = cls(*args, **kwargs)
        made.append(dog)
        return dog

    yield factory
    for dog in made:
        dog.close()


def test_c_watchdog_is_built() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the C watchdog is Linux-only")
    assert C_BUILT, (
        "sysletloop._cwatchdog did not build (setup.py marks it optional: look for the "
        "compiler's error in the pip install output); the Python watchdog serves meanwhile"
    )


def test_kind_names_the_implementation(kind: str, make: WatchdogClass) -> None:
    dog = make(1.0, Reports(), name=NAME)
    assert dog.kind == kind
    assert vars(type(dog))["kind"] == kind  # a class attribute


def test_reports_a_token_armed_past_the_threshold_once_per_arming(make: WatchdogClass) -> None:
    reports = Reports()
    dog = make(0.01, reports, name=NAME)
    token = object()
    dog.arm(token)
    assert wait_until(lambda: reports.tokens == [token])
    time.sleep(0.05)
    assert reports.tokens == [token]  # once per arming, however long it stays armed
    dog.disarm()
    time.sleep(0.05)
    assert reports.tokens == [token]


def test_reports_from_its_own_thread(make: WatchdogClass) -> None:
    reports = Reports()
    dog = make(0.005, reports, name=NAME)
    dog.arm("token")
    assert wait_until(lambda: reports.tokens == ["token"])
    dog.disarm()
    assert reports.threads == [dog.native_id]
    assert dog.native_id != threading.get_native_id()


def test_ignores_tokens_disarmed_in_time(make: WatchdogClass) -> None:
    reports = Reports()
    dog = make(5.0, reports, name=NAME)
    for i in range(1000):
        dog.arm(i)
        dog.disarm()
    time.sleep(0.05)
    assert reports.tokens == []


def test_rearming_reports_the_new_token(make: WatchdogClass) -> None:
    reports = Reports()
    dog = make(0.01, reports, name=NAME)
    first, second = object(), object()
    dog.arm(first)
    assert wait_until(lambda: reports.tokens == [first])
    dog.arm(second)  # no disarm in between: what a new owner does after a hand-over
    assert wait_until(lambda: reports.tokens == [first, second])
    dog.disarm()
    dog.arm(first)  # the same token again is a new arming
    assert wait_until(lambda: reports.tokens == [first, second, first])
    dog.disarm()


def test_a_parked_watchdog_is_kicked_by_the_next_arm(make: WatchdogClass) -> None:
    reports = Reports()
    dog = make(0.005, reports, name=NAME)
    dog.arm(object())
    dog.disarm()
    time.sleep(0.2)  # long past any back-off: it has parked (waits with no timeout)
    token = object()
    dog.arm(token)  # only a kick can wake a parked watchdog
    assert wait_until(lambda: reports.tokens == [token])
    dog.disarm()


def test_calls_that_keep_coming_are_all_watched(make: WatchdogClass) -> None:
    """Short armings (polling), then a long one: reported, and only it."""
    reports = Reports()
    dog = make(0.02, reports, name=NAME)
    for i in range(200):
        dog.arm(i)
        time.sleep(0.0002)
        dog.disarm()
    token = object()
    dog.arm(token)
    assert wait_until(lambda: reports.tokens == [token])
    dog.disarm()


def test_close_joins_and_twice_is_fine(make: WatchdogClass) -> None:
    dog = make(0.001, Reports(), name=NAME)
    assert dog.is_alive()
    native_id = dog.native_id
    assert native_id is not None
    dog.close()
    assert not dog.is_alive()
    # The OS thread ends a moment after it stops running Python (and, in C, after the
    # futex that pthread_join waits on is cleared).
    assert wait_until(lambda: not thread_exists(native_id))
    dog.close()
    assert not dog.is_alive()


def test_close_while_armed_and_overdue(make: WatchdogClass) -> None:
    reports = Reports()
    dog = make(0.001, reports, name=NAME)
    dog.arm("stuck")
    assert wait_until(lambda: reports.tokens == ["stuck"])
    dog.close()  # armed, never disarmed (a deposed owner does not disarm)
    assert not dog.is_alive()


def test_close_from_on_overdue(make: WatchdogClass) -> None:
    closed = threading.Event()
    dogs: list[Watchdog] = []

    def on_overdue(token: object) -> None:
        dogs[0].close()  # from the watchdog's own thread: cannot join itself
        closed.set()

    dog = make(0.002, on_overdue, name=NAME)
    dogs.append(dog)
    dog.arm("token")
    assert closed.wait(20)
    assert wait_until(lambda: not dog.is_alive())


def test_close_from_several_threads_at_once(make: WatchdogClass) -> None:
    dog = make(0.001, Reports(), name=NAME)
    dog.arm("token")
    threads = [threading.Thread(target=dog.close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert not dog.is_alive()


def test_on_overdue_raising_does_not_kill_the_watchdog(
    kind: str,
    make: WatchdogClass,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The error is reported, not lost: the C watchdog through sys.unraisablehook (it
    # has no Python frame to raise into), the Python one through the "sysletloop" logger.
    unraisable: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u.exc_value))
    reports = Reports()

    def on_overdue(token: object) -> None:
        reports(token)
        if token == "raises":
            raise ValueError("on_overdue failed")

    def reported() -> list[BaseException | None]:
        if kind == "c":
            return unraisable
        return [r.exc_info[1] for r in caplog.records if r.exc_info]

    with caplog.at_level(logging.ERROR, logger="sysletloop"):
        dog = make(0.005, on_overdue, name=NAME)
        dog.arm("raises")
        assert wait_until(lambda: len(reported()) == 1)
        dog.disarm()
        assert isinstance(reported()[0], ValueError)
        assert dog.is_alive()
        dog.arm("next")
        assert wait_until(lambda: reports.tokens == ["raises", "next"])
        dog.disarm()
        dog.close()


def test_arming_time_is_on_the_monotonic_clock(make: WatchdogClass) -> None:
    dog = make(5.0, Reports(), name=NAME)
    for _ in range(100):
        before = time.monotonic()
        armed_at = dog.arm(object())
        after = time.monotonic()
        dog.disarm()
        assert isinstance(armed_at, float)
        assert before <= armed_at <= after


def test_arm_from_whichever_thread_owns_the_loop(make: WatchdogClass) -> None:
    """Ownership moves between threads (orderly, as the loop's lock orders it)."""
    reports = Reports()
    dog = make(0.01, reports, name=NAME)
    tokens = [object(), object()]
    errors: list[BaseException] = []

    def owner(token: object) -> None:
        try:
            dog.arm(token)
            assert wait_until(lambda: reports.tokens[-1:] == [token])
            dog.disarm()
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    for token in tokens:  # thread A, then thread B
        t = threading.Thread(target=owner, args=(token,))
        t.start()
        t.join(30)
        assert not t.is_alive()
    assert errors == []
    assert reports.tokens == tokens


def test_the_watchdog_thread_has_a_small_timer_slack(make: WatchdogClass) -> None:
    dog = make(0.001, Reports(), name=NAME)
    path = f"/proc/{dog.native_id}/timerslack_ns"
    if not os.path.exists(path):
        pytest.skip("no /proc/<tid>/timerslack_ns here")

    def slack() -> int:
        with open(path) as f:
            return int(f.read())

    assert wait_until(lambda: slack() == 1000)  # set by the thread once it runs


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_can_drop_the_parents_watchdog(make: WatchdogClass) -> None:
    """In the child the thread does not exist: arm, disarm, close and deallocation must
    neither crash nor hang (the loop drops its watchdog there, but must be able to)."""
    reports = Reports()
    dog = make(0.005, reports, name=NAME)
    dog.arm("before fork")
    assert wait_until(lambda: reports.tokens == ["before fork"])
    dog.disarm()
    time.sleep(0.1)  # parked
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            alive = dog.is_alive()
            dog.arm("in child")
            dog.disarm()
            dog.close()
            dog.close()
            del dog
            gc.collect()
            code = 3 if alive else 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the child hung with the parent's watchdog")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
    assert dog.is_alive()  # the parent's is untouched
    dog.arm("after fork")
    assert wait_until(lambda: reports.tokens == ["before fork", "after fork"])
    dog.disarm()


# -- the C watchdog only ---------------------------------------------------------------


@needs_c
def test_c_thread_is_named_and_has_the_native_id() -> None:
    cls = implementation("c")
    dog = cls(0.001, Reports(), name="sysletloop-watchdog-with-a-long-name")
    try:
        native_id = dog.native_id
        assert native_id is not None and thread_exists(native_id)
        with open(f"/proc/self/task/{native_id}/comm") as f:
            assert f.read().strip() == "sysletloop-watc"  # 15 bytes: the kernel's limit
    finally:
        dog.close()
    assert dog.native_id == native_id  # kept after the thread ends, as threading does


@needs_c
def test_c_thread_name_is_cut_at_a_character_boundary() -> None:
    cls = implementation("c")
    dog = cls(0.001, Reports(), name="abcdefghijklmn\u00e9")  # the é is bytes 15 and 16
    try:
        with open(f"/proc/self/task/{dog.native_id}/comm", "rb") as f:
            assert f.read().strip() == b"abcdefghijklmn"
    finally:
        dog.close()


@needs_c
@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((0.0, print), {"name": NAME}, ValueError),
        ((-1.0, print), {"name": NAME}, ValueError),
        ((float("nan"), print), {"name": NAME}, ValueError),
        ((float("inf"), print), {"name": NAME}, ValueError),
        (("1", print), {"name": NAME}, TypeError),
        ((1.0, "not callable"), {"name": NAME}, TypeError),
        ((1.0, print), {}, TypeError),
        ((1.0, print, NAME), {}, TypeError),
        ((1.0, print), {"name": 5}, TypeError),
    ],
)
def test_c_constructor_checks_its_arguments(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception]
) -> None:
    cls = implementation("c")
    with pytest.raises(error):
        cls(*args, **kwargs)


@needs_c
def test_c_accepts_keywords_and_ints() -> None:
    cls = implementation("c")
    dog = cls(threshold=1, on_overdue=print, name=NAME)
    try:
        assert dog.is_alive()
    finally:
        dog.close()


@needs_c
def test_c_watchdog_in_a_cycle_is_collected_and_its_thread_ends() -> None:
    cls = implementation("c")

    class Owner:
        def __init__(self) -> None:
            self.dog = cls(0.001, self.on_overdue, name=NAME)

        def on_overdue(self, token: object) -> None:
            pass

    owner = Owner()
    owner.dog.arm(owner)  # the token is in the cycle too
    native_id = owner.dog.native_id
    assert native_id is not None
    del owner
    gc.collect()
    assert wait_until(lambda: not thread_exists(native_id))


@needs_c
def test_c_last_reference_dropped_inside_on_overdue() -> None:
    """Deallocation on the watchdog's own thread: it cannot join itself."""
    cls = implementation("c")
    box: dict[str, object] = {}
    done = threading.Event()

    def on_overdue(token: object) -> None:
        box.clear()  # the last reference to the watchdog
        done.set()

    box["dog"] = dog = cls(0.002, on_overdue, name=NAME)
    native_id = dog.native_id
    assert native_id is not None
    dog.arm("token")
    del dog
    assert done.wait(20)
    assert wait_until(lambda: not thread_exists(native_id))


@needs_c
def test_c_arm_after_close_is_harmless() -> None:
    cls = implementation("c")
    reports = Reports()
    dog = cls(0.001, reports, name=NAME)
    dog.close()
    dog.arm("late")
    dog.disarm()
    time.sleep(0.01)
    assert reports.tokens == []
