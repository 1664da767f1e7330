"""What changes for a blocking callable on sysletloop, as the migration guide states it.

A call runs on the thread that owns the loop when it starts. With home affinity (the
default) that is the home thread (here the main thread) whenever it is not itself
blocked: the loop moves away while a call there blocks and comes back when it returns.
Without it (``home_affinity=False``) the loop stays where it moved, so thread identity
inside a call depends on timing. Each test pins down one consequence with a real package
(sqlite3, threading, signal), in both modes or on both loops where the contrast is the
point.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading

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


affinity = pytest.mark.parametrize("home", [True, False], ids=["home", "away"])


@affinity
def test_a_sqlite_connection_made_at_home_works_after_the_loop_moved_only_if_it_came_back(
    home: bool,
) -> None:
    async def main() -> None:
        # The first call runs inline on the loop's thread: here, the main thread.
        db = await sysletloop.call(sqlite3.connect, ":memory:")
        try:
            assert await sysletloop.call(lambda: db.execute("select 1").fetchone()) == (1,)
            await force_a_migration()
            if home:
                assert await sysletloop.call(lambda: db.execute("select 2").fetchone()) == (2,)
                await sysletloop.call(db.close)
            else:
                with pytest.raises(sqlite3.ProgrammingError, match="same thread"):
                    await sysletloop.call(db.execute, "select 1")
                with pytest.raises(sqlite3.ProgrammingError, match="same thread"):
                    await sysletloop.call(db.close)  # it cannot even be closed from here
        finally:
            closing.append(db)

    closing: list[sqlite3.Connection] = []
    sysletloop.run(main(), home_affinity=home)
    closing[0].close()  # on the main thread, once the run is over: always allowed


def test_a_call_that_starts_while_the_home_thread_is_blocked_runs_elsewhere() -> None:
    # The one case home affinity leaves: a query started while the home thread is
    # blocked in another call (here in the same gather) runs on the thread the loop
    # moved to, and sqlite3 refuses the connection there.
    gate = Gate()

    async def main() -> None:
        db = await sysletloop.call(sqlite3.connect, ":memory:")
        blocked = asyncio.ensure_future(sysletloop.call(gate))
        query = asyncio.ensure_future(sysletloop.call(db.execute, "select 1"))
        try:
            with pytest.raises(sqlite3.ProgrammingError, match="same thread"):
                await query
        finally:
            gate.release.set()
        await blocked
        # The home thread is free again: the connection works, and closes, as before.
        assert await sysletloop.call(lambda: db.execute("select 3").fetchone()) == (3,)
        await sysletloop.call(db.close)

    sysletloop.run(main(), predict_blocking=False)


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_sqlite_with_check_same_thread_false_survives_the_move() -> None:
    db = await sysletloop.call(sqlite3.connect, ":memory:", check_same_thread=False)
    await sysletloop.call(db.execute, "create table t (x)")
    await sysletloop.call(db.execute, "insert into t values (1)")
    await force_a_migration()
    assert await sysletloop.call(lambda: db.execute("select x from t").fetchall()) == [(1,)]
    await sysletloop.call(db.close)


@affinity
def test_thread_locals_seen_by_a_call_survive_a_move_only_if_the_loop_came_back(
    home: bool,
) -> None:
    local = threading.local()

    def remember(value: str) -> None:
        local.value = value

    def recall() -> str | None:
        return getattr(local, "value", None)

    async def main() -> None:
        await sysletloop.call(remember, "set inline")
        assert await sysletloop.call(recall) == "set inline"  # same thread: the loop's
        assert getattr(local, "value", None) == "set inline"  # ... which is the task's too
        await force_a_migration()
        # Home: the same thread again. Away: a new thread, with its own locals.
        assert await sysletloop.call(recall) == ("set inline" if home else None)

    sysletloop.run(main(), home_affinity=home)


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


@affinity
def test_signal_handlers_can_be_set_from_a_call_only_on_the_main_thread(home: bool) -> None:
    # signal.signal works on the main thread only. A call that starts while the loop is
    # on the main thread may set one: with home affinity, also after the loop moved
    # and came back; without it, once the loop has moved it cannot.
    async def main() -> None:
        assert threading.current_thread() is threading.main_thread()
        await force_a_migration()
        if home:
            await sysletloop.call(signal.signal, signal.SIGUSR1, signal.SIG_DFL)
        else:
            with pytest.raises(ValueError, match="main thread"):
                await sysletloop.call(signal.signal, signal.SIGUSR1, signal.SIG_DFL)

    sysletloop.run(main(), home_affinity=home)
