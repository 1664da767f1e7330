"""What changes for a blocking callable on sysletloop, as the migration guide states it.

A call runs on the loop's thread when it does not block, and the loop changes thread
when a call does block; so thread identity inside a call depends on timing. Each test
pins down one consequence with a real package (sqlite3, threading, signal), on both
loops where the contrast is the point.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
from collections.abc import Iterator

import pytest

import sysletloop

from .support import Gate


async def force_a_migration() -> None:
    """Run a call that blocks until the loop has gone on without it (syslet loop)."""
    gate = Gate()

    async def release_once_the_loop_moved() -> None:
        while not gate.started.is_set():
            await asyncio.sleep(0.001)
        gate.release.set()  # we run, so the loop is on another thread already

    releaser = asyncio.create_task(release_once_the_loop_moved())
    await sysletloop.call(gate)
    await releaser


@pytest.fixture
def closed_on_the_main_thread() -> Iterator[list[sqlite3.Connection]]:
    """Connections to close after the test, on the main thread (a sync fixture's
    teardown runs there, once the loop has stopped and its home thread is back)."""
    connections: list[sqlite3.Connection] = []
    yield connections
    for db in connections:
        db.close()


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_sqlite_refuses_a_connection_used_after_the_loop_moved(
    closed_on_the_main_thread: list[sqlite3.Connection],
) -> None:
    # The first call runs inline on the loop's thread: here, the main thread.
    db = await sysletloop.call(sqlite3.connect, ":memory:")
    closed_on_the_main_thread.append(db)
    assert await sysletloop.call(lambda: db.execute("select 1").fetchone()) == (1,)
    await force_a_migration()
    with pytest.raises(sqlite3.ProgrammingError, match="same thread"):
        await sysletloop.call(db.execute, "select 1")
    with pytest.raises(sqlite3.ProgrammingError, match="same thread"):
        await sysletloop.call(db.close)  # it cannot even be closed from here


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_sqlite_with_check_same_thread_false_survives_the_move() -> None:
    db = await sysletloop.call(sqlite3.connect, ":memory:", check_same_thread=False)
    await sysletloop.call(db.execute, "create table t (x)")
    await sysletloop.call(db.execute, "insert into t values (1)")
    await force_a_migration()
    assert await sysletloop.call(lambda: db.execute("select x from t").fetchall()) == [(1,)]
    await sysletloop.call(db.close)


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_thread_locals_seen_by_a_call_change_when_the_loop_moves() -> None:
    local = threading.local()

    def remember(value: str) -> None:
        local.value = value

    def recall() -> str | None:
        return getattr(local, "value", None)

    await sysletloop.call(remember, "set inline")
    assert await sysletloop.call(recall) == "set inline"  # same thread: the loop's
    assert getattr(local, "value", None) == "set inline"  # ... which is the task's too
    await force_a_migration()
    assert await sysletloop.call(recall) is None  # a new thread, its own locals


@pytest.mark.asyncio
async def test_an_rlock_held_by_the_task_is_reentered_by_an_inline_call() -> None:
    lock = threading.RLock()
    with lock:
        got_it = await asyncio.to_thread(lock.acquire, False)
    if got_it:
        lock.release()
    on_syslet = isinstance(asyncio.get_running_loop(), sysletloop.SysletEventLoop)
    # Inline, the call runs on the thread that holds the lock; on a pool thread it
    # cannot take it.
    assert got_it == on_syslet


@pytest.mark.asyncio
async def test_asyncio_run_works_inside_a_call() -> None:
    async def inner() -> str:
        return "inner loop"

    assert await asyncio.to_thread(asyncio.run, inner()) == "inner loop"


@pytest.mark.asyncio
async def test_calling_back_into_the_loop_from_a_call_completes() -> None:
    # Inline, the call waits for the loop it is blocking; the watchdog sees it blocked
    # and moves the loop, which then runs the coroutine. On a pool thread it just works.
    loop = asyncio.get_running_loop()

    async def on_the_loop() -> int:
        return 7

    def calls_back() -> int:
        return asyncio.run_coroutine_threadsafe(on_the_loop(), loop).result(timeout=30)

    assert await asyncio.to_thread(calls_back) == 7


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_signal_handlers_cannot_be_set_from_a_call_off_the_main_thread() -> None:
    # signal.signal works on the main thread only. A call that runs inline while the
    # loop is on the main thread may set one; once the loop has moved it cannot.
    assert threading.current_thread() is threading.main_thread()
    await force_a_migration()
    with pytest.raises(ValueError, match="main thread"):
        await sysletloop.call(signal.signal, signal.SIGUSR1, signal.SIG_DFL)
